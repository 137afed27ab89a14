// maas-ha's own state on the pgpool host: a lock so two hooks of one cluster never run their steps at the same
// time, a journal of steps (what a run did, for the operator and for a re-run), and fencing markers for primaries
// that could not be stopped, and maintenance marks (planned work the hooks keep out of). Plain files under state_dir.
//
// The lock is a numbered series of files, locks/<name>.lock.<n>; the highest number is the lock's state: a holder
// (pid, a random token, the boot and the pid's start time) or "free". Every change of state creates the next
// number with link(2), which fails with EEXIST if the name exists, so of all the processes that saw state n
// exactly one moves it to n+1: acquiring a free lock, taking over a stale one (a hook killed by its budget must
// not wedge the next failover) and releasing are the same atomic step, and a file never exists half-written
// (it is written under a temporary name first). Nothing is renamed or deleted to change the state: deleting
// lower numbers is garbage collection, and a reader that finds its file gone simply looks again. (A single lock
// file taken over by rename cannot do this: between reading "stale" and renaming, another waiter may have replaced
// the stale file with its own live lock, and putting that back is not atomic.) The pid is checked with its start
// time and the boot id, so a pid reused after a reboot or a wrap-around does not keep a dead hook's lock.
//
// Markers and journal entries are written with the cluster's name and read back only when they carry it: a state_dir
// shared by mistake between two clusters (or a file copied from another one) must not fence, or skip fencing, a node
// of this one. What is left out is reported, never acted on. Entries written before the name was recorded carry
// none and are read as this cluster's. state_dir (and each directory below it) must not be writable by group or
// others: whoever may write it could forge markers and entries, so the store refuses to use such a directory.
//
// The journals are kept bounded (JOURNAL_KEEP): the first entry a process writes to a journal drops, beforehand,
// the entries older than 90 days and all but the newest 500, so state_dir cannot grow without bound. It happens
// there because each journal's writers already take turns (failover under its lock, the VIP hooks under theirs,
// online recovery's two stages one after the other), so the rewrite, atomic by rename, loses no one's append.
// Failover resumes only runs of the last 15 minutes (lib/failover/journal.ts), far inside what is kept.

import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { messageOf, OperationError } from '../errors.ts';
import type { Clock, FencedMarker, MaintenanceMark, StateStore } from '../model/ports.ts';
import { writeFileSafely } from './safe-write.ts';

/** An unparsable lock file younger than this may be a writer we do not understand: wait for it, then take over. */
export const UNREADABLE_LOCK_STALE_MS = 5000;
const POLL_MS = 50;

/** What a lock file says about its lock. */
export type LockVerdict = { kind: 'free' } | { kind: 'held'; pid?: number; why: string } | { kind: 'stale'; why: string };

/**
 * What a process probe answers for a pid: null when no such process exists, otherwise its start time since boot
 * ('' when it cannot be read, e.g. without /proc).
 */
export type ProcessProbe = (pid: number) => string | null;

interface Holder {
  pid: number;
  token: string;
  boot: string;
  start: string;
}

/** Decides from a lock file's content (and age, for content it cannot parse) whether the lock is free, held or stale. */
export function judgeLock(content: string, ageMs: number, boot: string, probe: ProcessProbe): LockVerdict {
  let rec: unknown;
  try {
    rec = JSON.parse(content);
  } catch {
    rec = undefined;
  }
  if (isRecord(rec) && rec.free === true) return { kind: 'free' };
  if (isRecord(rec) && Number.isInteger(rec.pid) && (rec.pid as number) > 0 && typeof rec.token === 'string') {
    const pid = rec.pid as number;
    const hisBoot = typeof rec.boot === 'string' ? rec.boot : '';
    const hisStart = typeof rec.start === 'string' ? rec.start : '';
    if (hisBoot && boot && hisBoot !== boot) return { kind: 'stale', why: `pid ${pid} held it before the host rebooted` };
    const start = probe(pid);
    if (start === null) return { kind: 'stale', why: `pid ${pid} is gone` };
    if (hisStart && start && hisStart !== start) return { kind: 'stale', why: `pid ${pid} is gone (the pid now belongs to another process)` };
    return { kind: 'held', pid, why: `held by pid ${pid}` };
  }
  // Lock files are linked in whole, so this is damage (say, a crash before the data reached the disk), not a writer
  // mid-write; still, only a file old enough to rule out any writer is taken over.
  if (ageMs >= UNREADABLE_LOCK_STALE_MS) return { kind: 'stale', why: `unreadable lock file, ${Math.round(ageMs / 1000)} s old` };
  return { kind: 'held', why: `held by an unreadable lock file written ${Math.max(0, Math.round(ageMs))} ms ago (taken over after ${UNREADABLE_LOCK_STALE_MS / 1000} s)` };
}

