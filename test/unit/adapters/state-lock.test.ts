// The state-dir lock between real processes (forked contenders, test/support/lock-child.ts), the pure verdict on a
// lock file, and the journal and fencing markers surviving damaged files.
import test from 'ava';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { buildSync } from 'esbuild';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStateStore, judgeLock, parseFencedMarker, parseJournal, UNREADABLE_LOCK_STALE_MS, type ProcessProbe } from '../../../lib/adapters/state.ts';

const CHILD = fileURLToPath(new URL('../../support/lock-child.mjs', import.meta.url));
const STATE_TS = fileURLToPath(new URL('../../../lib/adapters/state.ts', import.meta.url));
const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'maas-ha-lock-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Rejects when `p` has not settled within `ms`: every wait in these tests has a deadline. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

let stateModule = '';
let moduleDir = '';
test.before(() => {
  // The contenders import the store bundled to plain JavaScript: forking TypeScript loaders costs seconds.
  moduleDir = mkdtempSync(join(tmpdir(), 'maas-ha-lock-module-'));
  stateModule = join(moduleDir, 'state.mjs');
  buildSync({ entryPoints: [STATE_TS], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: stateModule, logLevel: 'error' });
});
test.after.always(() => rmSync(moduleDir, { recursive: true, force: true }));

interface Contender {
  proc: ChildProcess;
  /** The next message of this shape. */
  next: (key: string) => Promise<Record<string, unknown>>;
  exited: Promise<{ code: number | null; signal: string | null; stderr: string }>;
}

function contender(t: { teardown(fn: () => void): void }, args: string[]): Contender {
  const proc = fork(CHILD, [stateModule, ...args], { execArgv: [], stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const inbox: Record<string, unknown>[] = [];
  const waiting: { key: string; resolve: (m: Record<string, unknown>) => void }[] = [];
  proc.on('message', (m: Record<string, unknown>) => {
    const w = waiting.findIndex((x) => x.key in m);
    if (w >= 0) waiting.splice(w, 1)[0]!.resolve(m);
    else inbox.push(m);
  });
  const exited = new Promise<{ code: number | null; signal: string | null; stderr: string }>((r) => proc.on('exit', (code, signal) => r({ code, signal, stderr })));
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return {
    proc,
    exited,
    next: (key) => {
      const i = inbox.findIndex((m) => key in m);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]!);
      return new Promise((resolve) => waiting.push({ key, resolve }));
    },
  };
}

/** Forks the contenders, waits until every one has loaded, then lets them all go at once. */
async function startTogether(t: { teardown(fn: () => void): void }, argsList: string[][]): Promise<Contender[]> {
  const cs = argsList.map((a) => contender(t, a));
  await within(20_000, Promise.all(cs.map((c) => c.next('ready'))), 'contender ready');
  for (const c of cs) c.proc.send('go');
  return cs;
}

test('lock: five processes taking turns 20 times each → no two critical sections overlap, nobody fails', async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'sections.log');
  writeFileSync(log, '');
  const cs = await startTogether(t, Array.from({ length: 5 }, () => [dir, 'cluster', 'contend', '20', log]));
  const results = await within(90_000, Promise.all(cs.map((c) => c.exited)), 'contender exit');
  for (const r of results) t.deepEqual([r.code, r.stderr], [0, '']);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.is(lines.length, 5 * 20 * 2);
  for (let i = 0; i < lines.length; i += 2) {
    const [enter, exit] = [lines[i]!, lines[i + 1]!];
    if (!/^enter \d+$/.test(enter) || exit !== enter.replace('enter', 'exit')) {
      t.fail(`critical sections overlap at line ${i + 1}: ${lines.slice(i, i + 4).join(' | ')}`);
      return;
    }
  }
  // Garbage collection keeps the directory small: the free state, and no temporary files left behind.
  t.deepEqual(readdirSync(join(dir, 'locks')).filter((f) => !/^cluster\.lock\.\d+$/.test(f)), []);
  t.true(readdirSync(join(dir, 'locks')).length <= 2);
});

