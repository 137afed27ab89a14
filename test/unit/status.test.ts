import test from 'ava';
import { parseLsn, formatLsn, formatBytes } from '../../lib/model/lsn.ts';
import type { PcpNodeInfo } from '../../lib/model/ports.ts';
import type { NodeObservation } from '../../lib/observe.ts';
import { parseNodeInfoLine } from '../../lib/pgpool/pcp-output.ts';
import { buildStatus, renderStatus } from '../../lib/status.ts';
import { testConfig } from '../support/config.ts';

const info = (id: number, status: number, role: string): PcpNodeInfo =>
  parseNodeInfoLine(id, `10.0.0.${11 + id} 5432 ${status} 0.333333 ${status === 3 ? 'down' : 'up'} up ${role} ${role} 0 streaming async 2026-11-24 21:17:17`);
const prim: NodeObservation = {
  id: 0, reachable: true, inRecovery: false, timeline: 1, currentLsn: parseLsn('0/3000100'),
  replication: [{ applicationName: 'pg1', clientAddr: '10.0.0.12', state: 'streaming', syncState: 'quorum' }], synchronousStandbyNames: 'ANY 1 (pg1, pg2)',
};
const stby = (id: number, tli = 1, status = 'streaming'): NodeObservation => ({
  id, reachable: true, inRecovery: true, timeline: tli, receiveLsn: parseLsn('0/3000100'), replayLsn: parseLsn('0/3000000'),
  walReceiver: { status, senderHost: '10.0.0.11', senderPort: 5432, receivedTli: tli, slotName: null }, replication: [], synchronousStandbyNames: '',
});

test('status: a healthy cluster has one primary and no problems', (t) => {
  const s = buildStatus(testConfig(), [prim, stby(1), stby(2)], [info(0, 2, 'primary'), info(1, 2, 'standby'), info(2, 1, 'standby')]);
  t.is(s.primary, 0);
  t.deepEqual(s.problems, []);
  t.is(s.rows[1]!.lagBytes, 0x100);
  t.is(s.rows[1]!.replication, 'streaming from 10.0.0.11 (quorum)');
  const text = renderStatus(s);
  t.regex(text, /cluster test: primary is node 0/);
  t.regex(text, /no problems found/);
});

test('status: two primaries are reported as split brain', (t) => {
  const s = buildStatus(testConfig(), [prim, { ...prim, id: 1 }, stby(2)], [info(0, 2, 'primary'), info(1, 2, 'standby'), info(2, 2, 'standby')]);
  t.is(s.primary, null);
  t.true(s.problems.some((p) => /split brain/.test(p)));
  t.true(s.problems.some((p) => /node 1: pgpool calls it standby/.test(p)));
});

test('status: a standby on the wrong timeline, detached, not streaming is flagged', (t) => {
  // A standby still on the timeline the primary left (its receiver waits: it replayed past the fork point).
  const s = buildStatus(testConfig(), [{ ...prim, timeline: 2 }, stby(1, 1, 'waiting'), { id: 2, reachable: false, error: 'connection refused' }],
    [info(0, 2, 'primary'), info(1, 3, 'standby'), info(2, 2, 'standby')]);
  t.is(s.primary, 0);
  t.true(s.problems.includes('node 1: not streaming'));
  t.true(s.problems.includes('node 1: receives timeline 1, primary is on 2'));
  t.true(s.problems.includes('node 1: detached in pgpool'));
  t.true(s.problems.includes('node 2: pgpool has it up but PostgreSQL does not answer'));
});

test('status: a writable node on a timeline the cluster left is never named the primary (split brain, recover it)', (t) => {
  // Node 0 restarted writable from its old data directory (timeline 1); node 2 followed the real primary to 2.
  const s = buildStatus(testConfig(), [prim, { id: 1, reachable: false, error: 'connection refused' }, stby(2, 2, 'waiting')],
    [info(0, 3, 'primary'), info(1, 3, 'primary'), info(2, 2, 'standby')]);
  t.is(s.primary, null);
  t.true(s.problems.some((p) => /split brain: node 0 accepts writes on timeline 1, but node 2 is on timeline 2.*maas-ha recover 0/.test(p)), s.problems.join('\n'));
  t.regex(renderStatus(s), /NO PRIMARY/);
});

test('status: a writable node maas-ha fenced is reported, not named the primary', (t) => {
  const s = buildStatus(testConfig(), [prim, stby(1), stby(2)], [info(0, 2, 'primary'), info(1, 2, 'standby'), info(2, 2, 'standby')], [0]);
  t.is(s.primary, null);
  t.true(s.problems.some((p) => /node 0 accepts writes but maas-ha fenced it/.test(p)));
});

test('pcp_node_info: the 4.3 line parses, the date keeps its time', (t) => {
  const n = parseNodeInfoLine(0, '127.0.0.1 15432 2 0.333333 up up primary primary 0 none none 2026-11-24 21:17:17');
  t.like(n, { host: '127.0.0.1', port: 15432, status: 2, role: 'primary', actualRole: 'primary', lastStatusChange: '2026-11-24 21:17:17' });
});

test('pcp_node_info: an error text is not mistaken for data', (t) => {
  t.throws(() => parseNodeInfoLine(7, 'ERROR: invalid node ID'), { message: /unexpected output/ });
});

test('lsn: parse, format and compare', (t) => {
  t.is(formatLsn(parseLsn('16/B374D848')), '16/B374D848');
  t.true(parseLsn('1/0') > parseLsn('0/FFFFFFFF'));
  t.throws(() => parseLsn('nope'));
  t.is(formatBytes(512), '512 B');
  t.is(formatBytes(3 * 1024 * 1024), '3.0 MB');
});