/** A journal's lines that parse as JSON objects; a line cut short by a crash is left out, not fatal. */
export function parseJournal(text: string): Record<string, unknown>[] {
  return readJournalText(text).entries;
}

/**
 * A journal's entries of `cluster` (every entry when no cluster is given; an entry without a cluster is taken as
 * this cluster's, written before the name was recorded), and a line for each one left out: a line that does not
 * parse as a JSON object (a line cut short by a crash), or an entry of another cluster.
 */
export function readJournalText(text: string, cluster?: string): { entries: Record<string, unknown>[]; ignored: string[] } {
  const entries: Record<string, unknown>[] = [];
  const ignored: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      v = undefined;
    }
    if (!isRecord(v)) ignored.push(`line ${i + 1} is not a journal entry (${line.length > 60 ? `${line.slice(0, 60)}…` : line})`);
    else if (cluster !== undefined && 'cluster' in v && v.cluster !== cluster) ignored.push(`line ${i + 1} belongs to cluster ${JSON.stringify(v.cluster)}, not ${cluster}`);
    else entries.push(v);
  });
  return { entries, ignored };
}

/** What each journal keeps: entries younger than maxAgeMs, at most maxEntries of them (the newest). */
export const JOURNAL_KEEP = { maxAgeMs: 90 * 24 * 3600_000, maxEntries: 500 } as const;

/**
 * A journal's text as pruned at `now`: entries whose `at` is older than keep.maxAgeMs are dropped, then all but the
 * newest keep.maxEntries lines. A line that does not parse has no age and stays until the count drops it (reading
 * still reports it). Undefined when nothing is dropped, so an unchanged journal is not rewritten.
 */
export function pruneJournalText(text: string, now: number, keep: { maxAgeMs: number; maxEntries: number } = JOURNAL_KEEP): string | undefined {
  const lines = text.split('\n').filter((l) => l.trim());
  const young = lines.filter((line) => {
    let at: unknown;
    try {
      at = (JSON.parse(line) as { at?: unknown }).at;
    } catch {
      return true;
    }
    const t = typeof at === 'string' ? Date.parse(at) : Number.NaN;
    return Number.isNaN(t) || now - t <= keep.maxAgeMs;
  });
  const kept = young.slice(-keep.maxEntries);
  if (kept.length === lines.length) return undefined;
  return kept.map((l) => `${l}\n`).join('');
}

/** A directory of the store that group or others may write is refused: they could forge what the hooks act on. */
function trusted(d: string): string {
  const mode = statSync(d).mode & 0o7777;
  if (mode & 0o022) {
    throw new OperationError(
      `${d} (maas-ha's state: locks, journal, fencing markers) is writable by group or others (mode ${mode.toString(8).padStart(4, '0')}): anyone could forge what the hooks act on; chmod go-w ${d}`,
    );
  }
  return d;
}

/** The journals in state_dir (their names, as StateStore.readJournal takes them), sorted; none when there is no journal directory. */
export function journalNames(dir: string): string[] {
  const d = join(dir, 'journal');
  if (!existsSync(d)) return [];
  trusted(dir);
  trusted(d);
  return readdirSync(d)
    .filter((f) => f.endsWith('.jsonl') && !f.startsWith('.'))
    .map((f) => f.slice(0, -'.jsonl'.length))
    .sort();
}

/**
 * A fencing marker from its file. A marker that does not parse, or has the wrong shape, still stands for its node
 * (named by the file) as 'pending': an unreadable marker must not let a fenced primary start again. Undefined only
 * when neither the content nor the file name says which node it is.
 */
