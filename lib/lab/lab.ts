// `maas-ha lab up | down`: builds and tears down the local lab (see layout.ts for what it is). Runs as root and
// drops to postgres for everything PostgreSQL and pgpool do, like the Debian packages. Processes are stopped only
// through their pid files, never by name, so a lab never touches anything else on the machine.

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createShell } from '../adapters/exec.ts';
import { alive, readPid, stopByPidFile } from '../adapters/pid-file.ts';
import { OperationError } from '../errors.ts';
import { checked, type RunResult } from '../model/ports.ts';
import { renderHookLines } from '../pgpool/conf.ts';
import { loadConfig, nodeIo, parseConfig } from '../config/load.ts';
import { writeChecked } from '../adapters/checked-copy.ts';
import { desiredSynchronousNames } from '../failover/sync.ts';
import { recoveryWrappers } from '../recovery/wrappers.ts';
import {
  LAB_PCP_PORT,
  LAB_GUARD_INTERVAL_MS,
  LAB_PCP_USER,
  guardFiles,
  pgpoolHost,
  LAB_PGPOOL_PORT,
  LAB_REPL_USER,
  PG_HBA,
  knownHosts,
  labConfigYaml,
  labNodes,
  labPaths,
  pgpoolConf,
  postgresqlConf,
  sshdConfig,
  type LabNode,
  type LabOptions,
} from './layout.ts';

const shell = createShell();
export type Say = (line: string) => void;

interface PgUser {
  uid: number;
  gid: number;
  home: string;
}

export function postgresUser(): PgUser {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new OperationError('there is no postgres user on this machine: run ./install.sh first');
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '/var/lib/postgresql' };
}

/** The environment pgpool and PostgreSQL get in the lab: minimal, like a systemd service's. */
export function serviceEnv(o: LabOptions, pg: PgUser): Record<string, string> {
  return {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: pg.home,
    USER: 'postgres',
    LOGNAME: 'postgres',
    LANG: 'C.UTF-8',
    MAAS_HA_CONFIG: labPaths(o.dir).config,
  };
}

const asPostgres = (argv: string[]) => ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];

async function run(argv: string[], what: string, timeoutMs = 60_000, env?: Record<string, string>): Promise<RunResult> {
  return checked(await shell.run(argv, { timeoutMs, ...(env ? { env } : {}) }), what);
}

function mkdirOwned(path: string, pg: PgUser, mode = 0o700): void {
  mkdirSync(path, { recursive: true });
  chownSync(path, pg.uid, pg.gid);
  chmodSync(path, mode);
}

function writeOwned(path: string, text: string, pg: PgUser | undefined, mode: number): void {
  writeFileSync(path, text, { mode });
  chmodSync(path, mode);
  if (pg) chownSync(path, pg.uid, pg.gid);
}

/**
 * Removes the System V shared memory that SIGKILLed pgpools left behind: pgpool keeps its state in a private
 * (key 0) segment of about 130 MB that only its own exit removes, so every kill -9 of a pgpool leaks one until
 * the host reboots (docs/lab.md, "A killed pgpool leaks its shared memory"). A segment goes only when it is
 * private, owned by postgres, attached to nothing and its creator is gone: nobody can find it again. Returns how
 * many were removed.
 */
export async function freeOrphanedSharedMemory(): Promise<number> {
  if (!existsSync('/proc/sysvipc/shm')) return 0;
  const pg = postgresUser();
  const rows = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/).map(Number));
  // key shmid perms size cpid lpid nattch uid ...
  const orphans = rows.filter(([key, , , , cpid, , nattch, uid]) => key === 0 && nattch === 0 && uid === pg.uid && cpid !== undefined && !alive(cpid));
  for (const [, shmid] of orphans) await run(['ipcrm', '-m', String(shmid)], `ipcrm -m ${shmid}`, 5000);
  return orphans.length;
}

