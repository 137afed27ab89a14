// The guard's use case against a fake world: what it runs, in which order, and within which bounds.
import test from 'ava';
import { demote, runGuard, type GuardDeps } from '../../../lib/guard/guard.ts';
import type { GuardFiles } from '../../../lib/guard/files.ts';
import type { Log, LogFields, RunOptions, RunResult } from '../../../lib/model/ports.ts';
import { testConfig, testNode } from '../../support/config.ts';

type Role = { primary: number } | { standby: number } | 'down' | 'silent';

interface World {
  deps: GuardDeps;
  runs: { argv: string[]; opts: RunOptions; at: number }[];
  events: string[];
  logs: { level: string; msg: string; fields: LogFields }[];
  signal: { present: boolean };
}

function world(roles: Role[], opts: { fastStops?: boolean; immediateStops?: boolean; signalPresent?: boolean; signalFails?: boolean; controldata?: string } = {}): World {
  const config = testConfig();
  let now = 1_000_000;
  const runs: World['runs'] = [];
  const events: string[] = [];
  const logs: World['logs'] = [];
  const signal = { present: opts.signalPresent ?? false };
  let running = roles[0] !== 'down';
  const result = (argv: readonly string[], exitCode: number, stdout = '', durationMs = 10): RunResult => ({ argv: [...argv], exitCode, signal: null, stdout, stderr: exitCode ? 'pg_ctl: server does not shut down' : '', durationMs, timedOut: false });
  const log: Log = {
    debug: (f, m) => logs.push({ level: 'debug', msg: m, fields: f }),
    info: (f, m) => logs.push({ level: 'info', msg: m, fields: f }),
    warn: (f, m) => logs.push({ level: 'warn', msg: m, fields: f }),
    error: (f, m) => logs.push({ level: 'error', msg: m, fields: f }),
    child: () => log,
  };
  const files: GuardFiles = {
    hasStandbySignal: () => signal.present,
    writeStandbySignal: () => {
      events.push('write standby.signal');
      if (opts.signalFails) throw new Error('EACCES');
      if (signal.present) return 'exists';
      signal.present = true;
      return 'written';
    },
  };
  const deps: GuardDeps = {
    config,
    log,
    clock: { now: () => now, sleep: async (ms) => void (now += ms) },
    files,
    shell: {
      async run(argv, o) {
        runs.push({ argv: [...argv], opts: o, at: now });
        const a = argv.join(' ');
        if (a.includes('pg_controldata')) return result(argv, 0, opts.controldata ?? "Latest checkpoint's TimeLineID:       1\n");
        if (a.includes(' status')) return result(argv, running ? 0 : 3);
        if (a.includes(' stop')) {
          const mode = a.includes('-m immediate') ? 'immediate' : 'fast';
          events.push(`stop ${mode}`);
          const stops = mode === 'fast' ? (opts.fastStops ?? true) : (opts.immediateStops ?? true);
          now += stops ? 300 : o.timeoutMs;
          if (stops) running = false;
          return stops ? result(argv, 0) : { ...result(argv, null as unknown as number, '', o.timeoutMs), timedOut: true };
        }
        throw new Error(`unexpected command ${a}`);
      },
    },
    pg: {
      async query(target, sql) {
        const node = config.nodes.find((n) => n.hostname === target.host)!;
        const role = node.id === 0 && !running ? 'down' : roles[node.id]!;
        if (role === 'down') throw Object.assign(new Error('refused'), { cause: { code: 'ECONNREFUSED' } });
        if (role === 'silent') throw new Error('no answer within 2000 ms');
        if (sql === 'IDENTIFY_SYSTEM') throw new Error('no replication access');
        const isPrimary = 'primary' in role;
        const tli = isPrimary ? role.primary : role.standby;
        return [{
          in_recovery: !isPrimary, primary_tli: isPrimary ? tli : null, checkpoint_tli: tli, current_lsn: isPrimary ? '0/3000000' : null,
          receive_lsn: isPrimary ? null : '0/3000000', replay_lsn: isPrimary ? null : '0/3000000',
          wal_receiver: isPrimary ? null : { status: 'streaming', sender_host: 'x', sender_port: 5432, received_tli: tli, slot_name: null },
          replication: [], synchronous_standby_names: '',
        }] as never[];
      },
    },
  };
  return { deps, runs, events, logs, signal };
}

const node0 = testNode(0);

