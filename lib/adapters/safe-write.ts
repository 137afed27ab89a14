// Every file maas-ha writes while it may be root goes through writeFileSafely: the recovery wrappers in a
// PostgreSQL data directory (install.sh --database-host → `maas-ha recover install-scripts`), the fence ruleset
// (`maas-ha vip fence-file --write`) and the checked copy of the configuration (`maas-ha config check`).
//
// Why: a directory that a less privileged user owns (postgres owns its data directory, and any PostgreSQL
// superuser can create files there with `COPY ... TO`) lets that user plant a symbolic link at any name root is
// about to open, chmod or chown; root following it overwrites, and hands over, a file of root's choosing. So root
// never opens a path such a user controls:
//   - in a directory owned by another user, the write runs AS that user (setpriv --reuid/--regid --clear-groups),
//     so whatever it was tricked into touching, it could have touched anyway;
//   - in a directory only root can change (it and every directory above it owned by root and closed to group and
//     others, or sticky like /tmp), root writes itself;
//   - below a directory some other user could change (one that is not the target's own), root refuses.
// Either way the bytes go to a fresh temporary name created with O_CREAT|O_EXCL|O_NOFOLLOW (a planted name or
// link makes the open fail rather than be followed), fsync'd, and renamed over the target: rename replaces a
// directory entry and never follows a link at the destination. An identical file (content, mode, owner) is left
// alone, so the installer can run twice and change nothing.

import { spawnSync } from 'node:child_process';
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, basename, join } from 'node:path';
import type { DryRunOutcome, SafeFiles, SafeWriteOptions, WriteOutcome } from '../model/ports.ts';

export class SafeWriteError extends Error {
  override name = 'SafeWriteError';
}

const WRITE_TIMEOUT_MS = 10_000;
const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');
const isRoot = () => process.geteuid?.() === 0;

/**
 * Why `dir` is not a directory only root can change, or undefined when it is. Both the path as given (each
 * component, not following a link: a link in a root-only directory was put there by root) and the path it
 * resolves to are checked, so no other user can redirect any step of it.
 */
export function untrustedDirectory(dir: string): string | undefined {
  const chain = (p: string): string[] => {
    const parts = p.split('/').filter(Boolean);
    return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
  };
  let real: string;
  try {
    real = realpathSync(dir);
  } catch (err) {
    return `${dir}: ${(err as Error).message}`;
  }
  for (const p of [...chain(dir), ...chain(real)]) {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return `${p} does not exist`;
    if (st.isSymbolicLink()) continue;
    if (st.uid !== 0) return `${p} belongs to uid ${st.uid}`;
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) return `${p} is writable by group or others (mode ${octal(st.mode)})`;
  }
  return undefined;
}

/**
 * The write itself, done by whoever runs it: compare, then O_EXCL|O_NOFOLLOW temporary file, fsync, rename. The same
 * code runs in this process (root in a root-only directory, or not root at all) and, as a string, in the child that
 * setpriv starts as the directory's owner: it must stay self-contained (its own require, no outer names).
 */
