// The checks the configuration makes against the filesystem, in one place because two readers make them: the loader
// (./load.ts, which reports them with line:col) and the checked copy (./checked.ts, which must accept exactly what
// the loader would, and the filesystem changes after a check). No YAML here: the hooks' fast start loads this file.
//
// What they hold files to: secrets closed to group and others (libpq, pcp and ssh ignore or refuse them otherwise),
// and the files that decide what runs (the configuration, known_hosts, state_dir) writable by their owner only,
// because whoever may write them chooses what a hook does: a forged fencing marker keeps a primary down, a host key
// added to known_hosts lets another host stand in for a node.

import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConfigIo } from './schema.ts';
import { isLink, nodeFacts, octal, resolvePath } from './trust.ts';

/** The real filesystem. */
export const nodeIo: ConfigIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  stat(path) {
    try {
      const st = statSync(path);
      return { mode: st.mode, isFile: st.isFile() };
    } catch {
      return undefined;
    }
  },
  lstat: nodeFacts,
  uid: process.getuid?.(),
};

/** How group and others may write a file or directory, for messages; undefined when they may not. */
export function writableBy(mode: number): string | undefined {
  if ((mode & 0o022) === 0) return undefined;
  return `writable by ${mode & 0o020 ? (mode & 0o002 ? 'group and others' : 'its group') : 'others'} (mode ${octal(mode)})`;
}

/** A file holding a secret: it must exist, be a regular file (not a link to one), be closed to group and others,
 *  and belong to the user that reads it (unless root reads). */
export function secretFileProblem(p: string, io: ConfigIo, whyPrivate: string): string | undefined {
  const st = io.stat(p);
  if (!st) return `${p} does not exist`;
  if (!st.isFile) return `${p} is not a regular file`;
  // A link lets whoever may change it pick which file is sent as the secret, and hides where the secret is.
  const own = io.lstat?.(p);
  if (own && isLink(own)) return `${p} is a symbolic link (to ${own.link}); point the setting at the file itself`;
  if ((st.mode & 0o077) !== 0) {
    return `${p} is ${st.mode & 0o044 ? 'readable' : 'writable'} by group or others (mode ${octal(st.mode)}); chmod 600 it (${whyPrivate})`;
  }
  if (own && io.uid !== undefined && io.uid !== 0 && own.uid !== io.uid) {
    return `${p} belongs to uid ${own.uid}, not to uid ${io.uid} that maas-ha runs as, so it cannot be read; chown it to the user the hooks run as`;
  }
  return undefined;
}

export function knownHostsProblem(p: string, io: ConfigIo): string | undefined {
  const st = io.stat(p);
  if (!st) return `${p} does not exist (fill it with ssh-keyscan of every node: maas-ha checks host keys strictly)`;
  if (!st.isFile) return `${p} is not a regular file`;
  const how = writableBy(st.mode);
  return how ? `${p} is ${how}: whoever may write it can add a host key and stand in for a node; chmod go-w ${p}` : undefined;
}

/**
 * The configuration decides what the hooks run (fencing.command) and, when root renders the sudoers drop-in, what
 * root may run: it and its directory must not be open to group or others. A path the io does not know (a test's
 * name for a text, or a file not on this filesystem) has nothing to check.
 */
export function configFileProblems(path: string, io: ConfigIo): string[] {
  const st = io.stat(path);
  if (!st) return [];
  const out: string[] = [];
  const real = io.lstat ? (resolvePath(path, io.lstat) ?? path) : path;
  const how = writableBy(st.mode);
  if (how) out.push(`${real} is ${how}: whoever may write it chooses what the hooks run and what root may run; chmod go-w ${real}`);
  for (const dir of new Set([dirname(path), dirname(real)])) {
    const d = io.stat(dir);
    const dHow = d && writableBy(d.mode);
    if (dHow) out.push(`${dir}, the directory of ${real}, is ${dHow}: whoever may write it can replace the configuration; chmod go-w ${dir}`);
  }
  return out;
}

/** state_dir holds the fencing markers and the failover journal the hooks act on: only its owner may write it. */
export function stateDirProblem(dir: string, io: Pick<ConfigIo, 'stat' | 'lstat'>): string | undefined {
  const st = io.stat(dir);
  if (!st) return undefined; // created 0700 by the first hook (or install.sh)
  const real = io.lstat ? resolvePath(dir, io.lstat) : undefined;
  const at = real && real !== dir ? `${dir} (a link to ${real})` : dir;
  if (st.isFile) return `${at} is a file, not a directory`;
  const how = writableBy(st.mode);
  if (how) return `${at} is ${how}: anyone could forge the fencing markers and journal entries the hooks act on; chmod go-w ${real ?? dir}`;
  return undefined;
}
