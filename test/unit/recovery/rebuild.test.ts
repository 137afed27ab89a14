// rebuildAsStandby (lib/recovery/rebuild.ts) against an in-process world: three database hosts modelled as plain
// objects behind the Deps seam (pg, ssh, state, clock), no hook spawned, no PostgreSQL. Each ssh command is
// recognised by the script it runs (lib/recovery/scripts.ts, lib/pgctl.ts) and changes the modelled host the way
// the real script would. What is asserted is the order of effects the module promises: the rebuild lock around the
// preparation, the stop before anything is changed, nothing deleted beside the data directory before the node is
// proven to stream, and the truth about what happened when a step fails.
import test from 'ava';
import type { NodeConfig } from '../../../lib/config/types.ts';
import { OperationError } from '../../../lib/errors.ts';
import type { Deps, Log, RunResult } from '../../../lib/model/ports.ts';
import { OBSERVE_SQL } from '../../../lib/observe.ts';
import { rebuildAsStandby } from '../../../lib/recovery/rebuild.ts';
import { BASEBACKUP_SCRIPT, FACTS_SCRIPT, LOCK_SCRIPT, PRUNE_SCRIPT, REWIND_SCRIPT, STANDBY_CONF_SCRIPT, UNLOCK_SCRIPT } from '../../../lib/recovery/scripts.ts';
import { testConfig } from '../../support/config.ts';
import { observeRow } from '../../support/observe-row.ts';

const SYSID = '7300000000000000001';

interface Host {
  /** What PostgreSQL on it is, when it runs. */
  role: 'primary' | 'standby' | 'stopped';
  timeline: number;
  /** pg_controldata's cluster state while stopped. */
  controlState: string;
  standbySignal: boolean;
  /** A running standby streams from this node id (undefined: its receiver is gone). */
  upstream?: number;
  oldDirs: string[];
  /** The rebuild lock beside its data directory: the owner text, as LOCK_SCRIPT keeps it. */
  lock?: string;
  /** pg_rewind fails with these words. */
  rewindFails?: string;
  /** When started, it comes up as this instead of a standby of the primary. */
  startsAs?: 'primary' | 'standby-not-streaming';
}

type Effect = string;

