// The journals stay bounded: the first entry a process writes to a journal drops the entries older than 90 days and
// all but the newest 500, atomically (the file is replaced, never left half-written); a journal within its limits is
// not rewritten. A failover's resume (the last 15 minutes) is never cut.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore, JOURNAL_KEEP, journalNames, pruneJournalText } from '../../../lib/adapters/state.ts';

const DAY = 86_400_000;
const NOW = Date.parse('2025-06-01T00:00:00Z');
const line = (ageMs: number, n: number) => JSON.stringify({ at: new Date(NOW - ageMs).toISOString(), n });
const keep = { maxAgeMs: 10 * DAY, maxEntries: 3 };

const CASES: [string, string[], number[] | undefined][] = [
  ['all young, within the count → unchanged (undefined: not rewritten)', [line(DAY, 1), line(0, 2)], undefined],
  ['older than the age → dropped', [line(11 * DAY, 1), line(9 * DAY, 2), line(0, 3)], [2, 3]],
  ['more than the count → the newest kept', [line(4, 1), line(3, 2), line(2, 3), line(1, 4), line(0, 5)], [3, 4, 5]],
  ['both: age first, then count', [line(20 * DAY, 1), line(4, 2), line(3, 3), line(2, 4), line(1, 5)], [3, 4, 5]],
  ['everything too old → an empty journal', [line(20 * DAY, 1), line(11 * DAY, 2)], []],
];

for (const [title, lines, want] of CASES) {
  test(`pruneJournalText: ${title}`, (t) => {
    const out = pruneJournalText(`${lines.join('\n')}\n`, NOW, keep);
    t.deepEqual(out === undefined ? undefined : out.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { n: number }).n), want);
  });
}

test('pruneJournalText: a line that does not parse has no age: kept until the count drops it; a cut last line gets its own newline', (t) => {
  const text = `${line(20 * DAY, 1)}\n{"at":"2025-\n${line(0, 3)}\n{"at":"20`;
  t.is(pruneJournalText(text, NOW, keep), `{"at":"2025-\n${line(0, 3)}\n{"at":"20\n`);
});

test('pruneJournalText: the defaults are 90 days and 500 entries', (t) => {
  t.deepEqual(JOURNAL_KEEP, { maxAgeMs: 90 * DAY, maxEntries: 500 });
});

function stateDir(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-prune-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'journal'), { mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

test('store: the first journal entry of a process prunes that journal (old and surplus entries gone, its mode kept), later ones only append', (t) => {
  const dir = stateDir(t);
  const file = join(dir, 'journal', 'failover-node0.jsonl');
  const old = Array.from({ length: 10 }, (_, i) => line(100 * DAY, i));
  const recent = Array.from({ length: 600 }, (_, i) => line(600 - i, 100 + i));
  writeFileSync(file, `${[...old, ...recent].join('\n')}\n`, { mode: 0o640 });
  const store = createStateStore(dir, { now: () => NOW, sleep: async () => {} });
  store.journal('failover-node0', { n: 'first' });
  const after = readFileSync(file, 'utf8').split('\n').filter(Boolean);
  t.is(after.length, 501, 'the newest 500 of before, then the new entry');
  t.is((JSON.parse(after[0]!) as { n: number }).n, 200);
  t.is((JSON.parse(after.at(-1)!) as { n: string }).n, 'first');
  t.is(statSync(file).mode & 0o777, 0o640);
  store.journal('failover-node0', { n: 'second' });
  t.is(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 502, 'once per process: the second entry only appends');
  t.deepEqual(journalNames(dir), ['failover-node0'], 'no temporary file left behind');
});

test('store: a journal within its limits is not rewritten (same inode)', (t) => {
  const dir = stateDir(t);
  const file = join(dir, 'journal', 'vip.jsonl');
  writeFileSync(file, `${line(DAY, 1)}\n`);
  const inode = statSync(file).ino;
  createStateStore(dir, { now: () => NOW, sleep: async () => {} }).journal('vip', { event: 'escalated', ok: true });
  t.is(statSync(file).ino, inode);
  t.is(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 2);
});

test('journalNames: the journals of state_dir, sorted; none without a journal directory; refused when others may write it', (t) => {
  const dir = stateDir(t);
  t.deepEqual(journalNames(join(dir, 'nonexistent')), []);
  for (const f of ['vip.jsonl', 'failover-node1.jsonl', '.vip.jsonl.maas-ha-1-x', 'notes.txt']) writeFileSync(join(dir, 'journal', f), '');
  t.deepEqual(journalNames(dir), ['failover-node1', 'vip']);
  chmodSync(join(dir, 'journal'), 0o777);
  t.throws(() => journalNames(dir), { message: /writable by group or others/ });
});
