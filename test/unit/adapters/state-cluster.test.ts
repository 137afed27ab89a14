// Fencing markers and journal entries belong to one cluster: written with its name, read back only when they carry
// it (or carry none: written before the name was recorded). Another cluster's, or a line that does not parse, is
// reported and left out, never acted on; a damaged marker still keeps its node fenced (pending).
import test from 'ava';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore, judgeFencedMarker, readJournalText } from '../../../lib/adapters/state.ts';
import { createDeps } from '../../../lib/wiring.ts';
import { journalName, resumeFrom } from '../../../lib/failover/journal.ts';
import type { Log } from '../../../lib/model/ports.ts';
import { testConfig } from '../../support/config.ts';

const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

function world(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-cluster-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const store = createStateStore(dir, clock, { cluster: 'region', warn: (m) => warnings.push(m) });
  return { dir, store, warnings };
}

test('journal: entries are written with the cluster name', (t) => {
  const w = world(t);
  w.store.journal('failover-node0', { run_id: 'r1', step: 'started', cluster: 'spoofed' });
  const line = JSON.parse(readFileSync(join(w.dir, 'journal', 'failover-node0.jsonl'), 'utf8')) as Record<string, unknown>;
  t.like(line, { run_id: 'r1', step: 'started', cluster: 'region' });
});

test('attack: a forged journal entry of another cluster ("already fenced") → left out and reported; the failover does not skip fencing', (t) => {
  const w = world(t);
  const now = Date.now();
  const at = new Date(now - 1000).toISOString();
  const file = join(w.dir, 'journal', `${journalName(0)}.jsonl`);
  w.store.journal(journalName(0), { run_id: 'mine', failed: 0, old_primary: 0, step: 'started' });
  appendFileSync(file, `${JSON.stringify({ at, run_id: 'mine', failed: 0, old_primary: 0, step: 'fenced', outcome: 'stopped-fast', cluster: 'other' })}\n`);
  appendFileSync(file, '{"at":"2026-');
  const entries = w.store.readJournal(journalName(0));
  t.deepEqual(entries.map((e) => e.step), ['started']);
  t.is(resumeFrom(entries, 0, 0, now)?.fenced, undefined, 'the forged "fenced" step is not believed');
  t.deepEqual(w.warnings, [
    `journal ${file}: line 2 belongs to cluster "other", not region: left out`,
    `journal ${file}: line 3 is not a journal entry ({"at":"2026-): left out`,
  ]);
});

test('journal: an entry without a cluster (written before the name was recorded) is read as this cluster\'s', (t) => {
  t.deepEqual(readJournalText('{"step":"started"}\n{"step":"fenced","cluster":"region"}\n', 'region'), {
    entries: [{ step: 'started' }, { step: 'fenced', cluster: 'region' }],
    ignored: [],
  });
});

test('markers: written with the cluster name; a marker of another cluster → left out and reported', (t) => {
  const w = world(t);
  w.store.markFenced({ node: 0, since: '2026-11-25T09:00:00.000Z', status: 'stopped', reason: 'r' });
  t.like(JSON.parse(readFileSync(join(w.dir, 'fenced', 'node-0.json'), 'utf8')), { node: 0, cluster: 'region' });
  writeFileSync(join(w.dir, 'fenced', 'node-1.json'), JSON.stringify({ node: 1, since: 's', status: 'stopped', reason: 'theirs', cluster: 'other' }));
  t.deepEqual(w.store.fenced().map((m) => m.node), [0]);
  t.deepEqual(w.warnings, ['fencing marker node-1.json belongs to cluster "other", not region: left out']);
});

test('markers: a damaged marker still fences its node (pending) and is reported; a legacy one without a cluster is read', (t) => {
  const w = world(t);
  w.store.markFenced({ node: 0, since: '2026-11-25T09:00:00.000Z', status: 'stopped', reason: 'r' });
  writeFileSync(join(w.dir, 'fenced', 'node-1.json'), '{"node":1,"clus');
  writeFileSync(join(w.dir, 'fenced', 'node-2.json'), JSON.stringify({ node: 2, since: 's', status: 'stopped', reason: 'old' }));
  const got = w.store.fenced().sort((a, b) => a.node - b.node);
  t.deepEqual(got.map((m) => [m.node, m.status]), [[0, 'stopped'], [1, 'pending'], [2, 'stopped']]);
  t.deepEqual(w.warnings, ['fencing marker node-1.json is damaged: node 1 stays fenced (pending)']);
});

test('judgeFencedMarker: another cluster → ignored; no cluster given → every marker read as before', (t) => {
  const m = JSON.stringify({ node: 3, since: 's', status: 'stopped', reason: 'r', cluster: 'other' });
  const mtime = new Date('2026-11-25T10:00:00Z');
  t.like(judgeFencedMarker('node-3.json', m, mtime, 'region'), { ignored: 'fencing marker node-3.json belongs to cluster "other", not region: left out' });
  t.is(judgeFencedMarker('node-3.json', m, mtime, 'region').marker, undefined);
  t.like(judgeFencedMarker('node-3.json', m, mtime).marker, { node: 3, status: 'stopped' });
});

test('createDeps: the state store writes and reads with config.cluster_name, and reports through the log', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-cluster-deps-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  const log: Log = { debug() {}, info() {}, warn: (_f, m) => void warnings.push(m), error() {}, child: () => log };
  const config = { ...testConfig(), cluster_name: 'region', state_dir: dir };
  const deps = createDeps(config, log);
  deps.state.markFenced({ node: 0, since: 's', status: 'stopped', reason: 'r' });
  t.like(JSON.parse(readFileSync(join(dir, 'fenced', 'node-0.json'), 'utf8')), { cluster: 'region' });
  writeFileSync(join(dir, 'fenced', 'node-1.json'), JSON.stringify({ node: 1, since: 's', status: 'stopped', reason: 'theirs', cluster: 'lab' }));
  t.deepEqual(deps.state.fenced().map((m) => m.node), [0]);
  t.deepEqual(warnings, ['fencing marker node-1.json belongs to cluster "lab", not region: left out']);
});
