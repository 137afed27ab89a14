// Reading and replacing the MAAS files `maas-ha render` and `maas-ha rack` work on (bind9 configuration, the DHCP
// template, a rack controller's identity). Writes go through writeFileSafely (atomic, owner and mode, never
// following a planted link: ./safe-write.ts); this adds what those use cases also need: a file's text with its
// owner and mode, removing a file, creating a private (0600) file for an archive, and a parent directory.

import { chmodSync, chownSync, closeSync, fsyncSync, statSync, lstatSync, mkdirSync, openSync, constants, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SafeWriteOptions, WriteOutcome } from '../model/ports.ts';
import { writeFileSafely } from './safe-write.ts';

export interface FileFacts {
  text: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface HostFiles {
  /** The file's text, mode (permission bits) and owner; undefined when there is no such file. Throws for a non-regular file. */
  read(path: string): FileFacts | undefined;
  write(path: string, text: string, opts: SafeWriteOptions): WriteOutcome;
  remove(path: string): void;
  /** Creates the directory and its parents (mode 0755, or `mode` for the last) when missing; `ownerFrom`: the last
   *  one gets that directory's owner and group. */
  ensureDir(path: string, opts?: { mode?: number; ownerFrom?: string }): void;
  isDir(path: string): boolean;
  /** A new, empty file only its owner may read (O_EXCL: never an existing one), for a command to fill. */
  createPrivate(path: string): void;
  /** fsync, then rename over `to`: the archive appears whole or not at all. */
  commit(from: string, to: string): void;
}

export const hostFileSystem: HostFiles = {
  read(path) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return undefined;
    if (!st.isFile()) throw new Error(`${path} is not a regular file${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`);
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      return { text: readFileSync(fd, 'utf8'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    } finally {
      closeSync(fd);
    }
  },
  write: writeFileSafely,
  remove(path) {
    unlinkSync(path);
  },
  ensureDir(path, opts = {}) {
    if (lstatSync(path, { throwIfNoEntry: false })?.isDirectory()) return;
    mkdirSync(path, { recursive: true, mode: 0o755 });
    if (opts.mode !== undefined) chmodSync(path, opts.mode);
    if (opts.ownerFrom) {
      const st = statSync(opts.ownerFrom);
      chownSync(path, st.uid, st.gid);
    }
  },
  isDir: (path) => statSync(path, { throwIfNoEntry: false })?.isDirectory() ?? false,
  createPrivate(path) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
  },
  commit(from, to) {
    const fd = openSync(from, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(from, to);
  },
};
