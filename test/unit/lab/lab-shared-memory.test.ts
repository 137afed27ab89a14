// freeOrphanedSharedMemory: what a SIGKILLed pgpool leaves behind (docs/lab.md, "A killed pgpool leaks its shared
// memory") goes; a segment someone could still use stays. Real System V segments, made by perl's shmget (perl-base
// is on every Debian host): private ones as postgres whose creator has exited, one whose creator still runs, one
// of root's.
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freeOrphanedSharedMemory } from '../../../lib/lab/lab.ts';

const CREATE = 'my $id = shmget(0, 4096, 0600 | 01000); defined $id or die "shmget: $!"; print "$id\\n";';
const asPostgres = ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups'];

const segments = () => new Set(readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[1])));
const made = (argv: string[]) => Number(execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 10_000 }).trim());

test.serial('a private segment of postgres that nothing holds and whose creator exited is removed; one whose creator runs, and root\'s, stay', async (t) => {
  if (process.getuid?.() !== 0) throw new Error('this test creates segments as postgres: run it as root');
  const orphan = made([...asPostgres, 'perl', '-e', CREATE]);
  const rootOwned = made(['perl', '-e', CREATE]);
  // Its creator prints the id, then stays until its stdin closes.
  const holder = spawn(asPostgres[0]!, [...asPostgres.slice(1), 'perl', '-e', `${CREATE} $| = 1; <STDIN>;`], { stdio: ['pipe', 'pipe', 'inherit'] });
  const living = await new Promise<number>((resolve, reject) => {
    holder.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    holder.once('error', reject);
    setTimeout(() => reject(new Error('the holder printed no segment id in 10 s')), 10_000).unref();
  });
  try {
    t.true([orphan, rootOwned, living].every((id) => segments().has(id)));
    t.true((await freeOrphanedSharedMemory()) >= 1);
    const after = segments();
    t.false(after.has(orphan), 'the orphan is gone');
    t.true(after.has(living), 'the segment of a running creator stays');
    t.true(after.has(rootOwned), "root's segment stays");
  } finally {
    holder.stdin.end();
    for (const id of [orphan, rootOwned, living]) {
      try {
        execFileSync('ipcrm', ['-m', String(id)], { timeout: 5000, stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  }
});
