// Which paths root may run or write. `vip.binaries`, `vip.fence.file` and the commands of `manager: commands` are
// run (or, for the fence file, loaded by `nft -f`) as root, through the sudoers drop-in `maas-ha vip sudoers`
// renders; `fencing.command` is what the failover hook runs against a lost primary. Whoever can change one of these
// files, or rename anything in a directory above it, chooses what runs: a script under /var/lib/postgresql named in
// the drop-in hands root to the postgres user. So every such path is held to one rule, the one sudo and OpenSSH
// apply to their own files: it and each directory above it, up to /, belong to root and no group or other may write
// them. A sticky world-writable directory (/tmp) is refused too: anyone may create a name in it before root does.
// Symlinks are followed and their targets held to the same rule; a link itself can only be replaced by whoever may
// write the directory that holds it, which is checked on the way. A path that does not exist yet is judged by the
// directories that do: only root can create a name in a root-owned directory nobody else may write.
//
// Pure: the filesystem comes in as `FsFacts` (lstat of one path), so the rule is table-tested with fake trees;
// `nodeFacts` is the real one.

import { lstatSync, readlinkSync } from 'node:fs';

/** lstat of one path, as far as trust goes. */
export interface PathFacts {
  uid: number;
  /** st_mode with the file type bits. */
  mode: number;
  /** The link's text when the path itself is a symbolic link. */
  link?: string;
}

/** Facts about one path, the path itself (a symlink is not followed); undefined when it does not exist. */
export type FsFacts = (path: string) => PathFacts | undefined;

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/** Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS). */
const MAX_LINKS = 40;

export const isLink = (f: PathFacts) => (f.mode & S_IFMT) === S_IFLNK;
export const isDir = (f: PathFacts) => (f.mode & S_IFMT) === S_IFDIR;
export const octal = (mode: number) => (mode & 0o7777).toString(8).padStart(4, '0');

/** The real filesystem; a path that cannot be looked at (ENOENT, EACCES below a directory we may not search) is absent. */
export const nodeFacts: FsFacts = (path) => {
  try {
    const st = lstatSync(path);
    return { uid: st.uid, mode: st.mode, ...(st.isSymbolicLink() ? { link: readlinkSync(path) } : {}) };
  } catch {
    return undefined;
  }
};

/** Why `f` (the facts of `p`) lets someone other than root change what is at `p`, or undefined. */
function untrusted(p: string, f: PathFacts): { why: string; fix: string } | undefined {
  const mode = f.mode & 0o7777;
  if (isDir(f) && (mode & 0o1000) !== 0 && (mode & 0o002) !== 0) {
    return {
      why: `${p} is a shared directory (mode ${octal(mode)}: anyone may create names in it)`,
      fix: `move it to a directory only root may write, such as /usr/local/sbin or /etc/maas-ha`,
    };
  }
  if (f.uid !== 0) return { why: `${p} is owned by uid ${f.uid}, not root`, fix: `chown root:root ${p} && chmod go-w ${p}` };
  if ((mode & 0o022) !== 0) {
    return { why: `${p} is writable by ${mode & 0o020 ? (mode & 0o002 ? 'group and others' : 'its group') : 'others'} (mode ${octal(mode)})`, fix: `chown root:root ${p} && chmod go-w ${p}` };
  }
  return undefined;
}

/**
 * Walks `path` from / one component at a time, following symbolic links through `facts` (the link's target is
 * walked in its place). `visit` sees every component that is not a link, as `undefined` facts when it does not
 * exist; it returns `stop` to end the walk there, or a problem to end it with. The result: where the walk ended,
 * the problem, or `loop` past MAX_LINKS links. `via` names the last link followed, for messages.
 */
