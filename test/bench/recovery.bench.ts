// Recovery benchmarks (issue 4), on a real two-node lab (pgpool stopped: nothing but `maas-ha recover` acts), every
// measurement a median of ctx.cycles, each against a baseline measured in the same run:
//
// - base-backup recovery throughput: `maas-ha recover STANDBY --method basebackup` (stop, pg_basebackup beside,
//   swap, start, streaming), bytes of the rebuilt data directory per second of the whole command, divided by
//   `cp -a` of that same data directory on the same disk (goal >= 0.8);
// - rejoin of a former primary with ~10 MB written after the fork: by pg_rewind vs by base backup, the whole
//   command each time (goal: rewind >= 10x faster, i.e. ratio <= 0.1); the rebuild step alone is reported too;
// - flatness: rewind rejoin on the full database divided by the same on a database a quarter of its size
//   (goal <= 1.5, "nearly flat as the database grows"), with the base backup's growth beside it for contrast.
//
// Full run: pgbench scale 17, 70 (about 1.1 GB) and 280 (about 4.2 GB), the rejoins measured at each, so the
// README can say where rewind pulls ahead of a base backup and not only how it does at one size; `--quick`:
// scales 2, 8 and 16, to prove the bench works.

import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createShell } from '../../lib/adapters/exec.ts';
import { labDown, labUp, readPid, waitFor } from '../../lib/lab/lab.ts';
import { labNodes, labPaths, type LabNode, type LabOptions } from '../../lib/lab/layout.ts';
import { DIST_BIN, labOptions } from '../support/lab.ts';
import { median, result, type BenchContext, type BenchResult } from './run.ts';

const shell = createShell();
const quiet = () => {};
const asPostgres = (argv: string[]) => ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];
const PG_BIN = '/usr/lib/postgresql/15/bin';

async function q<R extends Record<string, unknown> = Record<string, unknown>>(n: LabNode, sql: string): Promise<R[]> {
  const c = new pg.Client({ host: n.host, port: n.port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 5000 });
  c.on('error', () => {});
  await c.connect();
  try {
    return (await c.query(sql)).rows as R[];
  } finally {
    await c.end().catch(() => {});
  }
}