function world(hosts: Host[]) {
  const config = testConfig({}, hosts.length);
  // One host per node: the default test nodes share a data directory path, which is right (each on its own host).
  const effects: Effect[] = [];
  let now = Date.parse('2026-12-02T12:00:00Z');
  const byHost = (host: string) => {
    const id = config.nodes.findIndex((n) => n.ssh_host === host);
    return { id, h: hosts[id]! };
  };
  const primaryId = () => hosts.findIndex((h) => h.role === 'primary');
  const result = (argv: readonly string[], exitCode: number, stdout = '', stderr = ''): RunResult => ({
    argv: [...argv], exitCode, signal: null, stdout, stderr, durationMs: 1, timedOut: false,
  });
  const control = (h: Host) =>
    [
      `control: Database system identifier:           ${SYSID}`,
      `control: Database cluster state:               ${h.controlState}`,
      `control: Latest checkpoint location:           0/3000028`,
      `control: Latest checkpoint's TimeLineID:       ${h.timeline}`,
      `control: Minimum recovery ending location:     0/0`,
      `control: Min recovery ending loc's timeline:   0`,
      `control: wal_log_hints setting:                on`,
      `control: Data page checksum version:           0`,
    ].join('\n');
  const ssh = {
    async run(host: string, argv: readonly string[]): Promise<RunResult> {
      const { id, h } = byHost(host);
      const at = argv.findIndex((a, i) => a === 'sh' && argv[i + 1] === '-c');
      if (at === -1) throw new Error(`unexpected command on node ${id}: ${argv.join(' ')}`);
      const script = argv[at + 2]!;
      const args = argv.slice(at + 4);
      const running = h.role !== 'stopped';
      if (script === LOCK_SCRIPT) {
        effects.push(`lock ${id}`);
        if (h.lock && !h.lock.startsWith(`run=${args[1]} `)) return result(argv, 3, `held=${h.lock}\n`);
        h.lock = `run=${args[1]} since=1 until=${Number(args[2]) + 1}`;
        return result(argv, 0, `locked=${args[1]}\n`);
      }
      if (script === UNLOCK_SCRIPT) {
        effects.push(`unlock ${id}`);
        h.lock = undefined;
        return result(argv, 0, 'unlocked=1\n');
      }
      if (script === FACTS_SCRIPT) {
        const lines = [
          'datadir=1', 'empty=0', 'pg_version=15', `running=${running ? 1 : 0}`, `standby_signal=${h.standbySignal ? 1 : 0}`,
          'new=0', 'new_complete=0', 'parent=1', 'parent_writable=1', 'writable=1', 'free_kb=10485760', 'size_kb=40000',
          ...h.oldDirs.map((d) => `old=${d}`),
          control(h),
        ];
        return result(argv, 0, `${lines.join('\n')}\n`);
      }
      if (script.includes('fence_dir="$4"')) {
        effects.push(`stop ${id}`);
        if (!running) return result(argv, 0, 'not-running\n');
        h.controlState = h.role === 'primary' ? 'shut down' : 'shut down in recovery';
        h.role = 'stopped';
        return result(argv, 0, 'stopped-fast\n');
      }
      if (script === REWIND_SCRIPT) {
        effects.push(`rewind ${id}`);
        if (running) throw new Error('pg_rewind of a running node');
        if (h.rewindFails) return result(argv, 10, 'stage=saved\n', `pg_rewind: error: ${h.rewindFails}\n`);
        h.standbySignal = true;
        h.timeline = hosts[primaryId()]!.timeline;
        h.controlState = 'in archive recovery';
        return result(argv, 0, 'stage=saved\nstage=rewound\n', 'pg_rewind: Done!\n');
      }
      if (script === BASEBACKUP_SCRIPT) {
        const oldDir = args[1]!;
        effects.push(`basebackup ${id} (old data kept at ${oldDir})`);
        if (running) throw new Error('base backup swap over a running node');
        h.oldDirs.push(oldDir);
        h.standbySignal = true;
        h.timeline = hosts[primaryId()]!.timeline;
        h.rewindFails = undefined;
        return result(argv, 0, `stage=copied\nold=${oldDir}\nstage=swapped\n`);
      }
      if (script === STANDBY_CONF_SCRIPT) {
        effects.push(`standby-conf ${id}`);
        h.standbySignal = true;
        return result(argv, 0, 'stage=done\n');
      }
      if (script.includes('refusing to start')) {
        effects.push(`start ${id}`);
        if (!h.standbySignal) return result(argv, 3, '', 'refusing to start: no standby.signal');
        if (h.lock) throw new Error(`node ${id} started while its rebuild lock is held`);
        if (h.startsAs === 'primary') {
          h.role = 'primary';
          h.timeline += 1;
        } else {
          h.role = 'standby';
          h.upstream = h.startsAs === 'standby-not-streaming' ? undefined : primaryId();
        }
        return result(argv, 0);
      }
      if (script === PRUNE_SCRIPT) {
        const dirs = args.slice(args.indexOf('--tidy') + 2);
        effects.push(`prune ${id}${dirs.length ? ` ${dirs.join(' ')}` : ''}`);
        h.oldDirs = h.oldDirs.filter((d) => !dirs.includes(d));
        return result(argv, 0, dirs.map((d) => `pruned=${d}\n`).join(''));
      }
      throw new Error(`unexpected script on node ${id}: ${script.slice(0, 80)}`);
    },
  };
  const pg = {
    async query(target: { host: string; port: number; replicationConnection?: boolean }, sql: string) {
      const id = config.nodes.findIndex((n) => n.hostname === target.host && n.port === target.port);
      const h = hosts[id]!;
      if (h.role === 'stopped') throw new Error('connect ECONNREFUSED', { cause: { code: 'ECONNREFUSED' } });
      if (sql === 'IDENTIFY_SYSTEM') return [{ timeline: h.timeline }];
      if (sql === 'CHECKPOINT') {
        effects.push(`checkpoint ${id}`);
        return [];
      }
      if (sql.includes('pg_create_physical_replication_slot')) {
        effects.push(`slot on ${id}`);
        return [];
      }
      if (sql.includes('system_identifier')) {
        return [{ in_recovery: h.role !== 'primary', sysid: SYSID, major: '15', tli: h.timeline, lsn: '0/5000000', size: '40960000', tablespaces: [] }];
      }
      if (sql !== OBSERVE_SQL) throw new Error(`unexpected statement: ${sql}`);
      return [observeRow({ primary: h.role === 'primary', timeline: h.timeline, upstream: h.upstream !== undefined ? config.nodes[h.upstream] : undefined, lsn: '0/5000000' })];
    },
  };
  const fenced = new Set<number>();
  const state = {
    fenced: () => [...fenced].map((node) => ({ node, since: 'earlier', reason: 'old primary' })),
    clearFenced: (node: number) => {
      effects.push(`unfence ${node}`);
      fenced.delete(node);
    },
  };
  const warnings: string[] = [];
  const log: Log = { debug: () => {}, info: () => {}, warn: (_o: unknown, m?: string) => void warnings.push(String(m)), error: () => {}, child: () => log } as Log;
  const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
  const deps = { config, pg, ssh, state, clock, log } as unknown as Deps;
  return { deps, effects, warnings, fenced, nodes: config.nodes, hosts };
}