test('lock: holder killed with SIGKILL → exactly one of five waiters takes over, the others are refused naming it', async (t) => {
  const dir = tempDir(t);
  const [dead] = await startTogether(t, [[dir, 'cluster', 'hold', '0']]);
  const { acquired: deadPid } = await within(20_000, dead!.next('acquired'), 'first holder');
  dead!.proc.kill('SIGKILL');
  t.is((await within(10_000, dead!.exited, 'killed holder exit')).signal, 'SIGKILL');

  const waiters = await startTogether(t, Array.from({ length: 5 }, () => [dir, 'cluster', 'hold', '1500']));
  const answers = await within(20_000, Promise.all(waiters.map((w) => Promise.race([w.next('acquired'), w.next('refused')]))), 'waiter answers');
  const winners = answers.filter((a) => 'acquired' in a);
  t.is(winners.length, 1, JSON.stringify(answers));
  const winner = winners[0]!.acquired as number;
  t.not(winner, deadPid);
  for (const a of answers.filter((x) => 'refused' in x)) t.is(a.refused, `lock cluster is held by pid ${winner} (another maas-ha hook is running)`);

  waiters.find((w) => w.proc.pid === winner)!.proc.send('release');
  for (const r of await within(10_000, Promise.all(waiters.map((w) => w.exited)), 'waiter exit')) t.deepEqual([r.code, r.stderr], [0, '']);
  // Released: the next hook gets it without waiting.
  const release = await createStateStore(dir, clock).lock('cluster', 0);
  release();
});

test('lock: a live holder → the waiter is refused after waitMs with the holder\'s pid; after release it is free', async (t) => {
  const dir = tempDir(t);
  const store = createStateStore(dir, clock);
  const release = await store.lock('vip', 0);
  await t.throwsAsync(store.lock('vip', 100), { message: `lock vip is held by pid ${process.pid} (another maas-ha hook is running)` });
  release();
  release(); // twice is harmless
  const again = await store.lock('vip', 0);
  again();
});

test('lock: a release after the lock moved on does not free the new holder\'s lock', async (t) => {
  const dir = tempDir(t);
  const store = createStateStore(dir, clock);
  const release = await store.lock('cluster', 0);
  const [gen] = readdirSync(join(dir, 'locks'));
  t.is(gen, 'cluster.lock.1');
  // Someone judged us gone and took over (generation 2, a live pid with another token).
  writeFileSync(join(dir, 'locks', 'cluster.lock.2'), JSON.stringify({ pid: process.pid, token: 'theirs', boot: '', start: '' }));
  release();
  t.is(JSON.parse(readFileSync(join(dir, 'locks', 'cluster.lock.2'), 'utf8')).token, 'theirs');
  await t.throwsAsync(store.lock('cluster', 50), { message: /is held by pid/ });
});

test('lock: an unreadable lock file → waited for while young, taken over once old', async (t) => {
  const dir = tempDir(t);
  const store = createStateStore(dir, clock);
  mkdirSync(join(dir, 'locks'));
  const file = join(dir, 'locks', 'cluster.lock.7');
  writeFileSync(file, '');
  // waitMs 0: one look, no poll (a poll could outlast the file's youth on a loaded host).
  await t.throwsAsync(store.lock('cluster', 0), { message: /lock cluster is held by an unreadable lock file written \d+ ms ago/ });
  const old = new Date(Date.now() - UNREADABLE_LOCK_STALE_MS - 1000);
  utimesSync(file, old, old);
  const release = await store.lock('cluster', 0);
  t.deepEqual(readdirSync(join(dir, 'locks')), ['cluster.lock.8']);
  release();
});

test('lock: a lock file naming a pid that has exited → taken over at once', async (t) => {
  const dir = tempDir(t);
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const gone = child.pid!;
  await within(20_000, new Promise((r) => child.on('exit', r)), 'short-lived process exit');
  mkdirSync(join(dir, 'locks'));
  writeFileSync(join(dir, 'locks', 'cluster.lock.3'), JSON.stringify({ pid: gone, token: 'x' }));
  const release = await createStateStore(dir, clock).lock('cluster', 0);
  t.deepEqual(readdirSync(join(dir, 'locks')), ['cluster.lock.4']);
  release();
});