export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new OperationError(`${what}: not reached within ${timeoutMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The nearest existing ancestor of `dir` (or dir itself) that group or others may write to, if any. */
function writableAncestor(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o022) !== 0) return d;
    if (d === '/') return undefined;
  }
}

/** The options a lab in `dir` was started with, or undefined when no lab was ever started there. */
export function readLabOptions(dir: string): LabOptions | undefined {
  const file = labPaths(dir).options;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as LabOptions) : undefined;
}

export function labIsUp(o: LabOptions): boolean {
  return readPid(labPaths(o.dir).pgpoolPid) !== undefined;
}

export async function labUp(o: LabOptions, say: Say): Promise<void> {
  const p = labPaths(o.dir);
  if (process.getuid?.() !== 0) throw new OperationError('maas-ha lab up must run as root (it starts sshd and drops to postgres)');
  for (const bin of [join(o.pgBinDir, 'initdb'), '/usr/sbin/pgpool', '/usr/sbin/sshd', '/usr/sbin/pcp_node_info', join(o.hookBinDir, 'maas-ha-failover'), join(o.hookBinDir, 'maas-ha-guard')]) {
    if (!existsSync(bin)) throw new OperationError(`${bin} is missing: run ./install.sh first`);
  }
  const unsafe = writableAncestor(o.dir);
  if (unsafe) {
    throw new OperationError(
      `${unsafe} is writable by group or others: sshd (StrictModes) refuses keys below it, so the lab cannot live in ${o.dir}; choose another --dir`,
    );
  }
  const previous = readLabOptions(o.dir);
  if (previous && labIsUp(previous)) {
    say(`lab already up in ${o.dir} (${previous.nodes} nodes on 127.0.${previous.net}.x, synchronous ${previous.synchronous})`);
    return;
  }
  if (previous || existsSync(join(o.dir, 'pg0'))) {
    say(`found a stopped lab in ${o.dir}: removing it`);
    await labDown(previous ?? o, say, { purge: true });
  }
  const pg = postgresUser();
  const t0 = Date.now();
  const step = (msg: string) => say(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}`);

  mkdirSync(o.dir, { recursive: true, mode: 0o755 });
  chmodSync(o.dir, 0o755);
  writeFileSync(p.options, `${JSON.stringify(o, null, 2)}\n`);
  mkdirOwned(p.secrets, pg);
  mkdirOwned(p.state, pg);
  // pgpool runs the lab's own copy of the hooks, so rebuilding the checkout never swaps them under a running lab.
  rmSync(p.bin, { recursive: true, force: true });
  // verbatimSymlinks: the extensionless executables are relative links to their .mjs; keep them relative.
  cpSync(o.hookBinDir, p.bin, { recursive: true, verbatimSymlinks: true });
  chmodSync(p.bin, 0o755);

  // ---- secrets: generated here, stored in files only postgres can read, never in argv or logs.
  const replPassword = randomBytes(18).toString('base64url');
  const pcpPassword = randomBytes(18).toString('base64url');
  writeOwned(p.replPass, `*:*:*:${LAB_REPL_USER}:${replPassword}\n`, pg, 0o600);
  writeOwned(p.pcpPass, `${pgpoolHost(o)}:${LAB_PCP_PORT}:${LAB_PCP_USER}:${pcpPassword}\n`, pg, 0o600);

  await startSsh(o, pg, step);
  const nodes = labNodes(o);
  await initPrimary(o, pg, nodes[0]!, replPassword, step);
  // The standbys at once: each pg_basebackup has a slot of its own.
  await Promise.all(nodes.slice(1).map((n) => cloneStandby(o, pg, nodes[0]!, n, step)));

  const configText = labConfigYaml(o);
  // root:postgres 0640, as on a database host: root decides what the hooks run, postgres (the hooks) reads it,
  // and its checked copy then gets the same group read, so the hooks start without the YAML parser.
  writeOwned(p.config, configText, undefined, 0o640);
  chownSync(p.config, 0, pg.gid);
  // The checked copy, as `maas-ha config check` writes it in production: the hooks start without the YAML parser.
  const checkedFailure = writeChecked(p.config, configText, parseConfig(configText, p.config, nodeIo));
  if (checkedFailure) throw new OperationError(`writing the checked copy of ${p.config}: ${checkedFailure}`);
  if (o.synchronous !== 'off') {
    // The same setting maas-ha's hooks manage later; set only once standbys stream, or every commit would wait.
    const wanted = desiredSynchronousNames(loadConfig(p.config), nodes[0]!.id);
    await psql(o, pg, nodes[0]!, 'postgres', `ALTER SYSTEM SET synchronous_standby_names = '${wanted}'`);
    await psql(o, pg, nodes[0]!, 'postgres', 'SELECT pg_reload_conf()');
    step(`synchronous replication on ${nodes[0]!.name}: ${wanted}`);
  }
  await startPgpool(o, pg, pcpPassword, step);
  await startGuards(o, pg, step);
  step(`lab up: ${nodes.length} PostgreSQL nodes, pgpool on ${pgpoolHost(o)}:${LAB_PGPOOL_PORT}, config ${p.config}`);
}

