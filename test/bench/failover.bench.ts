// Failover benchmarks (issue 3), on a real lab: every measurement is a median of ctx.cycles cycles, each against
// a baseline measured in the same run on the same kind of node, because this machine is noisy.
//
// - hook overhead: maas-ha-failover, run exactly as pgpool runs it (sh -c with the hooks.conf line, as postgres),
//   from its start until the new primary accepts a write, divided by a bare `SELECT pg_promote(wait => true)` on a
//   standby of an identical fresh lab, from the call until that node accepts a write;
// - write unavailability through pgpool after kill -9 of the primary (maas-ha's recommended settings: the lab's),
//   against pgpool running a failover_command that does what pgpool's failover.sh.sample does (ssh, then
//   `pg_ctl promote` of %m);
// - time until full redundancy (every surviving standby streaming the new timeline and attached);
// - hook start-up: a hook's no-op path (maas-ha-failback with synchronous replication off) against `node -e 0`.

import { spawn } from 'node:child_process';
import { chmodSync, chownSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createShell } from '../../lib/adapters/exec.ts';
import { writeChecked } from '../../lib/adapters/checked-copy.ts';
import { readChecked } from '../../lib/config/checked.ts';
import { nodeIo, parseConfig } from '../../lib/config/load.ts';
import { labDown, labUp, postgresUser, serviceEnv, waitFor } from '../../lib/lab/lab.ts';
import { readPid } from '../../lib/adapters/pid-file.ts';
import { resetDrillTable, runDrill, Writer } from '../../lib/lab/drill.ts';
import { LAB_SSH_PORT, labNodes, labPaths, pgpoolHost, LAB_PCP_PORT, LAB_PCP_USER, type LabOptions } from '../../lib/lab/layout.ts';
import { renderHookLines } from '../../lib/pgpool/conf.ts';
import { expandHookCommand } from '../support/pgpool-expand.ts';
import { labOptions } from '../support/lab.ts';
import { median, result, type BenchContext, type BenchResult } from './run.ts';

const shell = createShell();
const quiet = () => {};
const asPostgres = (argv: string[]) => ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];

async function freshLab(o: LabOptions): Promise<void> {
  await labDown(o, quiet, { purge: true });
  await labUp(o, quiet);
}

