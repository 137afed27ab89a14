// runFollow (lib/failover/follow.ts) against an in-process world: fake pg, pcp, ssh and clock as plain objects
// behind the Deps seam, no hook spawned. The cases that need no rebuild: attach, refuse, leave, skip.
import test from 'ava';
import type { NodeConfig } from '../../../lib/config/types.ts';
import { runFollow } from '../../../lib/failover/follow.ts';
import type { Deps, Log, PcpNodeInfo, RunResult } from '../../../lib/model/ports.ts';
import { OBSERVE_SQL } from '../../../lib/observe.ts';
import { testConfig } from '../../support/config.ts';
import { observeRow } from '../../support/observe-row.ts';

type NodeState =
  | { kind: 'primary'; timeline: number }
  | { kind: 'standby'; timeline: number; upstream?: NodeConfig }
  | { kind: 'down'; sshAnswers: boolean };

function world(states: NodeState[]) {
  const config = testConfig();
  const calls: string[] = [];
  const attached = new Set<number>();
  const state = (host: string, port: number) => {
    const i = config.nodes.findIndex((n) => n.hostname === host && n.port === port);
    return { id: i, s: states[i]! };
  };
  const pg = {
    async query(target: { host: string; port: number }, sql: string) {
      const { s } = state(target.host, target.port);
      if (s.kind === 'down') throw new Error('connect ECONNREFUSED', { cause: { code: 'ECONNREFUSED' } });
      if (sql === 'IDENTIFY_SYSTEM') return [{ timeline: s.timeline }];
      if (sql !== OBSERVE_SQL) throw new Error(`unexpected statement: ${sql}`);
      return [observeRow({ primary: s.kind === 'primary', timeline: s.timeline, upstream: s.kind === 'standby' ? s.upstream : undefined })];
    },
  };
  const info = (id: number): PcpNodeInfo => ({
    id, host: config.nodes[id]!.hostname, port: 5432, status: attached.has(id) ? 1 : 3, statusName: attached.has(id) ? 'up' : 'down', weight: 0.5,
    actualStatus: 'up', role: 'standby', actualRole: 'standby', replicationDelay: '0', replicationState: '', replicationSyncState: '', lastStatusChange: '',
  });
  const pcp = {
    async attach(id: number) {
      calls.push(`pcp attach ${id}`);
      attached.add(id);
    },
    nodeInfo: async (id: number) => info(id),
  };
  const ssh = {
    async run(host: string, argv: readonly string[]): Promise<RunResult> {
      calls.push(`ssh ${host} ${argv[0]}`);
      const i = config.nodes.findIndex((n) => n.ssh_host === host);
      const s = states[i]!;
      const answers = s.kind !== 'down' || s.sshAnswers;
      return { argv: [...argv], exitCode: answers ? 1 : 255, signal: null, stdout: '', stderr: answers ? '' : 'Connection timed out', durationMs: 1, timedOut: false };
    },
  };
  let now = 0;
  const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
  const log: Log = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {}, child: () => log };
  // No maintenance marks: this world's nodes are all the hook's to handle.
  const marks = { maintenance: () => [] };
  const deps = { config, pg, pcp, ssh, clock, log, state: marks } as unknown as Deps;
  return { deps, calls, nodes: config.nodes };
}

const follow = (deps: Deps, node: number, newPrimary = 1) => runFollow(deps, { node, newPrimary }, () => 60_000);

test('follow run: a standby that already streams the new timeline from the new primary → attached, nothing else done', async (t) => {
  const { deps, calls, nodes } = world([{ kind: 'down', sshAnswers: false }, { kind: 'primary', timeline: 2 }, { kind: 'standby', timeline: 2, upstream: testConfig().nodes[1] }]);
  const r = await follow(deps, 2);
  t.deepEqual(r, { ok: true, summary: `node 2 already followed node ${nodes[1]!.id}: attached` });
  t.deepEqual(calls, ['pcp attach 2']);
});

test('follow run: the node runs as a second primary → failure, left detached, never touched', async (t) => {
  const { deps, calls } = world([{ kind: 'primary', timeline: 1 }, { kind: 'primary', timeline: 2 }, { kind: 'standby', timeline: 2 }]);
  const r = await follow(deps, 0);
  t.false(r.ok);
  t.is(r.summary, 'node 0 is running as a primary: refusing to touch a second primary (fence it, then recover it); node 0 stays detached');
  t.deepEqual(calls, []);
});

test('follow run: the new primary does not answer as a primary → failure, the node left as it is', async (t) => {
  const { deps, calls } = world([{ kind: 'down', sshAnswers: true }, { kind: 'standby', timeline: 1 }, { kind: 'standby', timeline: 1 }]);
  const r = await follow(deps, 2);
  t.deepEqual(r, { ok: false, summary: 'node 1 is not an answering primary (in recovery): node 2 left as it is' });
  t.deepEqual(calls, []);
});

test('follow run: the dead old primary whose host does not answer ssh → left for maas-ha recover, which is no failure', async (t) => {
  const { deps, calls } = world([{ kind: 'down', sshAnswers: false }, { kind: 'primary', timeline: 2 }, { kind: 'standby', timeline: 2 }]);
  const r = await follow(deps, 0);
  t.deepEqual(r, { ok: true, summary: 'node 0 is down and its host does not answer ssh: leave it for maas-ha recover; node 0 stays detached' });
  t.deepEqual(calls, ['ssh 10.0.0.11 /usr/lib/postgresql/15/bin/pg_controldata']);
});

test('follow run: the new primary itself → skipped', async (t) => {
  const { deps, calls } = world([{ kind: 'down', sshAnswers: false }, { kind: 'primary', timeline: 2 }, { kind: 'standby', timeline: 2 }]);
  t.deepEqual(await follow(deps, 1), { ok: true, summary: 'node 1 is the new primary' });
  t.deepEqual(calls, []);
});
