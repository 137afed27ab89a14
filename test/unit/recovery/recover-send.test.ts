// `maas-ha recover` through pgpool: pcp_recovery_node and pgpool's PCP restart (lib/recovery/recover.ts,
// sendRecovery). pgpool restarts its PCP process about a second after every failover and failback, which cuts a
// pcp_recovery_node sent right after one (seen in the compound campaign: "unable to read data from socket" 1 s
// after follow_primary ended). A cut recovery is sent once more only while pgpool still has the node down; any
// other failure, or a second cut, is the command's.

import test from 'ava';
import { OperationError } from '../../../lib/errors.ts';
import type { Log, Pcp, PcpNodeInfo } from '../../../lib/model/ports.ts';
import { sendRecovery } from '../../../lib/recovery/recover.ts';

const CUT = new OperationError('pcp_recovery_node -n 0: ERROR: unable to read data from socket.');
const REFUSED = new OperationError('pcp_recovery_node -n 0: ERROR: node recovery failed');

function info(status: number): PcpNodeInfo {
  return {
    id: 0, host: 'h', port: 5432, status, statusName: status === 3 ? 'down' : 'up', weight: 0.5, actualStatus: 'up',
    role: 'standby', actualRole: 'standby', replicationDelay: '0', replicationState: '', replicationSyncState: '', lastStatusChange: '',
  };
}

/** A pcp whose recover calls fail (or not) in turn, and whose node_info answers `status`; every call recorded. */
function world(recoverResults: (Error | undefined)[], status: number | Error) {
  const calls: string[] = [];
  const warnings: string[] = [];
  const pcp = {
    async recover(id: number, opts?: { timeoutMs?: number }) {
      calls.push(`recover ${id} ${opts?.timeoutMs}`);
      const r = recoverResults.shift();
      if (r) throw r;
    },
    async nodeInfo(id: number) {
      calls.push(`node_info ${id}`);
      if (status instanceof Error) throw status;
      return info(status);
    },
  } as unknown as Pcp;
  const log = { warn: (_f: unknown, m: string) => warnings.push(m), info() {}, debug() {}, error() {}, child: () => log } as unknown as Log;
  return { deps: { pcp, log }, calls, warnings };
}

test('sendRecovery: answered → sent once', async (t) => {
  const w = world([undefined], 3);
  await sendRecovery(w.deps, 0, 9000);
  t.deepEqual(w.calls, ['recover 0 9000']);
});

test('sendRecovery: cut by the PCP restart, pgpool still has the node down → sent once more, and says why', async (t) => {
  const w = world([CUT, undefined], 3);
  await sendRecovery(w.deps, 0, 9000);
  t.deepEqual(w.calls, ['recover 0 9000', 'node_info 0', 'recover 0 9000']);
  t.regex(w.warnings.join('\n'), /cut pcp_recovery_node's connection .*node 0 down: sending it once more/);
});

test('sendRecovery: cut, but pgpool shows the node up meanwhile → not sent again (the caller checks it streams)', async (t) => {
  const w = world([CUT], 2);
  await sendRecovery(w.deps, 0, 9000);
  t.deepEqual(w.calls, ['recover 0 9000', 'node_info 0']);
});

test('sendRecovery: cut twice → the second cut is the failure; never a third send', async (t) => {
  const w = world([CUT, CUT, undefined], 3);
  const err = await t.throwsAsync(sendRecovery(w.deps, 0, 9000));
  t.regex(err!.message, /unable to read data from socket/);
  t.deepEqual(w.calls, ['recover 0 9000', 'node_info 0', 'recover 0 9000']);
});

test('sendRecovery: pgpool refused the recovery (an ERROR of its own) → failure, never sent again', async (t) => {
  const w = world([REFUSED, undefined], 3);
  const err = await t.throwsAsync(sendRecovery(w.deps, 0, 9000));
  t.is(err, REFUSED);
  t.deepEqual(w.calls, ['recover 0 9000']);
});

test('sendRecovery: cut, and pgpool does not answer node_info either → the cut is the failure, nothing sent again', async (t) => {
  const w = world([CUT, undefined], new OperationError('pcp_node_info -n 0: connection refused'));
  const err = await t.throwsAsync(sendRecovery(w.deps, 0, 9000));
  t.is(err, CUT);
  t.deepEqual(w.calls, ['recover 0 9000', 'node_info 0']);
});