async function connect(host: string): Promise<pg.Client> {
  const c = new pg.Client({ host, port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Polls INSERTs on already-open sessions (a standby's sessions survive its promotion) until one succeeds. */
async function firstWrite(sessions: pg.Client[], timeoutMs = 30_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    for (const c of sessions) {
      try {
        await c.query('INSERT INTO bench_probe DEFAULT VALUES');
        return performance.now();
      } catch {
        // read-only standby, or a session the old primary's death ended
      }
    }
    if (performance.now() > deadline) throw new Error('no write accepted');
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function prepareProbe(o: LabOptions): Promise<pg.Client[]> {
  const [primary, ...standbys] = labNodes(o);
  const p = await connect(primary!.host);
  await p.query('CREATE TABLE IF NOT EXISTS bench_probe (id bigserial PRIMARY KEY)');
  await p.query('SELECT pg_switch_wal()');
  await p.end();
  const sessions = await Promise.all(standbys.map((s) => connect(s.host)));
  // Wait until both standbys see the table, so a failed INSERT means "read-only", not "no such table".
  for (const s of sessions) await waitFor('probe table on the standby', 10_000, async () => ((await s.query("SELECT to_regclass('bench_probe') IS NOT NULL AS ok")).rows[0].ok ? true : undefined));
  return sessions;
}

/**
 * Both cores busy: one spinning shell per core, started once the lab is ready and stopped after the measurement,
 * for the loaded variant of the hook-overhead measurement (a failover on a busy host must stay fast; a decision that
 * depended on how quickly something answered would flip here).
 */
function cpuHog(): () => void {
  const hogs = availableParallelism();
  const children = Array.from({ length: hogs }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  return () => children.forEach((c) => c.kill('SIGKILL'));
}

/**
 * Baseline: the time of a bare `SELECT pg_promote(wait => true)` on node 1 of a fresh lab (the baseline);
 * that the node then accepts a write is checked, not timed.
 */
async function barePromote(o: LabOptions, loaded = false): Promise<number> {
  await freshLab(o);
  const sessions = await prepareProbe(o);
  const caller = await connect(labNodes(o)[1]!.host);
  const unload = loaded ? cpuHog() : () => {};
  const t0 = performance.now();
  const r = await caller.query<{ promoted: boolean }>('SELECT pg_promote(wait => true) AS promoted').finally(unload);
  const t1 = performance.now();
  if (r.rows[0]?.promoted !== true) throw new Error('pg_promote returned false');
  await firstWrite([sessions[0]!], 5000);
  await Promise.all([...sessions, caller].map((c) => c.end().catch(() => {})));
  return (t1 - t0) / 1000;
}

async function stopPgpool(o: LabOptions): Promise<void> {
  const pidFile = labPaths(o.dir).pgpoolPid;
  const pid = readPid(pidFile);
  if (!pid) return;
  process.kill(pid, 'SIGINT');
  await waitFor('pgpool to exit', 15_000, async () => (readPid(pidFile) ? undefined : true));
}

/** maas-ha-failover run as pgpool runs it (pgpool itself stopped, so nothing else acts), until a write is accepted. */
async function hookPromote(o: LabOptions, loaded = false): Promise<number> {
  await freshLab(o);
  await stopPgpool(o);
  const sessions = await prepareProbe(o);
  const nodes = labNodes(o);
  const line = renderHookLines(readFileSync(o.hooksTemplate, 'utf8'), labPaths(o.dir).bin)
    .split('\n')
    .map((l) => /^failover_command = '(.*)'$/.exec(l)?.[1])
    .find(Boolean)!;
  const cmd = expandHookCommand(line, {
    backends: nodes.map((n) => ({ hostname: n.host, port: n.port, dataDir: n.data })),
    node: 0,
    newMain: 1,
    oldMain: 0,
    oldPrimary: 0,
  });
  const unload = loaded ? cpuHog() : () => {};
  process.kill(readPid(join(nodes[0]!.data, 'postmaster.pid'))!, 'SIGKILL');
  const t0 = performance.now();
  const hook = shell.run(asPostgres(['/bin/sh', '-c', cmd]), { timeoutMs: 30_000, cwd: '/', env: serviceEnv(o, postgresUser()) });
  const t1 = await firstWrite(sessions).finally(unload);
  const r = await hook;
  if (r.exitCode !== 0) throw new Error(`the failover hook failed: ${r.stderr.trim().split('\n').pop()}`);
  await Promise.all(sessions.map((c) => c.end().catch(() => {})));
  return (t1 - t0) / 1000;
}

/**
 * Baseline for write unavailability: pgpool with a failover_command doing what failover.sh.sample does (promote
 * %m over ssh when the primary failed), wired in with `pcp_reload_config`. Seconds from kill -9 to the first write
 * acknowledged through pgpool.
 */
async function sampleUnavailability(o: LabOptions): Promise<number> {
  await freshLab(o);
  const p = labPaths(o.dir);
  const script = join(o.dir, 'sample-failover.sh');
  writeFileSync(
    script,
    `#!/bin/sh
# failover.sh.sample's core: if the primary failed, promote %m over ssh (no LSN choice, no fence).
[ "$1" = "$3" ] || exit 0
exec timeout 10 /usr/bin/ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${p.knownHosts} \\
  -i ${p.sshKey} -p ${LAB_SSH_PORT} postgres@"$2" ${o.pgBinDir}/pg_ctl -D "$4" -w promote
`,
  );
  chmodSync(script, 0o755);
  const conf = readFileSync(p.pgpoolConf, 'utf8').replace(/^failover_command = .*$/m, `failover_command = '${script} "%d" "%H" "%P" "%R"'`);
  writeFileSync(p.pgpoolConf, conf);
  const reload = await shell.run(['/usr/sbin/pcp_reload_config', '-h', pgpoolHost(o), '-p', String(LAB_PCP_PORT), '-U', LAB_PCP_USER, '-w'], {
    timeoutMs: 10_000,
    env: { PCPPASSFILE: p.pcpPass, HOME: '/root' },
  });
  if (!/Command Successful/.test(reload.stdout)) throw new Error(`pcp_reload_config: ${reload.stdout}${reload.stderr}`);
  return writerUnavailability(o);
}

async function writerUnavailability(o: LabOptions): Promise<number> {
  const setup = new pg.Client({ host: pgpoolHost(o), port: 9999, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  await setup.connect();
  await resetDrillTable(setup);
  await setup.end();
  const w = new Writer(pg, pgpoolHost(o));
  w.start();
  await waitFor('writes flowing', 10_000, async () => (w.acks.length > 50 ? true : undefined));
  const t0 = Date.now();
  process.kill(readPid(join(labNodes(o)[0]!.data, 'postmaster.pid'))!, 'SIGKILL');
  const ack = await waitFor('a write acknowledged after the kill', 30_000, async () => w.acks.find((a) => a.sentAt > t0));
  await w.stop();
  return (ack.ackAt - t0) / 1000;
}

/** Wall times of `argv` over n runs, spawned the same way; each run must print `expect` on stderr if given. */
async function spawnTimes(argv: string[], n: number, env: Record<string, string>, expect?: RegExp): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const r = await shell.run(argv, { timeoutMs: 10_000, env });
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
    // A measurement of the no-op path is only one if the run took it.
    if (expect && !expect.test(r.stderr)) throw new Error(`${argv[0]} did not take the expected path: ${r.stderr.trim().split('\n').pop()}`);
    out.push((performance.now() - t0) / 1000);
  }
  return out;
}

export default async function failoverBench(ctx: BenchContext): Promise<BenchResult[]> {
  const o = labOptions({ name: 'bench-failover', net: 140 });
  const bare: number[] = [];
  const hook: number[] = [];
  const bareLoaded: number[] = [];
  const hookLoaded: number[] = [];
  const sample: number[] = [];
  const unavailable: number[] = [];
  const redundancy: number[] = [];
  try {
    for (let i = 0; i < ctx.cycles; i++) {
      bare.push(await barePromote(o));
      hook.push(await hookPromote(o));
      ctx.say(`cycle ${i + 1}: bare pg_promote ${bare.at(-1)!.toFixed(3)} s, failover hook ${hook.at(-1)!.toFixed(3)} s`);
    }
    for (let i = 0; i < ctx.cycles; i++) {
      bareLoaded.push(await barePromote(o, true));
      hookLoaded.push(await hookPromote(o, true));
      ctx.say(`cycle ${i + 1}, both cores busy: bare pg_promote ${bareLoaded.at(-1)!.toFixed(3)} s, failover hook ${hookLoaded.at(-1)!.toFixed(3)} s`);
    }
    for (let i = 0; i < ctx.cycles; i++) {
      sample.push(await sampleUnavailability(o));
      await freshLab(o);
      const d = await runDrill(o, quiet);
      if (!d.ok || d.first_write_ok === null || d.redundancy_restored === null) throw new Error(`drill failed: ${d.problems.join('; ')}`);
      unavailable.push(d.first_write_ok);
      redundancy.push(d.redundancy_restored);
      ctx.say(`cycle ${i + 1}: sample-script failover ${sample.at(-1)!.toFixed(3)} s, maas-ha ${d.first_write_ok.toFixed(3)} s, redundancy ${d.redundancy_restored.toFixed(3)} s`);
    }
    // Start-up: a config with synchronous replication off makes the failback hook's body return at once. Written
    // as a database host has it (root:postgres 0640) with its checked copy, as install.sh and `maas-ha config check`
    // leave it: the path every production hook start takes (without the copy, a hook loads the YAML parser).
    const p = labPaths(o.dir);
    const offConfig = join(o.dir, 'maas-ha-sync-off.yaml');
    const offText = readFileSync(p.config, 'utf8').replace(/synchronous: \{ mode: any/, 'synchronous: { mode: "off"');
    writeFileSync(offConfig, offText, { mode: 0o640 });
    chownSync(offConfig, 0, postgresUser().gid);
    chmodSync(offConfig, 0o640);
    const copyFailure = writeChecked(offConfig, offText, parseConfig(offText, offConfig, nodeIo));
    if (copyFailure) throw new Error(`the checked copy of ${offConfig}: ${copyFailure}`);
    if (!readChecked(offConfig, offText)) throw new Error(`the checked copy of ${offConfig} is not accepted: the start-up would measure the YAML path`);
    const env = { ...serviceEnv(o, postgresUser()), MAAS_HA_CONFIG: offConfig };
    const failback = [join(p.bin, 'maas-ha-failback'), '--attached-node', '1', '--attached-host', '127.0.0.1', '--attached-port', '5432', '--attached-data-dir', '/x', '--new-main', '0', '--new-main-host', '127.0.0.1', '--new-main-port', '5432', '--new-main-data-dir', '/x', '--old-main', '0', '--old-primary', '0'];
    const n = Math.max(10, ctx.cycles * 4);
    const nodeTimes: number[] = [];
    const hookTimes: number[] = [];
    for (let i = 0; i < n; i++) {
      nodeTimes.push(...(await spawnTimes([process.execPath, '-e', '0'], 1, env)));
      hookTimes.push(...(await spawnTimes(failback, 1, env, /synchronous replication is off/)));
    }
    return [
      result({
        name: 'failover hook: start → new primary accepts a write',
        value: median(hook),
        baseline: { name: 'SELECT pg_promote(wait => true)', value: median(bare) },
        unit: 's',
        goal: '<= 1.5',
        samples: hook.length,
        how: 'fresh 3-node lab per sample; pgpool stopped, primary killed with SIGKILL, maas-ha-failover run as pgpool runs it (sh -c with the hooks.conf line, as postgres); the clock stops at the first INSERT accepted on an already-open standby session. Baseline: the duration of SELECT pg_promote(wait => true) on a standby of an identical fresh lab',
      }),
      result({
        name: 'the same with both cores busy',
        value: median(hookLoaded),
        baseline: { name: 'SELECT pg_promote(wait => true), cores as busy', value: median(bareLoaded) },
        unit: 's',
        goal: '<= 1.5',
        samples: hookLoaded.length,
        how: 'as above, with one spinning shell per core from just before the kill (or the pg_promote call) until the first write is accepted, for the hook and for its baseline alike',
      }),
      result({
        name: 'write unavailability through pgpool after kill -9 of the primary',
        value: median(unavailable),
        baseline: { name: "pgpool with failover.sh.sample's promote over ssh", value: median(sample) },
        unit: 's',
        // maas-ha does more than the sample (a choice by data, a fence) and must still not be slower.
        goal: '<= 1.0',
        samples: unavailable.length,
        how: "`maas-ha lab drill`: a writer inserts rows through pgpool every 10 ms, the primary's postmaster gets SIGKILL; seconds from the kill to the first acknowledged write sent after it. Baseline: the same writer and kill with failover_command replaced (pcp_reload_config) by a script doing what pgpool's failover.sh.sample does",
      }),
      result({
        name: 'kill -9 of the primary → full redundancy (standby following and attached)',
        value: median(redundancy),
        baseline: { name: 'SELECT pg_promote(wait => true)', value: median(bare) },
        unit: 's',
        samples: redundancy.length,
        how: '`maas-ha lab drill`: seconds from the kill until the surviving standby streams the new timeline from the new primary and pgpool has it up',
      }),
      result({
        name: "hook start-up: a hook's no-op path",
        value: median(hookTimes),
        baseline: { name: 'node -e 0', value: median(nodeTimes) },
        unit: 's',
        goal: '<= 2.0',
        samples: hookTimes.length,
        how: 'maas-ha-failback with synchronous replication off (parse flags, read the checked config copy and re-check the files it names, as install.sh and `maas-ha config check` leave a host; log the closing line, exit), alternating with `node -e 0`, each spawned the same way',
      }),
    ];
  } finally {
    await labDown(o, quiet, { purge: true });
  }
}