test('guard check: stale primary → standby.signal is written before the fast stop, and the node ends stopped', async (t) => {
  const w = world([{ primary: 1 }, { primary: 2 }, { standby: 1 }]);
  const r = await runGuard(w.deps, node0, 'check', { dryRun: false });
  t.true(r.ok, r.summary);
  t.deepEqual(w.events, ['write standby.signal', 'stop fast']);
  t.regex(r.summary, /^demoted: node 0 is a primary on timeline 1 but node 1 is a primary on timeline 2.*wrote .*standby.signal, stopped \(fast\)$/);
  const stop = w.runs.find((x) => x.argv.includes('stop'))!;
  t.deepEqual(stop.argv.slice(0, 4), ['pg_ctlcluster', '15', 'main', 'stop']);
  t.true(stop.opts.timeoutMs <= 5000);
});

test('guard check: fast stop does not finish → immediate, the whole demotion within 5 s', async (t) => {
  const w = world([{ primary: 1 }, { primary: 2 }, { standby: 2 }], { fastStops: false });
  const started = w.deps.clock.now();
  const r = await demote(w.deps, node0);
  t.true(r.ok, r.text);
  t.deepEqual(w.events, ['write standby.signal', 'stop fast', 'stop immediate']);
  t.regex(r.text, /stopped \(immediate: fast did not finish\)/);
  t.true(w.deps.clock.now() - started <= 5000, `took ${w.deps.clock.now() - started} ms`);
  for (const x of w.runs) t.true(x.opts.timeoutMs > 0 && x.opts.timeoutMs <= 5000);
});

test('guard check: neither stop finishes → failed, says it is still running, still within 5 s', async (t) => {
  const w = world([{ primary: 1 }, { primary: 2 }, { standby: 2 }], { fastStops: false, immediateStops: false });
  const started = w.deps.clock.now();
  const r = await runGuard(w.deps, node0, 'check', { dryRun: false });
  t.false(r.ok);
  t.regex(r.summary, /demotion FAILED: .*STILL RUNNING/);
  t.true(w.deps.clock.now() - started <= 5000, `took ${w.deps.clock.now() - started} ms`);
});

test('guard check: standby.signal cannot be written → it still stops the node, and reports the failure', async (t) => {
  const w = world([{ primary: 1 }, { primary: 2 }, { standby: 2 }], { signalFails: true });
  const r = await runGuard(w.deps, node0, 'check', { dryRun: false });
  t.false(r.ok);
  t.deepEqual(w.events, ['write standby.signal', 'stop fast']);
  t.regex(r.summary, /could not write standby.signal: EACCES, stopped \(fast\)/);
});

test('guard check --dry-run: says what it would do, does nothing', async (t) => {
  const w = world([{ primary: 1 }, { primary: 2 }, { standby: 2 }]);
  const r = await runGuard(w.deps, node0, 'check', { dryRun: true });
  t.true(r.ok);
  t.deepEqual(w.events, []);
  t.regex(r.summary, /^dry run, nothing done: .*would write standby.signal into \/var\/lib\/postgresql\/15\/main, then stop PostgreSQL fast/);
});

test('guard check: peers silent → the primary keeps running, nothing run but observations', async (t) => {
  const w = world([{ primary: 1 }, 'silent', 'silent']);
  const r = await runGuard(w.deps, node0, 'check', { dryRun: false });
  t.like(r.plan, { action: 'none', level: 'warn' });
  t.deepEqual(w.events, []);
  t.deepEqual(w.runs, [], 'a node that answers over libpq needs no local command');
});

test('guard start-check: stopped, no standby.signal, a peer is the primary → standby.signal written, from pg_controldata with LC_ALL=C', async (t) => {
  const w = world(['down', { primary: 2 }, { standby: 2 }]);
  const r = await runGuard(w.deps, node0, 'start-check', { dryRun: false });
  t.true(r.ok, r.summary);
  t.true(w.signal.present);
  t.like(r.facts.local, { kind: 'stopped', checkpointTimeline: 1 });
  const cd = w.runs.find((x) => x.argv[0]!.endsWith('pg_controldata'))!;
  t.deepEqual(cd.argv, ['/usr/lib/postgresql/15/bin/pg_controldata', '-D', '/var/lib/postgresql/15/main']);
  t.is(cd.opts.env?.LC_ALL, 'C');
});

test('guard start-check: standby.signal cannot be written → exit-worthy failure (systemd must not start a primary)', async (t) => {
  const w = world(['down', { primary: 2 }, { standby: 2 }], { signalFails: true });
  const r = await runGuard(w.deps, node0, 'start-check', { dryRun: false });
  t.false(r.ok);
  t.regex(r.summary, /could not write standby.signal/);
});

test('guard start-check: cold start (no peer answers) → allowed, nothing written', async (t) => {
  const w = world(['down', 'down', 'silent']);
  const r = await runGuard(w.deps, node0, 'start-check', { dryRun: false });
  t.true(r.ok);
  t.false(w.signal.present);
  t.regex(r.summary, /starts as a primary .*cold start/);
});
