// Recovery benchmarks (issue 14), on a real two-node lab (pgpool and the guards stopped: nothing but the command
// measured acts),
// every measurement a median of ctx.cycles, each against PostgreSQL's own tools doing the same steps bare, measured
// alternately in the same run on the same nodes:
//
// - rejoin of a former primary that diverged by ~10 MB: `maas-ha recover X --method rewind` (process start to
//   streaming) ÷ the bare steps (`pg_rewind` from the new primary, the standby settings written, `pg_ctl start`,
//   until the new primary shows it streaming); goal <= 1.3 at every size, and flat as the database grows
//   (maas-ha's rewind at the largest size ÷ at the smallest, goal <= 1.5);
// - rebuild of a standby by base backup: `maas-ha recover S --method basebackup --force` ÷ the bare steps
//   (`pg_ctl stop`, `pg_basebackup -X stream` into an empty directory, the standby settings, `pg_ctl start`, until
//   it streams); goal <= 1.2.
//
// Full run: pgbench scale 17, 70 (about 1.1 GB) and 280 (about 4.2 GB); `--quick`: scales 2, 8 and 16, to prove
// the bench works.

import { execFile } from 'node:child_process';
import { chownSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { createShell } from '../../lib/adapters/exec.ts';
import { labDown, labGuard, labUp, postgresUser, standbyAutoConf, waitFor } from '../../lib/lab/lab.ts';
import { readPid } from '../../lib/adapters/pid-file.ts';
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

const pgCtl = (n: LabNode, ...args: string[]) =>
  run(asPostgres([join(PG_BIN, 'pg_ctl'), '-D', n.conf, '-l', n.log, '-w', '-t', '120', ...args]), `pg_ctl ${args[0]} ${n.name}`, 150_000);

/** `standby` is back: the primary shows it streaming (what `maas-ha recover` waits for too). */
async function streams(primary: LabNode, standby: LabNode): Promise<void> {
  await waitFor(`${standby.name} to stream from ${primary.name}`, 600_000, async () => {
    const rows = await q(primary, `SELECT 1 FROM pg_stat_replication WHERE application_name = '${standby.name}' AND state = 'streaming'`).catch(() => []);
    return rows.length ? true : undefined;
  }, 50);
}

/** The lab's standby settings for `n` following `primary`, as the lab itself writes them when it clones a standby. */
async function standbySettings(o: LabOptions, primary: LabNode, n: LabNode): Promise<void> {
  // The settings name a slot, which a freshly promoted primary does not have yet (slots are not replicated).
  await q(primary, `SELECT pg_create_physical_replication_slot('maas_ha_node_${n.id}') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = 'maas_ha_node_${n.id}')`);
  const pgu = postgresUser();
  for (const [f, text] of [['postgresql.auto.conf', standbyAutoConf(o, primary, n)], ['standby.signal', '']] as const) {
    writeFileSync(join(n.data, f), text, { mode: 0o600 });
    chownSync(join(n.data, f), pgu.uid, pgu.gid);
  }
}

/** The rejoin done bare: pg_rewind from the new primary, the standby settings, start, until it streams. */
async function bareRewind(o: LabOptions, x: LabNode, y: LabNode): Promise<number> {
  const t0 = performance.now();
  await run(
    asPostgres([join(PG_BIN, 'pg_rewind'), '--target-pgdata', x.data, '--source-server', `host=${y.host} port=${y.port} user=postgres dbname=postgres`]),
    `pg_rewind ${x.name}`,
    1_800_000,
  );
  // pg_rewind copied the source's configuration files into the data directory; the lab keeps its own in conf/.
  for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) await run(['rm', '-f', join(x.data, f)], 'rm', 30_000);
  await standbySettings(o, y, x);
  await pgCtl(x, 'start');
  await streams(y, x);
  return (performance.now() - t0) / 1000;
}

/** A standby rebuilt bare: stop, pg_basebackup -X stream into an empty directory, the settings, start, streaming. */
async function bareBasebackup(o: LabOptions, primary: LabNode, s: LabNode): Promise<number> {
  const old = `${s.data}.bare-old`;
  const t0 = performance.now();
  await pgCtl(s, 'stop', '-m', 'fast');
  // Moving the old directory away is one rename; deleting it is left out of the time.
  renameSync(s.data, old);
  await run(
    asPostgres([join(PG_BIN, 'pg_basebackup'), '-h', primary.host, '-p', String(primary.port), '-U', 'postgres', '-D', s.data, '-X', 'stream', '-c', 'fast', '-S', `maas_ha_node_${s.id}`, '-w']),
    `pg_basebackup for ${s.name}`,
    1_800_000,
  );
  for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) await run(['rm', '-f', join(s.data, f)], 'rm', 30_000);
  await standbySettings(o, primary, s);
  await pgCtl(s, 'start');
  await streams(primary, s);
  const seconds = (performance.now() - t0) / 1000;
  await run(['rm', '-rf', old], 'rm', 600_000);
  return seconds;
}