function walkPath(
  path: string,
  facts: FsFacts,
  visit: (at: string, f: PathFacts | undefined, via: string) => 'stop' | { problem: string } | undefined = () => undefined,
): { at: string } | { problem: string } | 'loop' {
  let pending = path.split('/').filter(Boolean);
  let at = '/';
  let links = 0;
  let via = '';
  while (pending.length > 0) {
    const name = pending.shift()!;
    if (name === '.') continue;
    if (name === '..') {
      // The parent was seen on the way down (or is /).
      at = at === '/' ? '/' : at.slice(0, at.lastIndexOf('/')) || '/';
      continue;
    }
    const next = at === '/' ? `/${name}` : `${at}/${name}`;
    const f = facts(next);
    if (f && isLink(f)) {
      if (++links > MAX_LINKS) return 'loop';
      const target = f.link ?? '';
      via = ` (through the link ${next} → ${target})`;
      pending = [...target.split('/').filter(Boolean), ...pending];
      if (target.startsWith('/')) at = '/';
      continue;
    }
    const v = visit(next, f, via);
    if (v === 'stop') return { at: next };
    if (v) return v;
    at = next;
  }
  return { at };
}

/**
 * Why root must not run (or write) `path`: the first file or directory on the way to it, symlinks followed, that is
 * not owned by root or that group or others may write. `what` opens the message ("root runs", "root writes").
 */
export function rootTrustProblem(path: string, facts: FsFacts, what = 'root runs'): string | undefined {
  if (!path.startsWith('/')) return `${what} ${path}, which is not an absolute path`;
  const say = (p: { why: string; fix: string }, via: string) => `${what} ${path}${via}, but ${p.why} (whoever may change it chooses what runs); ${p.fix}`;
  const top = facts('/');
  const bad = top && untrusted('/', top);
  if (bad) return say(bad, '');
  const r = walkPath(path, facts, (at, f, via) => {
    // Not there (yet): only whoever may write its parent, judged already, can create it.
    if (!f) return 'stop';
    const problem = untrusted(at, f);
    return problem ? { problem: say(problem, via) } : undefined;
  });
  if (r === 'loop') return `${what} ${path}, which loops through more than ${MAX_LINKS} symbolic links`;
  return 'problem' in r ? r.problem : undefined;
}

/** Where `path` really is, symlinks resolved through `facts`; undefined when the links loop. */
export function resolvePath(path: string, facts: FsFacts): string | undefined {
  const r = walkPath(path, facts);
  return r === 'loop' || 'problem' in r ? undefined : r.at;
}

type Maybe<T> = T | undefined;
/** The parts of a configuration (validated, or still loose while validating) that name what root runs or writes. */
export interface RootRunSettings {
  vip?: Maybe<{
    binaries?: Maybe<Record<string, Maybe<string>>>;
    fence?: Maybe<{ file?: Maybe<string> }>;
    services?: Maybe<{ list?: Maybe<Maybe<{ restart?: Maybe<Maybe<string>[]>; stop?: Maybe<Maybe<string>[]> }>[]> }>;
  }>;
  fencing?: Maybe<{ command?: Maybe<Maybe<string>[]> }>;
}

/**
 * Every path whose owner decides what runs, with its key and how the message names its use. The loader checks
 * these (with its line:col) and the checked copy checks them again (./checked.ts), because directories change.
 */
export function rootRunPaths(c: RootRunSettings): { key: string; path: string; what: string }[] {
  const out: { key: string; path: string; what: string }[] = [];
  const add = (key: string, path: Maybe<string>, what: string) => {
    if (typeof path === 'string') out.push({ key, path, what });
  };
  for (const [name, path] of Object.entries(c.vip?.binaries ?? {})) add(`vip.binaries.${name}`, path, 'root runs');
  add('vip.fence.file', c.vip?.fence?.file, 'root loads (nft -f)');
  (c.vip?.services?.list ?? []).forEach((svc, i) => {
    add(`vip.services.list[${i}].restart[0]`, svc?.restart?.[0], 'root runs');
    add(`vip.services.list[${i}].stop[0]`, svc?.stop?.[0], 'root runs');
  });
  add('fencing.command[0]', c.fencing?.command?.[0], 'the failover hook runs');
  return out;
}