export function parseFencedMarker(fileName: string, content: string, mtime: Date): FencedMarker | undefined {
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    v = undefined;
  }
  if (isRecord(v) && Number.isInteger(v.node) && (v.status === 'stopped' || v.status === 'pending')) {
    return {
      node: v.node as number,
      status: v.status,
      since: typeof v.since === 'string' ? v.since : mtime.toISOString(),
      reason: typeof v.reason === 'string' ? v.reason : '',
      ...(Number.isInteger(v.timeline) && (v.timeline as number) > 0 ? { timeline: v.timeline as number } : {}),
    };
  }
  const m = /^node-(\d+)\.json$/.exec(fileName);
  if (!m) return undefined;
  return { node: Number(m[1]), status: 'pending', since: mtime.toISOString(), reason: `unreadable fencing marker ${fileName}` };
}

/**
 * A marker file as this cluster reads it: its marker, or why it is left out. A marker of another cluster (its
 * `cluster` a different name) is left out; a damaged one still stands for its node (parseFencedMarker).
 */
export function judgeFencedMarker(fileName: string, content: string, mtime: Date, cluster?: string): { marker?: FencedMarker; ignored?: string } {
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    v = undefined;
  }
  if (cluster !== undefined && isRecord(v) && typeof v.cluster === 'string' && v.cluster !== cluster) {
    return { ignored: `fencing marker ${fileName} belongs to cluster ${JSON.stringify(v.cluster)}, not ${cluster}: left out` };
  }
  const marker = parseFencedMarker(fileName, content, mtime);
  if (!marker) return { ignored: `${fileName} is not a fencing marker (neither its content nor its name says which node): left out` };
  return marker.reason === `unreadable fencing marker ${fileName}` ? { marker, ignored: `fencing marker ${fileName} is damaged: node ${marker.node} stays fenced (pending)` } : { marker };
}

/**
 * maintenance-cluster.json marks the cluster, maintenance-node-<id>.json one node. They live in state_dir itself
 * (which install.sh creates for pgpool's user), not in a directory of their own: the operator may set a mark as root,
 * and a directory root created there would be one the hooks, as postgres, cannot read.
 */
export const maintenanceFile = (node?: number) => (node === undefined ? 'maintenance-cluster.json' : `maintenance-node-${node}.json`);

/**
 * A maintenance mark from its file, or why it is left out. Like a fencing marker, a damaged mark still stands for
 * what its file name says (a mark that cannot be read must not let the hooks act on a node under planned work); a
 * mark of another cluster is left out.
 */