const alive: ProcessProbe = (pid) => (pid === 100 ? '5000' : null);
const rec = (o: Record<string, unknown>) => JSON.stringify(o);
const verdicts: [string, string, number, 'free' | 'held' | 'stale', RegExp][] = [
  ['free', rec({ free: true }), 0, 'free', /^$/],
  ['a live holder', rec({ pid: 100, token: 't', boot: 'b1', start: '5000' }), 0, 'held', /held by pid 100/],
  ['a live holder without boot or start (older writer, no /proc)', rec({ pid: 100, token: 't' }), 0, 'held', /held by pid 100/],
  ['a pid that is gone', rec({ pid: 200, token: 't', boot: 'b1', start: '1' }), 0, 'stale', /pid 200 is gone/],
  ['a holder from before a reboot', rec({ pid: 100, token: 't', boot: 'b0', start: '5000' }), 0, 'stale', /before the host rebooted/],
  ['a reused pid (another start time)', rec({ pid: 100, token: 't', boot: 'b1', start: '4000' }), 0, 'stale', /belongs to another process/],
  ['an empty file, just written', '', 10, 'held', /unreadable lock file written 10 ms ago/],
  ['an empty file, old', '', UNREADABLE_LOCK_STALE_MS, 'stale', /unreadable lock file, 5 s old/],
  ['a truncated record, young', '{"pid":10', 0, 'held', /unreadable/],
  ['a record of the wrong shape, old', rec({ pid: 'x', token: 't' }), 60_000, 'stale', /unreadable/],
  ['a bare pid (the old format), old', '100\n', 60_000, 'stale', /unreadable/],
];
for (const [title, content, age, kind, why] of verdicts) {
  test(`lock verdict: ${title} → ${kind}`, (t) => {
    const v = judgeLock(content, age, 'b1', alive);
    t.is(v.kind, kind);
    t.regex('why' in v ? v.why : '', why);
  });
}

test('journal: a line cut short by a crash and non-object lines are left out, the rest is read', (t) => {
  t.deepEqual(parseJournal('{"step":"started"}\n{"step":"fenced","node":0}\n42\n[1]\nnull\n{"step":"cho'), [{ step: 'started' }, { step: 'fenced', node: 0 }]);
  t.deepEqual(parseJournal(''), []);
});

test('journal: readJournal of a file with a truncated last line does not throw', (t) => {
  const dir = tempDir(t);
  const store = createStateStore(dir, clock);
  store.journal('failover-0', { step: 'started' });
  writeFileSync(join(dir, 'journal', 'failover-0.jsonl'), `${readFileSync(join(dir, 'journal', 'failover-0.jsonl'), 'utf8')}{"at":"2026-`, { flag: 'w' });
  t.like(store.readJournal('failover-0'), [{ step: 'started' }]);
  t.is(store.readJournal('failover-0').length, 1);
});

const mtime = new Date('2026-11-25T10:00:00Z');
test('fencing marker: a well-formed marker is read as written', (t) => {
  const m = { node: 1, since: '2026-11-25T09:00:00.000Z', status: 'stopped', reason: 'stopped-immediate' } as const;
  t.deepEqual(parseFencedMarker('node-1.json', JSON.stringify(m), mtime), m);
});

const damaged: [string, string, string][] = [
  ['not JSON', 'node-2.json', '{"node": 2, "sta'],
  ['node not an integer', 'node-2.json', rec({ node: '2', since: 's', status: 'stopped', reason: 'r' })],
  ['an unknown status', 'node-2.json', rec({ node: 2, since: 's', status: 'done', reason: 'r' })],
  ['an array', 'node-2.json', '[]'],
];
for (const [title, file, content] of damaged) {
  test(`fencing marker: ${title} → still fences its node (pending), named by the file`, (t) => {
    t.deepEqual(parseFencedMarker(file, content, mtime), { node: 2, status: 'pending', since: mtime.toISOString(), reason: `unreadable fencing marker ${file}` });
  });
}

test('fencing marker: damaged and named by no node → left out; fenced() reads the rest without throwing', (t) => {
  t.is(parseFencedMarker('other.json', 'garbage', mtime), undefined);
  const dir = tempDir(t);
  const store = createStateStore(dir, clock);
  store.markFenced({ node: 0, since: '2026-11-25T09:00:00.000Z', status: 'stopped', reason: 'r' });
  writeFileSync(join(dir, 'fenced', 'node-1.json'), '{"node":1,');
  writeFileSync(join(dir, 'fenced', 'junk.json'), 'x');
  const got = store.fenced().sort((a, b) => a.node - b.node);
  t.deepEqual(got.map((m) => [m.node, m.status]), [[0, 'stopped'], [1, 'pending']]);
  store.clearFenced(1);
  t.deepEqual(store.fenced().map((m) => m.node), [0]);
});
