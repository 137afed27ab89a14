// Between the suite's end-to-end files (test/run.mjs): whatever a file left running is taken down with the labs'
// own teardown, so one file whose worker died (its after.always hook never ran) cannot break the files after it.
// A file that cleaned up after itself leaves nothing here, and this says nothing.

import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { freeOrphanedSharedMemory, labDown, readLabOptions } from '../../lib/lab/lab.ts';
import { readVipLabOptions, vipLabDown } from '../../lib/lab/vip.ts';
import { TEST_LAB_ROOT } from './lab.ts';

/** Tears down every lab under TEST_LAB_ROOT, kills what still runs from there; returns what it did, one line each. */
export async function reapTestLabs(): Promise<string[]> {
  const did: string[] = [];
  const say = (line: string) => did.push(line);
  // MAAS_HA_KEEP_LAB: the files leave their labs up to be looked at; so does this.
  if (process.env.MAAS_HA_KEEP_LAB) return [];
  for (const name of existsSync(TEST_LAB_ROOT) ? readdirSync(TEST_LAB_ROOT) : []) {
    const dir = join(TEST_LAB_ROOT, name);
    const vip = readVipLabOptions(dir);
    const plain = vip ? undefined : readLabOptions(dir);
    if (vip) await vipLabDown(vip, say, { purge: true });
    else if (plain) await labDown(plain, say, { purge: true });
  }
  for (const [pid, what] of strays()) {
    try {
      process.kill(pid, 'SIGKILL');
      say(`killed pid ${pid}, still running from ${TEST_LAB_ROOT}: ${what}`);
    } catch {
      // exited meanwhile
    }
  }
  const freed = await freeOrphanedSharedMemory();
  if (freed) say(`removed ${freed} shared memory segment(s) of killed pgpools`);
  return did;
}

/** Processes whose command line or working directory is inside TEST_LAB_ROOT (a recover a killed test started, say). */
function strays(): [number, string][] {
  const found: [number, string][] = [];
  for (const e of readdirSync('/proc')) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cmd.includes(`${TEST_LAB_ROOT}/`) || cwd.startsWith(`${TEST_LAB_ROOT}/`)) found.push([pid, cmd.slice(0, 160)]);
    } catch {
      // gone, or a kernel thread
    }
  }
  return found;
}