async function startSsh(o: LabOptions, pg: PgUser, step: Say): Promise<void> {
  const p = labPaths(o.dir);
  mkdirSync(p.ssh, { recursive: true, mode: 0o755 });
  mkdirSync(p.authorizedKeys, { recursive: true, mode: 0o755 });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  if (!existsSync(p.hostKey)) await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'maas-ha-lab-host', '-f', p.hostKey], 'ssh-keygen (host key)');
  if (!existsSync(p.sshKey)) {
    await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'maas-ha-lab-postgres', '-f', p.sshKey], 'ssh-keygen (postgres key)');
    chownSync(p.sshKey, pg.uid, pg.gid);
    chmodSync(p.sshKey, 0o600);
  }
  writeOwned(join(p.authorizedKeys, 'postgres'), readFileSync(`${p.sshKey}.pub`, 'utf8'), undefined, 0o644);
  // known_hosts is written from the host key itself: no keyscan, no trust on first use.
  writeOwned(p.knownHosts, knownHosts(o, readFileSync(`${p.hostKey}.pub`, 'utf8')), undefined, 0o644);
  writeOwned(p.sshdConfig, sshdConfig(o), undefined, 0o644);
  await run(['/usr/sbin/sshd', '-t', '-f', p.sshdConfig], 'sshd -t');
  if (!readPid(p.sshdPid)) await run(['/usr/sbin/sshd', '-f', p.sshdConfig, '-E', p.sshdLog], 'sshd');
  const first = labNodes(o)[0]!;
  await waitFor('ssh as postgres to the lab hosts', 10_000, async () => {
    const r = await shell.run(
      asPostgres([
        '/usr/bin/ssh', '-F', '/dev/null', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes',
        '-o', `UserKnownHostsFile=${p.knownHosts}`, '-o', 'ConnectTimeout=3', '-i', p.sshKey, '-p', '2222',
        `postgres@${first.host}`, 'true',
      ]),
      { timeoutMs: 8000, env: serviceEnv(o, pg) },
    );
    if (r.exitCode !== 0) throw new Error(r.stderr.trim());
    return true;
  }, 250);
  step(`sshd on ${labNodes(o).map((n) => n.host).join(', ')} port 2222, postgres key login with strict host keys`);
}

async function pgCtl(o: LabOptions, pg: PgUser, n: LabNode, action: 'start' | 'stop', mode = 'fast'): Promise<void> {
  const argv = [join(o.pgBinDir, 'pg_ctl'), '-D', n.conf, '-l', n.log, '-w', '-t', '60', action];
  if (action === 'stop') argv.push('-m', mode);
  await run(asPostgres(argv), `pg_ctl ${action} ${n.name}`, 70_000, serviceEnv(o, pg));
}

function writeNodeConf(o: LabOptions, pg: PgUser, n: LabNode): void {
  mkdirOwned(n.root, pg, 0o755);
  mkdirOwned(n.conf, pg, 0o755);
  mkdirOwned(n.run, pg, 0o755);
  writeOwned(join(n.conf, 'postgresql.conf'), postgresqlConf(o, n), pg, 0o644);
  writeOwned(join(n.conf, 'pg_hba.conf'), PG_HBA, pg, 0o640);
  writeOwned(join(n.conf, 'pg_ident.conf'), '', pg, 0o640);
}

/** Removes the configuration files initdb or pg_basebackup leave in the data directory: ours live in conf/. */
function dropDataDirConfs(n: LabNode): void {
  for (const f of ['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf']) rmSync(join(n.data, f), { force: true });
}

async function psql(o: LabOptions, pg: PgUser, n: LabNode, db: string, sql: string): Promise<string> {
  const r = await run(
    asPostgres([join(o.pgBinDir, 'psql'), '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', n.run, '-p', String(n.port), '-d', db, '-c', sql]),
    `psql on ${n.name}`,
    30_000,
    serviceEnv(o, pg),
  );
  return r.stdout.trim();
}

