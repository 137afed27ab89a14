// The guard's one filesystem effect: standby.signal in the node's own data directory. An adapter (node:fs), so
// the guard's use case receives it as a value and tests pass a fake.
//
// The file is what keeps a demoted primary a standby across a reboot, so it is made durable (fsync of the file
// and of the directory entry) before PostgreSQL is stopped. It is created with O_CREAT|O_EXCL|O_NOFOLLOW: the
// guard never writes through a symlink someone placed at that name, and never truncates an existing file.

import { closeSync, constants, fsyncSync, lstatSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { OperationError } from '../errors.ts';

export interface GuardFiles {
  /** standby.signal exists as PostgreSQL sees it (stat, following links as PostgreSQL does). */
  hasStandbySignal(dataDir: string): boolean;
  /** Creates an empty standby.signal (mode 0600), durable; 'exists' when a regular file is already there. */
  writeStandbySignal(dataDir: string): 'written' | 'exists';
}

export const STANDBY_SIGNAL = 'standby.signal';

export function createGuardFiles(): GuardFiles {
  return {
    hasStandbySignal(dataDir) {
      try {
        return statSync(join(dataDir, STANDBY_SIGNAL)).isFile();
      } catch {
        return false;
      }
    },
    writeStandbySignal(dataDir) {
      const file = join(dataDir, STANDBY_SIGNAL);
      let fd: number;
      try {
        fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') {
          const st = lstatSync(file);
          if (st.isFile()) return 'exists';
          throw new OperationError(`${file} exists but is not a regular file (${st.isSymbolicLink() ? 'a symlink' : 'not a file'}): refusing to use it`);
        }
        throw new OperationError(`cannot create ${file}: ${(err as Error).message}`, { cause: err });
      }
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // The directory entry too: after a power loss the file must still be there.
      const dir = openSync(dataDir, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
      return 'written';
    },
  };
}