export default async function bench(ctx: BenchContext): Promise<BenchResult[]> {
  const quick = ctx.cycles < 5;
  const [smallScale, largeScale, hugeScale] = quick ? [2, 8, 16] : [17, 70, 280];
  const o = labOptions({ name: 'recovery-bench', net: 119, nodes: 2, synchronous: 'off' });
  const nodes = labNodes(o);
  await labDown(o, quiet, { purge: true });
  await labUp(o, quiet);
  try {
    // Nothing but the measured command may act: pgpool would fail over and follow on every promotion and stop below.
    const pid = readPid(labPaths(o.dir).pgpoolPid);
    if (pid) process.kill(pid, 'SIGINT');
    await waitFor('pgpool to exit', 20_000, async () => (readPid(labPaths(o.dir).pgpoolPid) ? undefined : true));
    // Nor the guards: the divergence below is a deliberate second primary, which a guard stops within seconds.
    for (const n of nodes) await labGuard(o, n.id, 'stop');
    const config = join(o.dir, 'bench.yaml');
    writeFileSync(config, `${readFileSync(labPaths(o.dir).config, 'utf8')}recovery:\n  keep_old_data_dirs: 0\n`);

    // Which node is primary changes with every rejoin: the former primary comes back as the standby.
    let roles = { primary: nodes[0]!, standby: nodes[1]! };
    const rejoin = async (how: 'maas-ha' | 'bare'): Promise<number> => {
      const { primary: x, standby: y } = roles;
      await diverge(x, y);
      let seconds: number;
      if (how === 'bare') seconds = await bareRewind(o, x, y);
      else {
        const r = await recover(config, x.id, 'rewind');
        if (!r.method.startsWith('pg_rewind')) throw new Error(`asked for a rewind, got ${r.method}`);
        seconds = r.seconds;
      }
      roles = { primary: y, standby: x };
      return seconds;
    };
    const measureRejoins = async (label: string) => {
      const ours: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i < ctx.cycles; i++) {
        ours.push(await rejoin('maas-ha'));
        bare.push(await rejoin('bare'));
        ctx.say(`  ${label} rejoin ${i + 1}/${ctx.cycles}: maas-ha recover ${ours[i]!.toFixed(2)} s, bare pg_rewind + start ${bare[i]!.toFixed(2)} s`);
      }
      return { ours, bare };
    };
    const measureRebuilds = async (label: string) => {
      const ours: number[] = [];
      const bare: number[] = [];
      for (let i = 0; i < ctx.cycles; i++) {
        await caughtUp(roles.primary, roles.standby);
        // A healthy standby: --force (the command stops it first), as the bare steps do.
        ours.push((await recover(config, roles.standby.id, 'basebackup', true)).seconds);
        await caughtUp(roles.primary, roles.standby);
        bare.push(await bareBasebackup(o, roles.primary, roles.standby));
        ctx.say(`  ${label} rebuild ${i + 1}/${ctx.cycles}: maas-ha recover ${ours[i]!.toFixed(2)} s, bare pg_basebackup + start ${bare[i]!.toFixed(2)} s`);
      }
      return { ours, bare };
    };
    const mb = (b: number) => `${(b / 1024 ** 2).toFixed(0)} MB`;

    ctx.say(`recovery bench: lab on 127.0.${o.net}.x, ${ctx.cycles} cycles per measurement`);
    const smallBytes = await pgbench(o, smallScale, ctx.say);
    const small = await measureRejoins(mb(smallBytes));
    const largeBytes = await pgbench(o, largeScale, ctx.say);
    const large = await measureRejoins(mb(largeBytes));
    const largeRebuild = await measureRebuilds(mb(largeBytes));
    const hugeBytes = await pgbench(o, hugeScale, ctx.say);
    const huge = await measureRejoins(mb(hugeBytes));

    const rejoinResult = (bytes: number, scale: number, r: { ours: number[]; bare: number[] }) =>
      result({
        name: `rejoin of a former primary at ${mb(bytes)}, ~10 MB diverged: maas-ha recover --method rewind`,
        value: median(r.ours),
        baseline: { name: 'pg_rewind + settings + pg_ctl start until streaming, bare', value: median(r.bare) },
        unit: 's',
        goal: '<= 1.3',
        samples: ctx.cycles,
        how: `pgbench scale ${scale}: the standby is promoted while the primary takes ~10 MB more, the old primary stops cleanly, then either \`maas-ha recover X --direct --method rewind\` (process start to streaming: its checks, the fence markers, the slot, pg_rewind, the kept configuration, start, the wait) or the same steps bare, alternately.`,
      });
    return [
      rejoinResult(smallBytes, smallScale, small),
      rejoinResult(largeBytes, largeScale, large),
      rejoinResult(hugeBytes, hugeScale, huge),
      result({
        name: `maas-ha rewind rejoin as the database grows (${mb(hugeBytes)} vs ${mb(smallBytes)})`,
        value: median(huge.ours),
        baseline: { name: `the same at ${mb(smallBytes)}`, value: median(small.ours) },
        unit: 's',
        goal: '<= 1.5',
        samples: ctx.cycles,
        how: `pgbench scale ${smallScale}, then ${hugeScale}: the same ~10 MB divergence rejoined by maas-ha's rewind; flat means a ratio near 1.`,
      }),
      result({
        name: `standby rebuilt by base backup at ${mb(largeBytes)}: maas-ha recover --method basebackup`,
        value: median(largeRebuild.ours),
        baseline: { name: 'pg_ctl stop + pg_basebackup -X stream into an empty directory + start until streaming, bare', value: median(largeRebuild.bare) },
        unit: 's',
        goal: '<= 1.2',
        samples: ctx.cycles,
        how: `pgbench scale ${largeScale}: a healthy standby rebuilt by \`maas-ha recover S --direct --method basebackup --force\` (stop, pg_basebackup beside the old directory, syncfs, swap, start, streaming, the old directory deleted: recovery.keep_old_data_dirs 0) or by the bare steps (the old directory renamed away, its deletion not timed), alternately.`,
      }),
    ];
  } finally {
    await labDown(o, quiet, { purge: true });
  }
}
