// `maas-ha history`: the journals the hooks write become events (a failover continued by a retry is one event, a
// recovery's two hooks are one), one line each, with the timeline of one on request; --since and the event id are
// checked with messages that name what is wrong. The last tests run the command on a state dir the real store wrote.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createStateStore } from '../../lib/adapters/state.ts';
import { runCli } from '../../lib/cli/main.ts';
import { UsageError } from '../../lib/errors.ts';
import { failoverJournal, RESUME_WINDOW_MS } from '../../lib/failover/journal.ts';
import { buildHistory, failoverEvents, findEvent, historySince, parseSince, recoveryEvents, renderHistory, renderTimeline, vipEvents, type JournalEntry } from '../../lib/history.ts';

const T0 = Date.parse('2025-03-01T10:15:02.100Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
const f = (ms: number, run: string, step: string, more: JournalEntry = {}, failed = 0): JournalEntry => ({ at: at(ms), run_id: run, failed, old_primary: failed, step, ...more });

const FAILOVER_CASES: [string, JournalEntry[], { what: string; nodes: string; outcome: string; runs: number; durationMs: number | null }[]][] = [
  [
    'one run to done → one event, promoted node, fence outcome, first to last step',
    [f(0, 'r1', 'started'), f(120, 'r1', 'chosen', { node: 2 }), f(320, 'r1', 'promoted', { node: 2 }), f(410, 'r1', 'fenced', { node: 0, outcome: 'stopped-fast' }), f(413, 'r1', 'done', { node: 2 })],
    [{ what: 'primary node 0 lost, fenced (stopped-fast), node 2 primary', nodes: 'node 0 → node 2', outcome: 'done', runs: 1, durationMs: 413 }],
  ],
  [
    'an unfinished run continued by a retry within the resume window → one event of 2 runs',
    [f(0, 'r1', 'started'), f(100, 'r1', 'chosen', { node: 1 }), f(60_000, 'r2', 'started'), f(60_300, 'r2', 'promoted', { node: 1 }), f(60_350, 'r2', 'done', { node: 1 })],
    [{ what: 'primary node 0 lost, node 1 primary (2 runs)', nodes: 'node 0 → node 1', outcome: 'done', runs: 2, durationMs: 60_350 }],
  ],
  [
    'an unfinished run and one after the resume window → two events, the first unfinished',
    [f(0, 'r1', 'started'), f(RESUME_WINDOW_MS + 1000, 'r2', 'started'), f(RESUME_WINDOW_MS + 1400, 'r2', 'done', { node: 2 })],
    [
      { what: 'primary node 0 lost', nodes: 'node 0 → none', outcome: 'unfinished', runs: 1, durationMs: null },
      { what: 'primary node 0 lost, node 2 primary', nodes: 'node 0 → node 2', outcome: 'done', runs: 1, durationMs: 400 },
    ],
  ],
  [
    'a run that reached done and a later run a minute on → two events (a new failover of the same node)',
    [f(0, 'r1', 'started'), f(200, 'r1', 'done', { node: 1 }), f(60_000, 'r2', 'started'), f(60_100, 'r2', 'done', { node: 2 })],
    [
      { what: 'primary node 0 lost, node 1 primary', nodes: 'node 0 → node 1', outcome: 'done', runs: 1, durationMs: 200 },
      { what: 'primary node 0 lost, node 2 primary', nodes: 'node 0 → node 2', outcome: 'done', runs: 1, durationMs: 100 },
    ],
  ],
  ['entries without a run id or a readable time → nothing', [{ at: at(0), step: 'started', failed: 0 }, { run_id: 'r', step: 'started', failed: 0 }], []],
];

for (const [title, entries, want] of FAILOVER_CASES) {
  test(`history failover: ${title}`, (t) => {
    t.deepEqual(
      failoverEvents('failover-node0', entries).map(({ what, nodes, outcome, runs, durationMs }) => ({ what, nodes, outcome, runs, durationMs })),
      want,
    );
  });
}

const r = (ms: number, step: string, more: JournalEntry = {}): JournalEntry => ({ at: at(ms), step, ...more });

test('history recovery: planned → prepared → streaming of one node is one done event; a second planned opens a new one', (t) => {
  const events = recoveryEvents('recovery', [
    r(0, 'planned', { node: 1, primary: 0, method: 'rewind' }),
    r(4000, 'prepared', { node: 1, method: 'basebackup' }),
    r(6500, 'streaming', { node: 1, primary: 0, timeline: 3 }),
    r(10_000, 'planned', { node: 1, primary: 0, method: 'rewind' }),
  ]);
  t.deepEqual(
    events.map(({ what, nodes, outcome, durationMs }) => ({ what, nodes, outcome, durationMs })),
    [
      { what: 'node 1 rebuilt (basebackup), streams timeline 3', nodes: 'node 1 from node 0', outcome: 'done', durationMs: 6500 },
      { what: 'node 1 rebuilt (rewind)', nodes: 'node 1 from node 0', outcome: 'unfinished', durationMs: null },
    ],
  );
});

test('history recovery: two nodes rebuilt at once keep their own steps', (t) => {
  const events = recoveryEvents('recovery', [r(0, 'planned', { node: 1, primary: 0 }), r(10, 'planned', { node: 2, primary: 0 }), r(20, 'streaming', { node: 2, primary: 0, timeline: 2 }), r(30, 'streaming', { node: 1, primary: 0, timeline: 2 })]);
  t.deepEqual(events.map((e) => [e.nodes, e.steps.length, e.outcome]), [['node 1 from node 0', 2, 'done'], ['node 2 from node 0', 2, 'done']]);
});

test('history vip: each escalation and de-escalation is one event; ok: false → failed', (t) => {
  const events = vipEvents('vip', [
    { at: at(0), event: 'escalated', ok: true, unreachable: ['10.0.0.12'] },
    { at: at(10), event: 'escalated', via: 'arping', ok: true, unreachable: [] },
    { at: at(20), event: 'de-escalated', ok: false },
    { at: at(30), event: 'something-else' },
  ]);
  t.deepEqual(events.map((e) => [e.what, e.outcome]), [
    ['this host took the VIP; peers not answering: 10.0.0.12', 'done'],
    ['this host took the VIP (from arping_cmd)', 'done'],
    ['this host gave up the VIP', 'failed'],
  ]);
});

test('history: events of every journal, oldest first, ids by kind and second (-2 for a second in the same second); unknown journals ignored', (t) => {
  const events = buildHistory([
    { name: 'vip', entries: [{ at: at(500), event: 'escalated', ok: true }, { at: at(800), event: 'de-escalated', ok: true }] },
    { name: 'failover-node0', entries: [f(0, 'r1', 'started'), f(400, 'r1', 'done', { node: 1 })] },
    { name: 'something', entries: [{ at: at(0), step: 'x' }] },
  ]);
  t.deepEqual(events.map((e) => e.id), ['failover-20250301T101502', 'vip-20250301T101502', 'vip-20250301T101502-2']);
});

const SINCE: [string, string | RegExp][] = [
  ['2h', new Date(T0 - 2 * 3_600_000).toISOString()],
  ['90m', new Date(T0 - 90 * 60_000).toISOString()],
  ['3d', new Date(T0 - 3 * 86_400_000).toISOString()],
  ['1w', new Date(T0 - 7 * 86_400_000).toISOString()],
  ['2025-02-01', '2025-02-01T00:00:00.000Z'],
  ['2025-02-01T10:00', '2025-02-01T10:00:00.000Z'],
  ['2025-02-01 10:00:30Z', '2025-02-01T10:00:30.000Z'],
  ['2025-02-01T10:00:00+02:00', '2025-02-01T08:00:00.000Z'],
  ['yesterday', /^--since: expected an ISO date or time .* got "yesterday"$/],
  ['2h ago', /got "2h ago"/],
  ['-2h', /got "-2h"/],
  ['2025-13-45', /got "2025-13-45"/],
  ['', /got ""/],
];

for (const [text, want] of SINCE) {
  test(`history --since ${JSON.stringify(text)} → ${want}`, (t) => {
    if (typeof want === 'string') t.is(new Date(parseSince(text, T0)).toISOString(), want);
    else t.throws(() => parseSince(text, T0), { instanceOf: UsageError, message: want });
  });
}

test('history --since: an event counts when it ended at or after the time', (t) => {
  const events = buildHistory([{ name: 'failover-node0', entries: [f(0, 'r1', 'started'), f(1000, 'r1', 'done', { node: 1 })] }]);
  t.is(historySince(events, T0 + 1000).length, 1);
  t.is(historySince(events, T0 + 1001).length, 0);
  t.is(historySince(events, undefined).length, 1);
});

test('history ID: a malformed id and one not in the journals are usage errors that name it', (t) => {
  const events = buildHistory([{ name: 'vip', entries: [{ at: at(0), event: 'escalated', ok: true }] }]);
  t.is(findEvent(events, 'vip-20250301T101502', '/s').id, 'vip-20250301T101502');
  t.throws(() => findEvent(events, 'vip-1', '/s'), { instanceOf: UsageError, message: /"vip-1" is not an event id/ });
  t.throws(() => findEvent(events, 'vip-20250301T101503', '/s'), { instanceOf: UsageError, message: /no event vip-20250301T101503 in the journals of \/s/ });
});

test('history: one line per event (when, id, nodes, took, outcome, what); the timeline lists each step at its offset', (t) => {
  const events = buildHistory([{ name: 'failover-node0', entries: [f(0, 'r1', 'started'), f(320, 'r1', 'promoted', { node: 2 }), f(410, 'r1', 'fenced', { node: 0, outcome: 'stopped-fast' }), f(413, 'r1', 'done', { node: 2 })] }]);
  const lines = renderHistory(events, '/s').split('\n');
  t.regex(lines[0]!, /^WHEN \(UTC\)\s+ID\s+NODES\s+TOOK\s+OUTCOME\s+WHAT$/);
  t.regex(lines[1]!, /^2025-03-01 10:15:02Z\s+failover-20250301T101502\s+node 0 → node 2\s+0\.4 s\s+done\s+primary node 0 lost, fenced \(stopped-fast\), node 2 primary$/);
  t.is(renderHistory([], '/s'), 'no events in the journals of /s');
  const timeline = renderTimeline(events[0]!).split('\n');
  t.deepEqual(timeline.slice(2).map((l) => l.trim().split(/\s+/).slice(2).join(' ')), ['+0.00 s started', '+0.32 s promoted node=2', '+0.41 s fenced node=0 outcome=stopped-fast', '+0.41 s done node=2']);
});

// ---- the command, on a state dir the real store wrote ----

function cluster(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-history-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o700);
  const state = join(dir, 'state');
  mkdirSync(state, { mode: 0o700 });
  for (const [name, mode] of [['key', 0o600], ['known_hosts', 0o644], ['pcppass', 0o600]] as const) {
    writeFileSync(join(dir, name), 'localhost:9898:pcpadmin:x\n');
    chmodSync(join(dir, name), mode);
  }
  const config = join(dir, 'maas-ha.yaml');
  writeFileSync(
    config,
    [
      'cluster_name: maas',
      'replication: { user: replicator }',
      'nodes:',
      '  - { id: 0, hostname: 127.0.0.1, port: 1, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }',
      '  - { id: 1, hostname: 127.0.0.1, port: 2, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }',
      `ssh: { identity_file: ${dir}/key, known_hosts_file: ${dir}/known_hosts }`,
      `pcp: { user: pcpadmin, pcppass_file: ${dir}/pcppass }`,
      `state_dir: ${state}`,
      '',
    ].join('\n'),
  );
  let now = T0;
  const store = createStateStore(state, { now: () => now, sleep: async () => {} }, { cluster: 'maas' });
  const j = failoverJournal(store, 'r1', 0, 0);
  j('started');
  now += 400;
  j('done', { node: 1 });
  now += 3_600_000;
  store.journal('vip', { event: 'escalated', ok: true, unreachable: [] });
  return { config };
}

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, pathToFileURL(join(import.meta.dirname, '../../hooks/maas-ha.ts')).href, { out: (x) => out.push(x), err: (x) => err.push(x) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('maas-ha history: the events of the state dir, as lines, as --json, and one timeline; --since filters', async (t) => {
  const { config } = cluster(t);
  const all = await cli(['history', '--config', config]);
  t.is(all.code, 0, all.err);
  t.deepEqual(all.out.split('\n').slice(1, 3).map((l) => l.split(/\s{2,}/)[1]), ['failover-20250301T101502', 'vip-20250301T111502']);
  const json = await cli(['history', '--json', '--since', '2025-03-01T11:00Z', '--config', config]);
  t.is(json.code, 0, json.err);
  t.deepEqual((JSON.parse(json.out) as { id: string; outcome: string }[]).map((e) => [e.id, e.outcome]), [['vip-20250301T111502', 'done']]);
  const one = await cli(['history', 'failover-20250301T101502', '--json', '--config', config]);
  t.deepEqual((JSON.parse(one.out) as { steps: { step: string }[] }).steps.map((s) => s.step), ['started', 'done']);
});

test('maas-ha history: a bad --since, an unknown flag, a malformed id or a missing event → exit 2, naming it', async (t) => {
  const { config } = cluster(t);
  for (const [argv, message] of [
    [['history', '--since', 'soon'], /^maas-ha: --since: .*got "soon"$/],
    [['history', '--since'], /^maas-ha: --since: expected a value$/],
    [['history', '--jsn'], /^maas-ha: --jsn: unknown flag$/],
    [['history', 'a', 'b'], /^maas-ha: unexpected argument "b"/],
    [['history', 'failover-1'], /"failover-1" is not an event id/],
    [['history', 'vip-20990101T000000'], /no event vip-20990101T000000 in the journals of /],
  ] as const) {
    const r = await cli([...argv, '--config', config]);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.err, message);
  }
});