const stoppedOldPrimary = (over: Partial<Host> = {}): Host => ({ role: 'stopped', timeline: 1, controlState: 'shut down', standbySignal: true, oldDirs: [], ...over });
const primary = (timeline = 2): Host => ({ role: 'primary', timeline, controlState: 'in production', standbySignal: false, oldDirs: [] });
const standbyOf = (upstream: number, timeline = 2): Host => ({ role: 'standby', timeline, controlState: 'in archive recovery', standbySignal: true, upstream, oldDirs: [] });

const rebuild = (w: ReturnType<typeof world>, node = 0, primaryNode = 1) =>
  rebuildAsStandby(w.deps, w.nodes[node] as NodeConfig, w.nodes[primaryNode] as NodeConfig, { method: 'auto', force: false, initial: false, basebackup: true }, 120_000);

test('rebuild: a cleanly stopped former primary is rewound under its lock, started only after the unlock, tidied only once it streams', async (t) => {
  const w = world([stoppedOldPrimary(), primary(), standbyOf(1)]);
  w.fenced.add(0);
  const r = await rebuild(w);
  t.is(r.plan.kind === 'rebuild' && r.plan.method, 'rewind');
  t.is(r.timeline, 2);
  t.deepEqual(w.effects, ['lock 0', 'slot on 1', 'checkpoint 1', 'rewind 0', 'unlock 0', 'start 0', 'prune 0', 'unfence 0']);
  t.is(w.hosts[0]!.role, 'standby');
  t.false(w.fenced.has(0), 'a streaming standby is no longer fenced');
});

test('rebuild: a node that still runs is stopped before anything else is changed', async (t) => {
  const w = world([{ ...standbyOf(1, 1), upstream: undefined }, primary(), standbyOf(1)]);
  const r = await rebuild(w);
  t.is(r.plan.kind === 'rebuild' && r.plan.method, 'rewind');
  t.deepEqual(w.effects.slice(0, 4), ['lock 0', 'stop 0', 'slot on 1', 'checkpoint 1']);
  t.true(w.effects.indexOf('stop 0') < w.effects.indexOf('rewind 0'));
});

test('rebuild: pg_rewind fails → base backup beside, the rewound directory moved aside and kept, never pruned', async (t) => {
  const w = world([stoppedOldPrimary({ rewindFails: 'could not find common ancestor of the source and target cluster\'s timelines' }), primary(), standbyOf(1)]);
  const r = await rebuild(w);
  t.is(r.prepared?.method, 'basebackup');
  t.regex(r.prepared?.rewindFailure ?? '', /could not find common ancestor/);
  const aside = w.hosts[0]!.oldDirs;
  t.is(aside.length, 1, 'the directory pg_rewind touched is beside the new one');
  t.deepEqual(r.kept, aside);
  t.deepEqual(r.pruned, []);
  t.deepEqual(w.effects, ['lock 0', 'slot on 1', 'checkpoint 1', 'rewind 0', `basebackup 0 (old data kept at ${aside[0]})`, 'unlock 0', 'start 0', 'prune 0']);
  t.true(w.warnings.some((m) => /falling back to a base backup; the rewound directory will be kept/.test(m)));
});