async function initPrimary(o: LabOptions, pg: PgUser, n: LabNode, replPassword: string, step: Say): Promise<void> {
  writeNodeConf(o, pg, n);
  mkdirOwned(n.data, pg);
  if (o.initdbTemplate) {
    await ensureInitdbTemplate(o, pg, o.initdbTemplate);
    // As postgres, so root never copies out of a tree that postgres owns.
    await run(asPostgres(['cp', '-a', `${o.initdbTemplate}/.`, `${n.data}/`]), 'copy of the initdb template', 60_000, serviceEnv(o, pg));
  } else {
    await initdb(o, pg, n.data);
  }
  dropDataDirConfs(n);
  // pgpool's online recovery runs these from the primary's data directory; written before the standbys are
  // cloned, pg_basebackup carries them to every node that may become primary (docs/lab.md, "Recovery wrappers live in every data directory").
  const p = labPaths(o.dir);
  for (const w of recoveryWrappers({ configPath: p.config, binDir: p.bin, nodePath: process.execPath })) {
    writeOwned(join(n.data, w.name), w.text, pg, 0o700);
  }
  await pgCtl(o, pg, n, 'start');
  // The password travels on stdin (psql variable), never in argv where `ps` would show it.
  const create = await shell.run(
    asPostgres([join(o.pgBinDir, 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-h', n.run, '-p', String(n.port), '-d', 'postgres']),
    {
      timeoutMs: 30_000,
      env: serviceEnv(o, pg),
      input: `SET password_encryption = 'scram-sha-256';\nCREATE ROLE ${LAB_REPL_USER} WITH LOGIN REPLICATION PASSWORD '${replPassword}';\n`,
    },
  );
  checked(create, 'create replication role');
  await psql(o, pg, n, 'template1', 'CREATE EXTENSION IF NOT EXISTS pgpool_recovery');
  for (const m of labNodes(o).filter((x) => x.id !== n.id)) {
    await psql(o, pg, n, 'postgres', `SELECT pg_create_physical_replication_slot('maas_ha_node_${m.id}')`);
  }
  step(`${n.name} (${n.host}:${n.port}) initialised and started as primary`);
}

async function initdb(o: LabOptions, pg: PgUser, dir: string): Promise<void> {
  await run(
    asPostgres([join(o.pgBinDir, 'initdb'), '-D', dir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8']),
    'initdb',
    120_000,
    serviceEnv(o, pg),
  );
}

/**
 * The initdb template, made once: initdb into a fresh directory beside it, then renamed into place (so a template
 * that exists is complete). One that postgres does not own, or that others may write, is refused, not used.
 */
async function ensureInitdbTemplate(o: LabOptions, pg: PgUser, template: string): Promise<void> {
  const parent = dirname(template);
  const ps = statSync(parent);
  if (ps.uid !== 0 || (ps.mode & 0o022) !== 0) throw new OperationError(`${parent} must belong to root and be writable only by it, to hold the initdb template`);
  if (existsSync(template)) {
    const st = statSync(template);
    if (st.uid !== pg.uid || (st.mode & 0o077) !== 0 || !existsSync(join(template, 'PG_VERSION'))) {
      throw new OperationError(`${template} is not an initdb template of postgres's (mode 0700, PG_VERSION inside): remove it`);
    }
    return;
  }
  const fresh = `${template}.new-${process.pid}`;
  rmSync(fresh, { recursive: true, force: true });
  mkdirOwned(fresh, pg);
  await initdb(o, pg, fresh);
  try {
    renameSync(fresh, template);
  } catch {
    // Made by someone else meanwhile: theirs is as good.
    rmSync(fresh, { recursive: true, force: true });
  }
}

export function standbyAutoConf(o: LabOptions, primary: LabNode, n: LabNode): string {
  const p = labPaths(o.dir);
  return [
    '# written by maas-ha: this node follows the primary below',
    `primary_conninfo = 'host=${primary.host} port=${primary.port} user=${LAB_REPL_USER} passfile=${p.replPass} application_name=${n.name} connect_timeout=3'`,
    `primary_slot_name = 'maas_ha_node_${n.id}'`,
    "recovery_target_timeline = 'latest'",
    '',
  ].join('\n');
}

async function cloneStandby(o: LabOptions, pg: PgUser, primary: LabNode, n: LabNode, step: Say): Promise<void> {
  const p = labPaths(o.dir);
  writeNodeConf(o, pg, n);
  mkdirOwned(n.data, pg);
  await run(
    asPostgres([
      join(o.pgBinDir, 'pg_basebackup'), '-h', primary.host, '-p', String(primary.port), '-U', LAB_REPL_USER,
      '-D', n.data, '-X', 'stream', '-c', 'fast', '-S', `maas_ha_node_${n.id}`, '-w',
      // A lab's standby need not survive a power cut; the sync of its 40 MB was most of a clone's time here.
      '--no-sync',
    ]),
    `pg_basebackup for ${n.name}`,
    300_000,
    { ...serviceEnv(o, pg), PGPASSFILE: p.replPass },
  );
  dropDataDirConfs(n);
  writeOwned(join(n.data, 'postgresql.auto.conf'), standbyAutoConf(o, primary, n), pg, 0o600);
  writeOwned(join(n.data, 'standby.signal'), '', pg, 0o600);
  await pgCtl(o, pg, n, 'start');
  step(`${n.name} (${n.host}:${n.port}) cloned from ${primary.name} and started as standby`);
}

async function startPgpool(o: LabOptions, pg: PgUser, pcpPassword: string, step: Say): Promise<void> {
  const p = labPaths(o.dir);
  mkdirOwned(p.pgpool, pg, 0o755);
  mkdirOwned(join(p.pgpool, 'etc'), pg, 0o755);
  mkdirOwned(p.pgpoolRun, pg, 0o755);
  const template = readFileSync(o.hooksTemplate, 'utf8');
  // The lab's configuration is not at the default path: the hook lines name it, as config render-pgpool prints them.
  writeOwned(p.pgpoolConf, pgpoolConf(o, renderHookLines(template, p.bin, p.config)), pg, 0o644);
  // pcp.conf holds md5(password); computed here so the password never appears in a command line (pg_md5 takes argv).
  const md5 = createHash('md5').update(pcpPassword).digest('hex');
  writeOwned(p.pcpConf, `${LAB_PCP_USER}:${md5}\n`, pg, 0o600);
  writeOwned(p.poolHba, 'host all all 127.0.0.0/8 trust\n', pg, 0o644);
  writeOwned(p.poolPasswd, '', pg, 0o600);
  const log = openSync(p.pgpoolLog, 'a');
  chownSync(p.pgpoolLog, pg.uid, pg.gid);
  // -D discards pgpool_status: a lab restart must not inherit "down" marks (docs/lab.md, "pgpool_status remembers down nodes").
  const child = spawn(
    'setpriv',
    asPostgres(['/usr/sbin/pgpool', '-n', '-D', '-f', p.pgpoolConf, '-F', p.pcpConf, '-a', p.poolHba]).slice(1),
    { detached: true, stdio: ['ignore', log, log], env: serviceEnv(o, pg), cwd: '/' },
  );
  child.unref();
  closeSync(log);
  await waitFor('pgpool accepting pcp with every node up', 30_000, async () => {
    const r = await shell.run(
      ['/usr/sbin/pcp_node_info', '-h', pgpoolHost(o), '-p', String(LAB_PCP_PORT), '-U', LAB_PCP_USER, '-w', '-a'],
      { timeoutMs: 5000, env: { PCPPASSFILE: p.pcpPass, HOME: '/root' } },
    );
    const lines = r.stdout.trim().split('\n').filter(Boolean);
    return r.exitCode === 0 && lines.length === o.nodes && lines.every((l) => / (1|2) /.test(` ${l.split(/\s+/)[2]} `)) ? true : undefined;
  }, 200);
  step(`pgpool-II on ${pgpoolHost(o)}:${LAB_PGPOOL_PORT} (pcp ${LAB_PCP_PORT}), health checks every 1 s, hooks from pgpool/hooks.conf`);
}

/**
 * One `maas-ha-guard watch` per node, as postgres, detached, like a database host's maas-ha-guard.service: a
 * primary that sees a peer on a newer timeline demotes itself. The lab's PostgreSQL starts do not go through
 * systemd, so start-check (the ExecStartPre half of the guard) is not part of the lab.
 */
async function startGuards(o: LabOptions, pg: PgUser, step: Say): Promise<void> {
  const guards = labNodes(o).map((n) => labGuardProcess(o, pg, n));
  const from = guards.map((g) => spawnGuard(g, pg));
  for (const [i, g] of guards.entries()) await guardStarted(g, from[i] ?? 0);
  step(`a guard on every node (maas-ha-guard watch every ${LAB_GUARD_INTERVAL_MS} ms, logs in pgN/guard.log)`);
}

/** A lab node's guard process: its name in messages, its files, and how it is started (argv[0] runs the rest). */
export interface GuardProcess {
  name: string;
  pid: string;
  log: string;
  argv: string[];
  env: Record<string, string>;
}

/** `maas-ha-guard watch` of one node, as postgres: node by its path, not through the shebang (PATH need not reach it). */
export const guardWatchArgv = (bin: string, node: number, config: string) =>
  asPostgres([process.execPath, join(bin, 'maas-ha-guard'), 'watch', '--node', String(node), '--interval-ms', String(LAB_GUARD_INTERVAL_MS), '--config', config]);

/** Starts a guard unless it runs, detached; returns where its log ended before (its first line comes after). */
export function spawnGuard(g: GuardProcess, pg: PgUser): number {
  if (readPid(g.pid)) return 0;
  const from = existsSync(g.log) ? statSync(g.log).size : 0;
  const log = openSync(g.log, 'a');
  chownSync(g.log, pg.uid, pg.gid);
  const child = spawn(g.argv[0]!, g.argv.slice(1), { detached: true, stdio: ['ignore', log, log], env: g.env, cwd: '/' });
  child.unref();
  closeSync(log);
  if (child.pid === undefined) throw new OperationError(`could not start the guard of ${g.name}`);
  writeFileSync(g.pid, `${child.pid}\n`);
  return from;
}

/** Up means it has said so: its first line is logged once it has its configuration and knows its node. */
export async function guardStarted(g: GuardProcess, from: number): Promise<void> {
  await waitFor(`the guard of ${g.name} to start (see ${g.log})`, 15_000, async () => {
    const text = readFileSync(g.log).subarray(from).toString('utf8');
    if (!readPid(g.pid)) throw new Error(`exited: ${text.trim().split('\n').pop() ?? ''}`);
    return text.includes('guard watch started') ? true : undefined;
  }, 100);
}

/** The plain lab's guard of node `n`. */
function labGuardProcess(o: LabOptions, pg: PgUser, n: LabNode): GuardProcess {
  const p = labPaths(o.dir);
  return { name: n.name, ...guardFiles(n), argv: guardWatchArgv(p.bin, n.id, p.config), env: serviceEnv(o, pg) };
}

/**
 * Stops or (re)starts one node's guard, for scenarios that need a node to misbehave for a while with nothing
 * correcting it (a stale primary started by hand, say). `lab down` stops every guard anyway.
 */
export async function labGuard(o: LabOptions, id: number, action: 'stop' | 'start'): Promise<void> {
  const n = labNodes(o).find((x) => x.id === id);
  if (!n) throw new OperationError(`the lab has no node ${id}`);
  const g = guardFiles(n);
  if (action === 'start') {
    const pg = postgresUser();
    const guard = labGuardProcess(o, pg, n);
    await guardStarted(guard, spawnGuard(guard, pg));
    return;
  }
  await stopByPidFile(g.pid, { signal: 'SIGTERM', graceMs: 15_000 });
}

export async function labDown(o: LabOptions, say: Say, opts: { purge: boolean }): Promise<void> {
  const p = labPaths(o.dir);
  const stopByPid = async (pidFile: string, what: string, signal: NodeJS.Signals) => {
    if ((await stopByPidFile(pidFile, { signal, graceMs: 15_000, everyMs: 25 })) !== 'not-running') say(`stopped ${what}`);
  };
  await stopByPid(p.pgpoolPid, 'pgpool', 'SIGINT');
  // The guards before their nodes: a guard must not see its cluster going down node by node. Each group at once.
  await Promise.all(labNodes(o).map((n) => stopByPid(guardFiles(n).pid, `the guard of ${n.name}`, 'SIGTERM')));
  await Promise.all([
    // SIGQUIT = immediate shutdown: the lab's data is disposable and this is bounded.
    ...labNodes(o).map((n) => stopByPid(join(n.data, 'postmaster.pid'), `PostgreSQL ${n.name}`, 'SIGQUIT')),
    stopByPid(p.sshdPid, 'sshd', 'SIGTERM'),
  ]);
  const freed = await freeOrphanedSharedMemory();
  if (freed) say(`removed ${freed} shared memory segment(s) of killed pgpools`);
  if (opts.purge) {
    rmSync(o.dir, { recursive: true, force: true });
    say(`removed ${o.dir}`);
  }
}
