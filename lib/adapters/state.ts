// maas-ha's own state on the pgpool host: a lock so two hooks of one cluster never run their steps at the same
// time, a journal of steps (what a run did, for the operator and for a re-run), and fencing markers for primaries
// that could not be stopped. Plain files under state_dir; the lock is an O_EXCL file holding the owner's pid,
// taken over when that pid is gone (a hook killed by its budget must not wedge the next failover).

import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { OperationError } from '../errors.ts';
import type { Clock, FencedMarker, StateStore } from '../model/deps.ts';

export function createStateStore(dir: string, clock: Clock): StateStore {
  const ensure = (d: string) => {
    try {
      mkdirSync(d, { recursive: true, mode: 0o700 });
    } catch (err) {
      // The hooks run as pgpool's user, which cannot create directories under /var/lib: install.sh makes state_dir.
      throw new OperationError(
        `cannot create ${d} (maas-ha's state: locks, journal, fencing markers) as ${userInfo().username}: ${(err as Error).message}; create ${dir} owned by the user pgpool runs as (install.sh does it for state_dir)`,
      );
    }
    return d;
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  return {
    async lock(name: string, waitMs: number) {
      const file = join(ensure(join(dir, 'locks')), `${name}.lock`);
      const deadline = clock.now() + waitMs;
      for (;;) {
        try {
          writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
          return () => rmSync(file, { force: true });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          const owner = Number(readFileSync(file, 'utf8').trim());
          if (!Number.isInteger(owner) || !alive(owner)) {
            rmSync(file, { force: true });
            continue;
          }
          if (clock.now() >= deadline) throw new OperationError(`lock ${name} is held by pid ${owner} (another maas-ha hook is running)`);
          await clock.sleep(50);
        }
      }
    },
    journal(run: string, entry: Record<string, unknown>) {
      appendFileSync(join(ensure(join(dir, 'journal')), `${run}.jsonl`), `${JSON.stringify({ at: new Date(clock.now()).toISOString(), ...entry })}\n`);
    },
    readJournal(run: string) {
      const file = join(dir, 'journal', `${run}.jsonl`);
      if (!existsSync(file)) return [];
      return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    markFenced(marker: FencedMarker) {
      writeFileSync(join(ensure(join(dir, 'fenced')), `node-${marker.node}.json`), `${JSON.stringify(marker, null, 2)}\n`, { mode: 0o600 });
    },
    clearFenced(node: number) {
      rmSync(join(dir, 'fenced', `node-${node}.json`), { force: true });
    },
    fenced() {
      const d = join(dir, 'fenced');
      if (!existsSync(d)) return [];
      return readdirSync(d)
        .filter((f) => f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(d, f), 'utf8')) as FencedMarker);
    },
  };
}