export function judgeMaintenanceMark(fileName: string, content: string, mtime: Date, cluster?: string): { mark?: MaintenanceMark; ignored?: string } {
  const m = /^maintenance-(?:cluster|node-(\d+))\.json$/.exec(fileName);
  if (!m) return { ignored: `${fileName} is not a maintenance mark: left out` };
  const node = m[1] === undefined ? undefined : Number(m[1]);
  let v: unknown;
  try {
    v = JSON.parse(content);
  } catch {
    v = undefined;
  }
  if (!isRecord(v)) {
    return {
      mark: { ...(node === undefined ? {} : { node }), by: 'unknown', since: mtime.toISOString(), reason: `unreadable maintenance mark ${fileName}` },
      ignored: `maintenance mark ${fileName} is damaged: ${node === undefined ? 'the cluster stays' : `node ${node} stays`} in maintenance until maas-ha maintenance off`,
    };
  }
  if (cluster !== undefined && typeof v.cluster === 'string' && v.cluster !== cluster) {
    return { ignored: `maintenance mark ${fileName} belongs to cluster ${JSON.stringify(v.cluster)}, not ${cluster}: left out` };
  }
  const str = (x: unknown, dflt: string) => (typeof x === 'string' && x ? x : dflt);
  return { mark: { ...(node === undefined ? {} : { node }), by: str(v.by, 'unknown'), since: str(v.since, mtime.toISOString()), reason: str(v.reason, '') } };
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The pid's start time (field 22 of /proc/<pid>/stat, after the parenthesised command name), null if it is gone. */
function processStart(pid: number): string | null {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return null;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return '';
  }
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

export interface StateStoreOptions {
  /** config.cluster_name: written into markers and journal entries; those of another cluster are left out. */
  cluster?: string;
  /** Told about every marker or journal line left out (lib/wiring.ts: a log warning). */
  warn?: (message: string) => void;
}

export function createStateStore(dir: string, clock: Clock, opts: StateStoreOptions = {}): StateStore {
  const { cluster, warn = () => {} } = opts;
  const ensure = (d: string) => {
    // Judged before anything is created in it.
    if (existsSync(dir)) trusted(dir);
    try {
      mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (err) {
      // The hooks run as pgpool's user, which cannot create directories under /var/lib: install.sh makes state_dir.
      throw new OperationError(
        `cannot create ${d} (maas-ha's state: locks, journal, fencing markers) as ${userInfo().username}: ${(err as Error).message}; create ${dir} owned by the user pgpool runs as (install.sh does it for state_dir)`,
      );
    }
    trusted(dir);
    return trusted(d);
  };
  const stamp = cluster === undefined ? {} : { cluster };
  /** The journals this process has pruned already: once per journal and process is enough to keep it bounded. */
  const pruned = new Set<string>();
  const prune = (file: string) => {
    try {
      if (!existsSync(file)) return;
      const text = pruneJournalText(readFileSync(file, 'utf8'), clock.now());
      if (text !== undefined) writeFileSafely(file, text, { mode: statSync(file).mode & 0o666 });
    } catch (err) {
      // A journal left long is no reason to fail a hook: the next run tries again.
      warn(`journal ${file}: not pruned: ${messageOf(err)}`);
    }
  };
  const boot = bootId();
  const ownStart = processStart(process.pid) ?? '';

  /** The lock's generations present now, highest first. */
  const generations = (locks: string, base: string): number[] =>
    readdirSync(locks)
      .filter((f) => f.startsWith(base) && /^\d+$/.test(f.slice(base.length)))
      .map((f) => Number(f.slice(base.length)))
      .sort((a, b) => b - a);

  /** Creates `file` with `content` in one step; false when it exists already. */
  const place = (locks: string, base: string, file: string, content: string): boolean => {
    const tmp = join(locks, `${base}tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    writeFileSync(tmp, content, { mode: 0o600 });
    try {
      linkSync(tmp, file);
      return true;
    } catch (err) {
      if (errno(err) === 'EEXIST') return false;
      throw err;
    } finally {
      rmSync(tmp, { force: true });
    }
  };

  /** Removes generations below `gen` and temporary files of processes that are gone. */
  const collect = (locks: string, base: string, gen: number) => {
    for (const f of readdirSync(locks)) {
      if (!f.startsWith(base)) continue;
      const rest = f.slice(base.length);
      const tmp = /^tmp-(\d+)-/.exec(rest);
      if ((/^\d+$/.test(rest) && Number(rest) < gen) || (tmp && processStart(Number(tmp[1])) === null)) rmSync(join(locks, f), { force: true });
    }
  };

  /** The content of a lock file and its age, or undefined when it was removed meanwhile. */
  const readLockFile = (file: string): { content: string; ageMs: number } | undefined => {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch (err) {
      if (errno(err) === 'ENOENT') return undefined;
      throw err;
    }
    try {
      // The age compares the file system's mtime with the wall clock, so it uses the wall clock, not deps' clock.
      return { content: readFileSync(fd, 'utf8'), ageMs: Date.now() - fstatSync(fd).mtimeMs };
    } finally {
      closeSync(fd);
    }
  };

  /**
   * The marks in `d` (a trusted directory): each file `wanted` picks, judged; what is left out is reported. A file
   * removed between listing and reading was cleared meanwhile.
   */
  const readMarkFiles = <T>(d: string, wanted: (name: string) => boolean, judge: (name: string, content: string, mtime: Date) => { item?: T; ignored?: string }): T[] => {
    trusted(d);
    const items: T[] = [];
    for (const f of readdirSync(d).sort()) {
      if (!wanted(f)) continue;
      let content: string;
      let mtime: Date;
      try {
        content = readFileSync(join(d, f), 'utf8');
        mtime = statSync(join(d, f)).mtime;
      } catch (err) {
        if (errno(err) === 'ENOENT') continue;
        throw err;
      }
      const { item, ignored } = judge(f, content, mtime);
      if (ignored) warn(ignored);
      if (item) items.push(item);
    }
    return items;
  };

  return {
    async lock(name: string, waitMs: number) {
      const locks = ensure(join(dir, 'locks'));
      const base = `${name}.lock.`;
      const mine = `${JSON.stringify({ pid: process.pid, token: randomBytes(8).toString('hex'), boot, start: ownStart } satisfies Holder)}\n`;
      const deadline = clock.now() + waitMs;
      for (;;) {
        const top = generations(locks, base)[0] ?? 0;
        if (top > 0) {
          const seen = readLockFile(join(locks, `${base}${top}`));
          // Gone: a newer generation replaced it and collected it. Look again.
          if (!seen) continue;
          const verdict = judgeLock(seen.content, seen.ageMs, boot, processStart);
          if (verdict.kind === 'held') {
            if (clock.now() >= deadline) {
              throw new OperationError(
                verdict.pid === undefined ? `lock ${name} is ${verdict.why} (${join(locks, `${base}${top}`)})` : `lock ${name} is held by pid ${verdict.pid} (another maas-ha hook is running)`,
              );
            }
            await clock.sleep(POLL_MS);
            continue;
          }
        }
        // Free or stale: claim the next generation. EEXIST means another process moved the lock on first.
        const gen = top + 1;
        const file = join(locks, `${base}${gen}`);
        if (!place(locks, base, file, mine)) continue;
        // A process that paused between reading and linking may have re-created a number collected long ago; the
        // highest generation is never collected, so a higher one present means ours is not the lock's state.
        if ((generations(locks, base)[0] ?? 0) > gen) {
          rmSync(file, { force: true });
          continue;
        }
        collect(locks, base, gen);
        let released = false;
        return () => {
          if (released) return;
          released = true;
          // EEXIST: someone already moved the lock on (judged us gone), so nothing of ours is left to release.
          place(locks, base, join(locks, `${base}${gen + 1}`), `${JSON.stringify({ free: true, by: process.pid })}\n`);
          rmSync(file, { force: true });
        };
      }
    },
    journal(run: string, entry: Record<string, unknown>) {
      const file = join(ensure(join(dir, 'journal')), `${run}.jsonl`);
      if (!pruned.has(run)) {
        pruned.add(run);
        prune(file);
      }
      appendFileSync(file, `${JSON.stringify({ at: new Date(clock.now()).toISOString(), ...entry, ...stamp })}\n`);
    },
    readJournal(run: string) {
      const file = join(dir, 'journal', `${run}.jsonl`);
      if (!existsSync(file)) return [];
      trusted(dir);
      trusted(join(dir, 'journal'));
      const { entries, ignored } = readJournalText(readFileSync(file, 'utf8'), cluster);
      for (const why of ignored) warn(`journal ${file}: ${why}: left out`);
      return entries;
    },
    markFenced(marker: FencedMarker) {
      writeFileSync(join(ensure(join(dir, 'fenced')), `node-${marker.node}.json`), `${JSON.stringify({ ...marker, ...stamp }, null, 2)}\n`, { mode: 0o600 });
    },
    clearFenced(node: number) {
      rmSync(join(dir, 'fenced', `node-${node}.json`), { force: true });
    },
    fenced() {
      const d = join(dir, 'fenced');
      if (!existsSync(d)) return [];
      trusted(dir);
      return readMarkFiles(d, (f) => f.endsWith('.json'), (f, content, mtime) => {
        const { marker, ignored } = judgeFencedMarker(f, content, mtime, cluster);
        return { item: marker, ignored };
      });
    },
    setMaintenance(mark: MaintenanceMark) {
      if (!existsSync(dir)) throw new OperationError(`${dir} (state_dir) does not exist: install.sh creates it, owned by the user pgpool runs as`);
      trusted(dir);
      // As root this writes as state_dir's owner (lib/adapters/safe-write.ts), so the hooks can read the mark.
      writeFileSafely(join(dir, maintenanceFile(mark.node)), `${JSON.stringify({ ...mark, ...stamp }, null, 2)}\n`, { mode: 0o600 });
    },
    clearMaintenance(node?: number) {
      const file = join(dir, maintenanceFile(node));
      if (!existsSync(file)) return false;
      trusted(dir);
      rmSync(file, { force: true });
      return true;
    },
    maintenance() {
      if (!existsSync(dir)) return [];
      return readMarkFiles(dir, (f) => f.startsWith('maintenance-') && f.endsWith('.json'), (f, content, mtime) => {
        const { mark, ignored } = judgeMaintenanceMark(f, content, mtime, cluster);
        return { item: mark, ignored };
      });
    },
  };
}
