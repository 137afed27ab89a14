// What the operator sees during a base backup, and the wrappers pgpool's online recovery runs: pure rendering,
// and the wrapper text executed under dash with an empty environment (as a postmaster started over ssh has).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSeconds, parseBasebackupProgress, parseProgressProbe, ProgressPrinter, renderProgress } from '../../../lib/recovery/progress.ts';
import { RECOVERY_WRAPPERS, recoveryWrappers } from '../../../lib/recovery/wrappers.ts';

test('pg_basebackup --progress → the last "done/total kB" it printed', (t) => {
  const text = 'pg_basebackup: starting background WAL receiver\n   512/2048 kB (25%), 0/1 tablespace\r  1024/2048 kB (50%), 0/1 tablespace (/var/lib/x/base/1/1259)\n';
  t.deepEqual(parseBasebackupProgress(text), { done: 1024 * 1024, total: 2048 * 1024 });
  t.is(parseBasebackupProgress('pg_basebackup: checkpoint completed'), undefined);
});

test('progress probe: pg_basebackup\'s own numbers win; without them, the size of the copy (WAL aside) against the primary\'s size', (t) => {
  t.deepEqual(parseProgressProbe('new_kb=100\nprogress=  50/200 kB (25%), 0/1 tablespace', 999), { done: 50 * 1024, total: 200 * 1024 });
  t.deepEqual(parseProgressProbe('new_kb=100\n', 1024 * 1024), { done: 100 * 1024, total: 1024 * 1024 });
  t.deepEqual(parseProgressProbe('new_kb=16484\nwal_kb=16384\n', 1024 * 1024), { done: 100 * 1024, total: 1024 * 1024 }, 'pre-sized WAL segments do not count');
  t.deepEqual(parseProgressProbe('new_kb=3000\n', 1024 * 1024), { done: 1038090, total: 1024 * 1024 }, 'never 100% until pg_basebackup says so');
  t.is(parseProgressProbe('', 1024), undefined);
});

test('progress bar: percent, bytes, throughput and ETA; no ETA before a rate is known', (t) => {
  const line = renderProgress({ done: 512 * 1024 ** 2, total: 1024 ** 3 }, 128 * 1024 ** 2);
  t.is(line, '  base backup [############............]  50%  512 MB / 1.0 GB  128 MB/s  ETA 4.0 s');
  t.regex(renderProgress({ done: 0, total: 1024 }, undefined), /\[\.{24}\]   0% .* - +ETA -$/);
  t.is(formatSeconds(3725), '1 h 2 min');
  t.is(formatSeconds(75), '1 min 15 s');
});

test('progress printer: redraws in place on a terminal; elsewhere one line per 10% (or 10 s)', (t) => {
  const tty: string[] = [];
  const p = new ProgressPrinter((s) => tty.push(s), true);
  p.update({ done: 0, total: 100 * 1024 ** 2 }, 0);
  p.update({ done: 50 * 1024 ** 2, total: 100 * 1024 ** 2 }, 1000);
  p.finish();
  t.is(tty.length, 3);
  t.true(tty[0]!.startsWith('\r') && tty[1]!.startsWith('\r'));
  t.regex(tty[1]!, /50 MB\/s {2}ETA 1\.0 s/, 'throughput counted from the first sample');
  t.is(tty[2], '\n');
  const log: string[] = [];
  const q = new ProgressPrinter((s) => log.push(s), false);
  for (let pct = 0; pct <= 100; pct += 2) q.update({ done: pct, total: 100 }, pct * 10);
  q.finish();
  t.is(log.length, 11);
  t.true(log.every((l) => l.endsWith('\n') && !l.includes('\r')));
});

test('recovery wrappers: name the config and node themselves, pass every argument through, run with an empty environment', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-wrappers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fakeNode = join(dir, 'fake node');
  writeFileSync(fakeNode, '#!/bin/sh\nprintf "%s\\n" "config=$MAAS_HA_CONFIG" "$@"\n');
  chmodSync(fakeNode, 0o755);
  const ws = recoveryWrappers({ configPath: "/etc/maas-ha/it's.yaml", binDir: '/usr/local/lib/maas-ha/dist/bin/', nodePath: fakeNode });
  t.deepEqual(ws.map((w) => w.name), ['recovery_1st_stage', 'pgpool_remote_start']);
  for (const w of ws) {
    const file = join(dir, w.name);
    writeFileSync(file, w.text);
    chmodSync(file, 0o700);
    const r = spawnSync('env', ['-i', file, '/var/lib/pg data', '10.0.0.12', '$(touch x)'], { encoding: 'utf8', cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), [
      "config=/etc/maas-ha/it's.yaml",
      `/usr/local/lib/maas-ha/dist/bin/${RECOVERY_WRAPPERS[w.name]}.mjs`,
      '/var/lib/pg data',
      '10.0.0.12',
      '$(touch x)',
    ]);
  }
  t.throws(() => recoveryWrappers({ configPath: 'maas-ha.yaml', binDir: '/b', nodePath: '/usr/bin/node' }), { message: /configuration must be an absolute path/ });
});