async function run(argv: string[], what: string, timeoutMs: number): Promise<string> {
  const r = await shell.run(argv, { timeoutMs, env: { HOME: '/var/lib/postgresql', LANG: 'C' } });
  if (r.exitCode !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

interface Recovered {
  seconds: number;
  rebuildSeconds: number;
  method: string;
}

/** `maas-ha recover`, as an operator runs it, timed from outside (process start included). */
function recover(config: string, node: number, method: 'rewind' | 'basebackup', force = false): Promise<Recovered> {
  const t0 = performance.now();
  const args = ['recover', String(node), '--direct', '--method', method, '--json', '--config', config, ...(force ? ['--force'] : [])];
  return new Promise((resolve, reject) => {
    execFile(join(DIST_BIN, 'maas-ha'), args, { timeout: 1_800_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const seconds = (performance.now() - t0) / 1000;
      const out = JSON.parse(stdout.trim().split('\n').pop() || '{}') as { ok?: boolean; method?: string; rebuild_seconds?: number };
      if (err || !out.ok) return reject(new Error(`maas-ha recover ${node} --method ${method} failed: ${stderr.trim() || stdout.trim()}`));
      resolve({ seconds, rebuildSeconds: out.rebuild_seconds ?? seconds, method: out.method ?? '?' });
    });
  });
}

const bytesOf = async (dir: string) => Number((await run(['du', '-sb', dir], 'du', 600_000)).split('\t')[0]);

async function caughtUp(primary: LabNode, standby: LabNode): Promise<void> {
  await waitFor('the standby replays everything the primary wrote', 600_000, async () => {
    const [p] = await q<{ lsn: string }>(primary, 'SELECT pg_current_wal_lsn()::text AS lsn');
    const [s] = await q<{ behind: boolean }>(standby, `SELECT pg_last_wal_replay_lsn() < '${p!.lsn}'::pg_lsn AS behind`);
    return s && !s.behind ? true : undefined;
  }, 250);
}

/**
 * `x` (primary) and `y` (its standby) part ways: y is promoted while x still takes writes, x gets ~10 MB more,
 * then stops cleanly: a former primary that diverged from the new one by about 10 MB.
 */
async function diverge(x: LabNode, y: LabNode): Promise<void> {
  await caughtUp(x, y);
  await q(y, 'SELECT pg_promote(wait => true)');
  await q(x, "INSERT INTO bench_divergence SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 10000) g");
  // pg_rewind against a freshly promoted primary needs the new timeline in a checkpoint (docs/lab.md, "pg_rewind
  // needs a checkpoint on the new primary").
  await q(y, 'CHECKPOINT');
  await run(asPostgres([join(PG_BIN, 'pg_ctl'), '-D', x.conf, '-w', '-t', '120', 'stop', '-m', 'fast']), `stop ${x.name}`, 150_000);
}

async function pgbench(o: LabOptions, scale: number, say: (l: string) => void): Promise<number> {
  const [primary, standby] = labNodes(o);
  const t0 = performance.now();
  await run(asPostgres([join(PG_BIN, 'pgbench'), '-i', '-q', '-s', String(scale), '-h', primary!.host, '-p', '5432', '-U', 'postgres', 'postgres']), 'pgbench -i', 3_600_000);
  await q(primary!, 'CREATE TABLE IF NOT EXISTS bench_divergence (id int, filler text)');
  await q(primary!, 'CHECKPOINT');
  await caughtUp(primary!, standby!);
  const [size] = await q<{ bytes: string }>(primary!, 'SELECT sum(pg_database_size(oid))::text AS bytes FROM pg_database');
  say(`  pgbench scale ${scale}: ${(Number(size!.bytes) / 1024 ** 2).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  return Number(size!.bytes);
}

export default async function bench(ctx: BenchContext): Promise<BenchResult[]> {
  const quick = ctx.cycles < 5;
  const [smallScale, largeScale, hugeScale] = quick ? [2, 8, 16] : [17, 70, 280];
  const o = labOptions({ name: 'recovery-bench', net: 119, nodes: 2, synchronous: 'off' });
  const nodes = labNodes(o);
  await labDown(o, quiet, { purge: true });
  await labUp(o, quiet);
  try {
    // Nothing but maas-ha recover may act: pgpool would fail over and follow on every promotion and stop below.
    const pid = readPid(labPaths(o.dir).pgpoolPid);
    if (pid) process.kill(pid, 'SIGINT');
    await waitFor('pgpool to exit', 20_000, async () => (readPid(labPaths(o.dir).pgpoolPid) ? undefined : true));
    const config = join(o.dir, 'bench.yaml');
    writeFileSync(config, `${readFileSync(labPaths(o.dir).config, 'utf8')}recovery:\n  keep_old_data_dirs: 0\n`);

    // Which node is primary changes with every rejoin cycle: the former primary comes back as the standby.
    let roles = { primary: nodes[0]!, standby: nodes[1]! };
    const rejoin = async (method: 'rewind' | 'basebackup'): Promise<Recovered> => {
      await diverge(roles.primary, roles.standby);
      const r = await recover(config, roles.primary.id, method);
      if (!r.method.startsWith(method === 'rewind' ? 'pg_rewind' : 'base backup')) throw new Error(`asked for ${method}, got ${r.method}`);
      roles = { primary: roles.standby, standby: roles.primary };
      return r;
    };
    const measureRejoins = async (label: string) => {
      const rewind: Recovered[] = [];
      const copy: Recovered[] = [];
      for (let i = 0; i < ctx.cycles; i++) {
        rewind.push(await rejoin('rewind'));
        copy.push(await rejoin('basebackup'));
        ctx.say(`  ${label} rejoin ${i + 1}/${ctx.cycles}: rewind ${rewind[i]!.seconds.toFixed(2)} s, base backup ${copy[i]!.seconds.toFixed(2)} s`);
      }
      return { rewind, copy };
    };

    ctx.say(`recovery bench: lab on 127.0.119.x, ${ctx.cycles} cycles per measurement`);
    const smallBytes = await pgbench(o, smallScale, ctx.say);
    const small = await measureRejoins(`${(smallBytes / 1024 ** 2).toFixed(0)} MB`);
    const largeBytes = await pgbench(o, largeScale, ctx.say);
    const large = await measureRejoins(`${(largeBytes / 1024 ** 2).toFixed(0)} MB`);

    // Throughput: a standby rebuilt by base backup, against cp -a of the very directory it produced.
    const recoveredMBs: number[] = [];
    const rebuiltMBs: number[] = [];
    const copiedMBs: number[] = [];
    const durableMBs: number[] = [];
    for (let i = 0; i < ctx.cycles; i++) {
      const target = roles.standby;
      await caughtUp(roles.primary, target);
      // A healthy standby: --force (the command stops it first).
      const r = await recover(config, target.id, 'basebackup', true);
      const bytes = await bytesOf(target.data);
      const scratch = join(target.root, 'cp-a-baseline');
      await run(['rm', '-rf', scratch], 'rm', 600_000);
      const t0 = performance.now();
      await run(['cp', '-a', target.data, scratch], 'cp -a', 1_800_000);
      const cpSeconds = (performance.now() - t0) / 1000;
      // maas-ha makes its copy durable before swapping it in; cp -a leaves it in the page cache. Also measured.
      await run(['sync', '-f', scratch], 'sync -f', 600_000);
      const cpSyncSeconds = (performance.now() - t0) / 1000;
      await run(['rm', '-rf', scratch], 'rm', 600_000);
      recoveredMBs.push(bytes / 1024 ** 2 / r.seconds);
      rebuiltMBs.push(bytes / 1024 ** 2 / r.rebuildSeconds);
      copiedMBs.push(bytes / 1024 ** 2 / cpSeconds);
      durableMBs.push(bytes / 1024 ** 2 / cpSyncSeconds);
      ctx.say(`  throughput ${i + 1}/${ctx.cycles}: ${(bytes / 1024 ** 2).toFixed(0)} MB, recover ${r.seconds.toFixed(2)} s, cp -a ${cpSeconds.toFixed(2)} s (+ sync ${(cpSyncSeconds - cpSeconds).toFixed(2)} s)`);
    }

    // Last, the database grows to about four times the size: the same rejoins again.
    const hugeBytes = await pgbench(o, hugeScale, ctx.say);
    const huge = await measureRejoins(`${(hugeBytes / 1024 ** 2).toFixed(0)} MB`);

    const secs = (xs: Recovered[], k: 'seconds' | 'rebuildSeconds' = 'seconds') => median(xs.map((x) => x[k]));
    const sizeNote = `pgbench scale ${largeScale} (${(largeBytes / 1024 ** 3).toFixed(2)} GB)`;
    return [
      result({
        name: 'base-backup recovery throughput (maas-ha recover, whole command)',
        value: median(recoveredMBs),
        baseline: { name: 'cp -a of the same data directory, same disk', value: median(copiedMBs) },
        unit: 'MB/s',
        goal: '>= 0.8',
        samples: ctx.cycles,
        how: `${sizeNote}: bytes of the rebuilt standby's data directory divided by the wall time of \`maas-ha recover N --method basebackup --direct\` (stop, pg_basebackup beside, swap, start, streaming), against \`cp -a\` of that directory on the same disk.`,
      }),
      result({
        name: 'base-backup recovery throughput vs a durable copy (cp -a, then sync -f)',
        value: median(recoveredMBs),
        baseline: { name: 'cp -a + sync -f of the same data directory', value: median(durableMBs) },
        unit: 'MB/s',
        samples: ctx.cycles,
        how: 'The same recoveries against cp -a followed by sync -f: maas-ha syncs its copy to disk before it replaces the data directory, which a bare cp -a does not.',
      }),
      result({
        name: 'base-backup recovery throughput (rebuild step only)',
        value: median(rebuiltMBs),
        baseline: { name: 'cp -a of the same data directory, same disk', value: median(copiedMBs) },
        unit: 'MB/s',
        samples: ctx.cycles,
        how: 'The same recoveries, counting only the step maas-ha reports as the rebuild (stop, slot, pg_basebackup beside, one syncfs, swap): without process start-up, the start of the node and the wait for streaming, which do not grow with the database.',
      }),
      result({
        name: 'rejoin of a former primary, ~10 MB diverged: pg_rewind vs base backup (whole command)',
        value: secs(large.rewind),
        baseline: { name: 'the same rejoin by base backup', value: secs(large.copy) },
        unit: 's',
        goal: '<= 0.1',
        samples: ctx.cycles,
        how: `${sizeNote}: the standby is promoted while the primary takes ~10 MB more, then the old primary stops cleanly and \`maas-ha recover\` rejoins it (process start to streaming), by pg_rewind or by base backup, alternately.`,
      }),
      result({
        name: 'rejoin, rebuild step only: pg_rewind vs pg_basebackup + swap',
        value: secs(large.rewind, 'rebuildSeconds'),
        baseline: { name: 'base backup step', value: secs(large.copy, 'rebuildSeconds') },
        unit: 's',
        samples: ctx.cycles,
        how: 'The same rejoins, counting only the rebuild step maas-ha reports (stop, slot, pg_rewind, or pg_basebackup beside and swap), without start-up, start and the wait for streaming.',
      }),
      result({
        name: `rewind rejoin as the database grows (${(largeBytes / 1024 ** 2).toFixed(0)} MB vs ${(smallBytes / 1024 ** 2).toFixed(0)} MB)`,
        value: secs(large.rewind),
        baseline: { name: `rewind rejoin at ${(smallBytes / 1024 ** 2).toFixed(0)} MB`, value: secs(small.rewind) },
        unit: 's',
        goal: '<= 1.5',
        samples: ctx.cycles,
        how: `pgbench scale ${smallScale}, then ${largeScale}: the same ~10 MB divergence rejoined by pg_rewind; nearly flat means a ratio near 1.`,
      }),
      result({
        name: `rejoin at ${(hugeBytes / 1024 ** 3).toFixed(1)} GB, ~10 MB diverged: pg_rewind vs base backup (whole command)`,
        value: secs(huge.rewind),
        baseline: { name: 'the same rejoin by base backup', value: secs(huge.copy) },
        unit: 's',
        goal: '<= 0.1',
        samples: ctx.cycles,
        how: `pgbench scale ${hugeScale} (${(hugeBytes / 1024 ** 3).toFixed(2)} GB): the same rejoins as above on a database about four times larger; the base backup grows with it, the rewind does not.`,
      }),
      result({
        name: `rewind rejoin as the database grows (${(hugeBytes / 1024 ** 2).toFixed(0)} MB vs ${(smallBytes / 1024 ** 2).toFixed(0)} MB)`,
        value: secs(huge.rewind),
        baseline: { name: `rewind rejoin at ${(smallBytes / 1024 ** 2).toFixed(0)} MB`, value: secs(small.rewind) },
        unit: 's',
        goal: '<= 1.5',
        samples: ctx.cycles,
        how: `pgbench scale ${smallScale}, then ${hugeScale}: the same ~10 MB divergence rejoined by pg_rewind on a database some fifteen times larger.`,
      }),
      result({
        name: `base-backup rejoin as the database grows (${(largeBytes / 1024 ** 2).toFixed(0)} MB vs ${(smallBytes / 1024 ** 2).toFixed(0)} MB)`,
        value: secs(large.copy),
        baseline: { name: `base-backup rejoin at ${(smallBytes / 1024 ** 2).toFixed(0)} MB`, value: secs(small.copy) },
        unit: 's',
        samples: ctx.cycles,
        how: 'For contrast with the line above: the same rejoins by base backup grow with the database.',
      }),
    ];
  } finally {
    await labDown(o, quiet, { purge: true });
  }
}
