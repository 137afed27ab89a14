// End-to-end support for the VIP lab (lib/lab/vip.ts): one lab per test file, reused by every scenario in it,
// brought up before the first and taken down after the last (unless MAAS_HA_KEEP_LAB is set, to read its logs).

import type { TestFn } from 'ava';
import { join, resolve } from 'node:path';
import { vipLabDown, vipLabUp } from '../../lib/lab/vip.ts';
import type { VipLabOptions } from '../../lib/lab/vip-layout.ts';

const ROOT = resolve(import.meta.dirname, '../..');

/** The file's VIP lab in `dir` on 198.18.<net>.0/24, with the built hooks; registers its before and after hooks. */
export function vipLabForFile(test: TestFn, lab: Pick<VipLabOptions, 'dir' | 'net' | 'mode'>): VipLabOptions {
  const o: VipLabOptions = {
    hookBinDir: join(ROOT, 'dist', 'bin'),
    watchdogTemplate: join(ROOT, 'pgpool', 'watchdog.conf'),
    pgBinDir: '/usr/lib/postgresql/15/bin',
    ...lab,
  };
  test.before(async () => {
    if (process.getuid?.() !== 0) throw new Error('the VIP lab needs root (network namespaces, nftables, sshd)');
    await vipLabUp(o, () => {});
  });
  test.after.always(async () => {
    if (!process.env.MAAS_HA_KEEP_LAB) await vipLabDown(o, () => {}, { purge: true });
  });
  return o;
}