test('rebuild: only recovery.keep_old_data_dirs replaced directories are kept, and the oldest go only after the node streams', async (t) => {
  const older = ['/var/lib/postgresql/15/main.maas-ha-old-20260101T000000Z', '/var/lib/postgresql/15/main.maas-ha-old-20260102T000000Z'];
  const w = world([stoppedOldPrimary({ rewindFails: 'source and target clusters are from different systems', oldDirs: [...older] }), primary(), standbyOf(1)]);
  w.deps.config.recovery.keep_old_data_dirs = 1;
  const r = await rebuild(w);
  const newest = w.hosts[0]!.oldDirs;
  t.is(newest.length, 1);
  t.false(older.includes(newest[0]!), 'the directory kept is the one this run moved aside');
  t.deepEqual([...r.pruned].sort(), older);
  const prune = w.effects.findIndex((e) => e.startsWith('prune 0'));
  t.true(prune > w.effects.indexOf('start 0'), 'nothing is deleted before the node runs as a standby');
});

test('rebuild: another run holds the node\'s rebuild lock → refused, the node not even stopped', async (t) => {
  const w = world([{ ...standbyOf(1, 1), upstream: undefined, lock: 'run=other-run since=1 until=99999999999' }, primary(), standbyOf(1)]);
  const err = await t.throwsAsync(rebuild(w), { instanceOf: OperationError });
  t.regex(err!.message, /node 0 is being rebuilt by run other-run .*nothing was changed/);
  t.deepEqual(w.effects, ['lock 0']);
  t.is(w.hosts[0]!.role, 'standby', 'still running as it was');
});

test('rebuild: the node comes up as a primary after the rebuild → stopped again, failure, nothing tidied', async (t) => {
  const w = world([stoppedOldPrimary({ startsAs: 'primary' }), primary(), standbyOf(1)]);
  const err = await t.throwsAsync(rebuild(w), { instanceOf: OperationError });
  t.regex(err!.message, /node 0 came up as a primary, not a standby: stopped it again/);
  t.is(w.hosts[0]!.role, 'stopped');
  t.deepEqual(w.effects.slice(-2), ['start 0', 'stop 0']);
  t.false(w.effects.some((e) => e.startsWith('prune')));
});

test('rebuild: the node runs but never streams → failure within the stream timeout, old data directories untouched', async (t) => {
  const kept = ['/var/lib/postgresql/15/main.maas-ha-old-20260101T000000Z'];
  const w = world([stoppedOldPrimary({ startsAs: 'standby-not-streaming', oldDirs: [...kept] }), primary(), standbyOf(1)]);
  w.deps.config.recovery.keep_old_data_dirs = 0;
  const err = await t.throwsAsync(rebuild(w), { instanceOf: OperationError });
  t.regex(err!.message, /node 0 runs but does not stream from node 1 after \d+ ms \(no walreceiver yet\)/);
  t.deepEqual(w.hosts[0]!.oldDirs, kept, 'keep_old_data_dirs: 0 prunes only after the node streams');
  t.false(w.effects.some((e) => e.startsWith('prune')));
});

test('rebuild: a failover while the node starts → it follows the new primary, and says so', async (t) => {
  const w = world([stoppedOldPrimary({ startsAs: 'standby-not-streaming' }), primary(), standbyOf(1)]);
  // Once node 0 has been started, node 1 dies and node 2 is promoted; node 0 is repointed (as follow_primary does).
  const run = w.deps.ssh.run.bind(w.deps.ssh);
  w.deps.ssh.run = async (host, argv, opts) => {
    const r = await run(host, argv, opts);
    if (w.effects.at(-1) === 'start 0') {
      Object.assign(w.hosts[1]!, { role: 'stopped' });
      Object.assign(w.hosts[2]!, { role: 'primary', timeline: 3, upstream: undefined });
      Object.assign(w.hosts[0]!, { upstream: 2, timeline: 3 });
    }
    return r;
  };
  const r = await rebuild(w);
  t.is(r.timeline, 3);
  t.true(w.warnings.some((m) => /a failover made node 2 the primary while node 0 was being rebuilt; waiting for node 0 to stream from node 2/.test(m)));
});

test('rebuild: a crashed standby on the primary\'s timeline whose WAL is a prefix → only its settings and a start, no rewind, no copy', async (t) => {
  const w = world([{ role: 'stopped', timeline: 2, controlState: 'in archive recovery', standbySignal: true, oldDirs: [] }, primary(), standbyOf(1)]);
  const r = await rebuild(w);
  t.is(r.plan.kind === 'rebuild' && r.plan.method, 'start');
  t.deepEqual(w.effects, ['lock 0', 'slot on 1', 'standby-conf 0', 'unlock 0', 'start 0', 'prune 0']);
});