function writeHere(fs: typeof import('node:fs'), path: string, text: string, mode: number, owner: { uid: number; gid: number } | null, dryRun: boolean): string {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash) || '/';
  const name = path.slice(slash + 1);
  const want = Buffer.from(text, 'utf8');
  const now = fs.lstatSync(path, { throwIfNoEntry: false });
  if (now && now.isFile() && (now.mode & 0o7777) === mode && (!owner || (now.uid === owner.uid && now.gid === owner.gid))) {
    // O_NOFOLLOW: the entry was a regular file a moment ago; if it is a link now, the open fails instead of reading through it.
    let fd = -1;
    try {
      fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
      if (fs.readFileSync(fd).equals(want)) return 'unchanged';
    } catch {
      // changed under us: write it
    } finally {
      if (fd >= 0) fs.closeSync(fd);
    }
  }
  if (dryRun) return 'would-write';
  const tmp = `${dir}/.${name}.maas-ha-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    let off = 0;
    while (off < want.length) off += fs.writeSync(fd, want, off, want.length - off);
    if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      // already closed
    }
    fs.unlinkSync(tmp);
    throw err;
  }
  try {
    fs.renameSync(tmp, path);
  } catch (err) {
    fs.unlinkSync(tmp);
    throw err;
  }
  return 'written';
}

/** The child's program: argv = path, mode (octal); the text on stdin; prints the outcome. */
const CHILD = `const fs = require('node:fs');
const [path, mode, dryRun] = process.argv.slice(1);
const text = fs.readFileSync(0, 'utf8');
try {
  process.stdout.write((${writeHere.toString()})(fs, path, text, parseInt(mode, 8), null, dryRun === '1'));
} catch (err) {
  process.stderr.write(String(err && err.message || err));
  process.exitCode = 1;
}`;

/** Writes `text` to the absolute `path` (see the top of this file); returns whether the file changed. Throws SafeWriteError. */
export function writeFileSafely(path: string, text: string, opts: SafeWriteOptions & { dryRun?: false }): WriteOutcome;
export function writeFileSafely(path: string, text: string, opts: SafeWriteOptions): WriteOutcome | DryRunOutcome;
export function writeFileSafely(path: string, text: string, opts: SafeWriteOptions): WriteOutcome | DryRunOutcome {
  if (!path.startsWith('/') || path.endsWith('/')) throw new SafeWriteError(`${path}: expected the absolute path of a file`);
  const dir = dirname(path);
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) throw new SafeWriteError(`cannot write ${path}: the directory ${dir} does not exist`);
  if (!st.isDirectory()) throw new SafeWriteError(`cannot write ${path}: ${dir} is not a directory`);
  const fail = (err: unknown): never => {
    throw new SafeWriteError(`cannot write ${path}: ${(err as Error).message}`);
  };
  if (!isRoot()) {
    // Only our own privileges are at stake; O_EXCL|O_NOFOLLOW and rename still keep the write whole and in place.
    try {
      return writeHere(fsApi, path, text, opts.mode, opts.owner && opts.owner.uid !== process.geteuid?.() ? opts.owner : null, opts.dryRun ?? false) as WriteOutcome | DryRunOutcome;
    } catch (err) {
      return fail(err);
    }
  }
  if (st.uid === 0) {
    const why = untrustedDirectory(dir);
    if (why) throw new SafeWriteError(`refusing to write ${path} as root: ${why}, so another user could redirect the write`);
    try {
      return writeHere(fsApi, join(realpathSync(dir), basename(path)), text, opts.mode, opts.owner ?? { uid: 0, gid: st.gid }, opts.dryRun ?? false) as WriteOutcome | DryRunOutcome;
    } catch (err) {
      return fail(err);
    }
  }
  if (opts.rootDirectory) {
    throw new SafeWriteError(`refusing to write ${path}: ${dir} belongs to uid ${st.uid}, not root, and this file must be one only root can change`);
  }
  if (opts.owner && opts.owner.uid !== st.uid) {
    throw new SafeWriteError(`refusing to write ${path}: ${dir} belongs to uid ${st.uid}, so a file there for uid ${opts.owner.uid} cannot be written safely`);
  }
  return writeAs(st.uid, opts.owner?.gid ?? st.gid, path, text, opts.mode, opts.dryRun ?? false);
}

/** Runs writeHere as uid:gid (no supplementary groups), with the text on stdin. */
function writeAs(uid: number, gid: number, path: string, text: string, mode: number, dryRun: boolean): WriteOutcome | DryRunOutcome {
  const r = spawnSync(
    'setpriv',
    [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, '-e', CHILD, path, octal(mode), dryRun ? '1' : '0'],
    // No NODE_OPTIONS (a loader the user cannot read), a cwd the user can enter.
    { input: text, encoding: 'utf8', timeout: WRITE_TIMEOUT_MS, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  const out = (r.stdout ?? '').trim();
  if (r.error) throw new SafeWriteError(`cannot write ${path} as uid ${uid}: ${r.error.message}`);
  if (r.status !== 0 || (out !== 'written' && out !== 'unchanged' && out !== 'would-write')) {
    const why = (r.stderr ?? '').trim() || (r.signal ? `killed by ${r.signal}` : `exit ${r.status}`);
    throw new SafeWriteError(`cannot write ${path} as uid ${uid} (the owner of ${dirname(path)}): ${why}`);
  }
  return out as WriteOutcome | DryRunOutcome;
}

/** Creates `dir` (and missing parents) for a file root will write, only below directories only root can change. */
export function makeRootDirectory(dir: string, mode = 0o755): void {
  let existing = dir;
  while (!lstatSync(existing, { throwIfNoEntry: false })) existing = dirname(existing);
  if (existing === dir) return;
  if (isRoot()) {
    const why = untrustedDirectory(existing);
    if (why) throw new SafeWriteError(`refusing to create ${dir} as root: ${why}`);
  }
  try {
    mkdirSync(dir, { recursive: true, mode });
  } catch (err) {
    throw new SafeWriteError(`cannot create ${dir}: ${(err as Error).message}`);
  }
}

/** This host's files, as the `SafeFiles` port use cases receive (lib/recovery/wrappers.ts), so their tests can fake it. */
export const hostFiles: SafeFiles = {
  isFile: (path) => statSync(path, { throwIfNoEntry: false })?.isFile() ?? false,
  write: writeFileSafely,
};

const fsApi = {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} as unknown as typeof import('node:fs');
