// `maas-ha lab vip up | status | down`: builds the VIP lab (see vip-layout.ts for what it is) and the operations
// the end-to-end tests and the benchmark perform on it, in an operator's words: stop a leader gracefully, crash
// one (SIGKILL of its pgpool and its link down), isolate one, bring one back as a reboot would. Runs as root;
// PostgreSQL and pgpool run as postgres, and pgpool's hooks reach root only through the lab's sudoers drop-in,
// rendered by the same function as production's. Processes are stopped through their pid files only, and only
// namespaces named mhv<net>-* are created or deleted.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createShell } from '../adapters/exec.ts';
import { killGroup, readPid, stopByPidFile } from '../adapters/pid-file.ts';
import { loadConfig } from '../config/load.ts';
import { writeChecked } from '../adapters/checked-copy.ts';
import { OperationError } from '../errors.ts';
import { checked, type RunResult } from '../model/ports.ts';
import { desiredSynchronousNames } from '../failover/sync.ts';
import { renderHookLines } from '../pgpool/conf.ts';
import { standbyLines, slotName } from '../recovery/standby-conf.ts';
import { recoveryWrappers } from '../recovery/wrappers.ts';
import { fenceRuleset } from '../vip/fence.ts';
import { renderSudoers } from '../vip/sudoers.ts';
import { remoteCampaign, type Campaign } from './campaign.ts';
import { freeOrphanedSharedMemory, guardStarted, guardWatchArgv, postgresUser, spawnGuard, waitFor } from './lab.ts';
import { PG_REPLICATION_SETTINGS } from './layout.ts';
import { labService } from './vip-standin.ts';
import type { SoaFinding } from '../maas/slave-dns.ts';
import {
  API_PORT,
  HOSTS,
  MASTER_RNDC_PORT,
  PCP_PORT,
  PG_HBA_VIP,
  PG_PORT,
  RCS,
  RNDC_KEY_NAME,
  SINK_PORT,
  WATCHDOG_HOSTS,
  addr,
  clusterConfigYaml,
  clusterPaths,
  clusterResolvConf,
  hostPaths,
  labPgpoolConf,
  labRcConfigYaml,
  maasZone,
  namedMasterConf,
  namedSlaveConf,
  ns,
  squidConf,
  sshdConfigFor,
  vethPort,
  vipAddr,
  vipPaths,
  type HostName,
  type LabService,
  type RcName,
  type VipLabOptions,
} from './vip-layout.ts';

const shell = createShell();
export type Say = (line: string) => void;

async function run(argv: string[], what: string, timeoutMs = 30_000): Promise<RunResult> {
  return checked(await shell.run(argv, { timeoutMs }), what);
}
const inNs = (o: VipLabOptions, h: HostName | 'sw', argv: string[]) => ['ip', 'netns', 'exec', ns(o, h), ...argv];
const asPostgres = (argv: string[]) => ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];

function owned(path: string, pg: { uid: number; gid: number }, mode: number, text?: string): void {
  if (text === undefined) mkdirSync(path, { recursive: true });
  else writeFileSync(path, text);
  chownSync(path, pg.uid, pg.gid);
  chmodSync(path, mode);
}

export function readVipLabOptions(dir: string): VipLabOptions | undefined {
  const f = vipPaths(dir).options;
  return existsSync(f) ? (JSON.parse(readFileSync(f, 'utf8')) as VipLabOptions) : undefined;
}

async function namespaces(): Promise<string[]> {
  const r = await shell.run(['ip', 'netns', 'list'], { timeoutMs: 5000 });
  return r.stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

export async function vipLabUp(o: VipLabOptions, say: Say): Promise<void> {
  if (process.getuid?.() !== 0) throw new OperationError('maas-ha lab vip up must run as root (namespaces, sshd, nftables)');
  if (!Number.isInteger(o.net) || o.net < 0 || o.net > 255) throw new OperationError(`--net must be 0..255, got ${o.net}`);
  for (const bin of ['/usr/sbin/pgpool', '/usr/sbin/named', '/usr/sbin/rndc', '/usr/sbin/squid', '/usr/sbin/nft', '/usr/bin/sudo', '/usr/sbin/visudo', '/usr/sbin/sshd', '/usr/bin/arping', '/usr/bin/ping', join(o.pgBinDir, 'initdb')]) {
    if (!existsSync(bin)) throw new OperationError(`${bin} is missing: run ./install.sh first`);
  }
  const t0 = Date.now();
  const step = (m: string) => say(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}`);
  await vipLabDown(o, () => {}, { purge: true });
  const pg = postgresUser();
  const p = vipPaths(o.dir);
  mkdirSync(o.dir, { recursive: true, mode: 0o755 });
  chmodSync(o.dir, 0o755);
  writeFileSync(p.options, `${JSON.stringify(o, null, 2)}\n`);
  rmSync(p.bin, { recursive: true, force: true });
  cpSync(o.hookBinDir, p.bin, { recursive: true, verbatimSymlinks: true });
  chmodSync(p.bin, 0o755);

  // ---- hosts on a private bridge; nothing in the root namespace
  for (const h of ['sw', ...HOSTS] as const) await run(['ip', 'netns', 'add', ns(o, h)], `ip netns add ${ns(o, h)}`);
  await run(['ip', '-n', ns(o, 'sw'), 'link', 'add', 'br0', 'type', 'bridge'], 'bridge');
  await run(['ip', '-n', ns(o, 'sw'), 'link', 'set', 'br0', 'up'], 'bridge up');
  for (const h of HOSTS) {
    await run(['ip', '-n', ns(o, 'sw'), 'link', 'add', vethPort(o, h), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(o, h)], `veth for ${h}`);
    await run(['ip', '-n', ns(o, 'sw'), 'link', 'set', vethPort(o, h), 'master', 'br0', 'up'], `bridge port ${h}`);
    await run(['ip', '-n', ns(o, h), 'addr', 'add', `${addr(o, h)}/24`, 'dev', 'eth0'], `address of ${h}`);
    await run(['ip', '-n', ns(o, h), 'link', 'set', 'eth0', 'up'], `eth0 of ${h}`);
    await run(['ip', '-n', ns(o, h), 'link', 'set', 'lo', 'up'], `lo of ${h}`);
  }
  step(`namespaces ${HOSTS.map((h) => ns(o, h)).join(', ')} on a private bridge (198.18.${o.net}.0/24)`);

  // ---- secrets and ssh (postgres's key, one host key, known_hosts written from it: no trust on first use)
  owned(p.secrets, pg, 0o700);
  mkdirSync(p.authorizedKeys, { recursive: true, mode: 0o755 });
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'maas-ha-vip-lab-host', '-f', p.hostKey], 'ssh-keygen host');
  await run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'maas-ha-vip-lab-postgres', '-f', p.sshKey], 'ssh-keygen postgres');
  chownSync(p.sshKey, pg.uid, pg.gid);
  chmodSync(p.sshKey, 0o600);
  writeFileSync(join(p.authorizedKeys, 'postgres'), readFileSync(`${p.sshKey}.pub`, 'utf8'), { mode: 0o644 });
  const [type, key] = readFileSync(`${p.hostKey}.pub`, 'utf8').trim().split(/\s+/);
  writeFileSync(p.knownHosts, RCS.map((rc) => `${addr(o, rc)} ${type} ${key}\n`).join(''), { mode: 0o644 });
  owned(p.rndcKey, pg, 0o600, `key "${RNDC_KEY_NAME}" { algorithm hmac-sha256; secret "${randomBytes(32).toString('base64')}"; };\n`);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

  // ---- per host: config, PostgreSQL, services, fence
  const watchdogLines = renderHookLines(readFileSync(o.watchdogTemplate, 'utf8'), p.bin);
  // pgpool/hooks.conf sits beside pgpool/watchdog.conf in a checkout and in an install alike.
  const hooksTemplate = readFileSync(join(dirname(o.watchdogTemplate), 'hooks.conf'), 'utf8');
  const pcpPassword = randomBytes(18).toString('base64url');
  const { createHash } = await import('node:crypto');
  for (const h of ['rc1', 'rc2', 'wit'] as const) {
    const hp = hostPaths(o.dir, h);
    mkdirSync(hp.root, { recursive: true, mode: 0o755 });
    owned(hp.etc, pg, 0o755);
    owned(hp.run, pg, 0o755);
    owned(hp.state, pg, 0o700);
    const hookLines = h === 'wit' ? '' : renderHookLines(hooksTemplate, p.bin, hp.config);
    owned(hp.pgpoolConf, pg, 0o644, labPgpoolConf(o, h, watchdogLines, hookLines));
    owned(hp.nodeId, pg, 0o644, `${WATCHDOG_HOSTS.indexOf(h)}\n`);
    owned(hp.pcpConf, pg, 0o600, `pcpadmin:${createHash('md5').update(pcpPassword).digest('hex')}\n`);
    owned(hp.pcpPass, pg, 0o600, `*:${PCP_PORT}:pcpadmin:${pcpPassword}\n`);
    owned(hp.poolHba, pg, 0o644, 'host all all 0.0.0.0/0 trust\n');
    owned(hp.poolPasswd, pg, 0o600, '');
  }
  for (const rc of RCS) {
    const hp = hostPaths(o.dir, rc);
    const configText = labRcConfigYaml(o, rc);
    owned(hp.config, pg, 0o644, configText);
    const config = loadConfig(hp.config);
    // The checked copy, as `maas-ha config check` writes it in production: the hooks start without the YAML parser.
    const why = writeChecked(hp.config, configText, config);
    if (why) throw new Error(`writing the checked copy of ${hp.config}: ${why}`);
    // Written by root, as `maas-ha vip fence-file --write` does in production: the drop-in allows `nft -f` of it only.
    writeFileSync(hp.fenceFile, fenceRuleset(config.vip!), { mode: 0o644 });
    mkdirSync(hp.broken, { recursive: true, mode: 0o755 });
    mkdirSync(join(hp.root, 'ssh'), { recursive: true, mode: 0o755 });
    writeFileSync(hp.sshdConfig, sshdConfigFor(o, rc));
    for (const s of ['maas-regiond', 'maas-proxy', 'bind9', 'dns-slave'] as const) mkdirSync(hp.svc(s), { recursive: true, mode: 0o755 });
    writeFileSync(join(hp.svc('bind9'), 'named.conf'), namedMasterConf(o, rc));
    writeFileSync(join(hp.svc('bind9'), 'maas.zone'), maasZone(o, rc, Math.floor(Date.now() / 1000)));
    writeFileSync(join(hp.svc('dns-slave'), 'named.conf'), namedSlaveConf(o, rc));
    // named drops CAP_DAC_OVERRIDE even as root: it reads root-owned copies of the key postgres's rndc uses.
    for (const s of ['bind9', 'dns-slave'] as const) writeFileSync(join(hp.svc(s), 'rndc.key'), readFileSync(p.rndcKey), { mode: 0o600 });
    writeFileSync(join(hp.svc('maas-proxy'), 'squid.conf'), squidConf(o, rc));
  }
  // The cluster controller stand-in (client namespace): its configuration, its resolver, and the identity MAAS
  // gives a rack controller when it registers (maas_url on the VIP, the shared secret, its id).
  const c = clusterPaths(o);
  mkdirSync(c.root, { recursive: true, mode: 0o755 });
  writeFileSync(c.config, clusterConfigYaml(o, labRcConfigYaml(o, 'rc1')), { mode: 0o644 });
  loadConfig(c.config);
  for (const [f, text, mode] of [
    ['etc/maas/rackd.conf', `maas_url: http://${vipAddr(o)}:${API_PORT}/MAAS\n`, 0o644],
    ['var/lib/maas/secret', `${randomBytes(16).toString('hex')}\n`, 0o600],
    ['var/lib/maas/maas_id', `${randomBytes(3).toString('hex')}\n`, 0o644],
  ] as const) {
    mkdirSync(dirname(join(c.root, f)), { recursive: true, mode: 0o755 });
    writeFileSync(join(c.root, f), text, { mode });
  }
  mkdirSync(c.netnsEtc, { recursive: true, mode: 0o755 });
  writeFileSync(c.resolvConf, clusterResolvConf(o), { mode: 0o644 });
  await installSudoers(o);
  step(`configs, sudoers drop-in ${p.sudoers} (visudo -cf ok), fence rulesets; the cluster controller's identity and resolver (${c.resolvConf})`);

  for (const rc of RCS) {
    const hp = hostPaths(o.dir, rc);
    await run(inNs(o, rc, ['/usr/sbin/sshd', '-t', '-f', hp.sshdConfig]), `sshd -t on ${rc}`);
    await run(inNs(o, rc, ['/usr/sbin/sshd', '-f', hp.sshdConfig, '-E', hp.sshdLog]), `sshd on ${rc}`);
  }
  await initPostgres(o, pg);
  await startGuards(o);
  step('PostgreSQL: rc1 primary, rc2 synchronous standby (slot, ANY 1), a guard on each; sshd on both region controllers');

  await Promise.all(
    RCS.map(async (rc) => {
      // Active-active: bind9 binds the VIP before its host holds it, as install.sh's sysctl file allows on a host.
      if (o.mode === 'active-active') await run(inNs(o, rc, ['sysctl', '-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']), `ip_nonlocal_bind on ${rc}`);
      for (const s of ['maas-regiond', 'maas-proxy', 'bind9', 'dns-slave'] as const) await inNsService(o, rc, s, 'start');
      await bootFence(o, rc);
    }),
  );
  await startSink(o);
  step(`stand-in services on both region controllers (regiond, squid, bind9 master + secondary), ${o.mode === 'active-active' ? 'both serving (active-active)' : 'both fenced as at boot'}`);

  // rc1 first, the others once rc1's watchdog is the established leader: they can only join it. Started all at once, the
  // member that left its loading wait first won however high rc1's wd_priority (rc2 in 2 of 7 starts here, by a
  // millisecond); started once rc1 had only left that wait, rc2 still won on a loaded machine (CI, 2026-12-02),
  // rc1 not being leader yet when rc2 left its own (docs/lab.md, "Watchdog timings are mostly fixed").
  const rc1Log = hostPaths(o.dir, 'rc1').pgpoolLog;
  const from = existsSync(rc1Log) ? statSync(rc1Log).size : 0;
  await startPgpool(o, 'rc1');
  // Not the [LEADER] state change: it then announces itself for 5 s, and only "I am the cluster leader node" ends that.
  await waitFor("rc1's watchdog to become the leader", 60_000, async () => readFileSync(rc1Log).subarray(from).includes('I am the cluster leader node') || undefined, 100);
  await Promise.all(WATCHDOG_HOSTS.filter((h) => h !== 'rc1').map((h) => startPgpool(o, h)));
  const holder = await waitForHolder(o, 60_000, 'rc1').catch((err: unknown) => {
    // Whose election it was, from each member's own log: what a failure here needs to be understood.
    const states = WATCHDOG_HOSTS.map((h) => {
      const f = hostPaths(o.dir, h).pgpoolLog;
      const lines = existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter((l) => /watchdog node state changed|escalation|quorum/i.test(l)) : [];
      return `${h}: ${lines.slice(-4).join(' | ') || 'no watchdog state lines'}`;
    });
    throw new OperationError(`${(err as Error).message}\n${states.join('\n')}`);
  });
  await waitSettled(o, holder);
  step(`pgpool watchdog on rc1, rc2, witness: ${holder} holds VIP ${vipAddr(o)}`);
  await waitForClientChecks(o, holder, 60_000);
  // The checks can pass while the holder's hooks still run (the escalation restarts bind9, the arping hook
  // refreshes the secondaries): the lab is up once both hooks have reported, and the checks pass after that.
  await waitFor(`the escalation and arping hooks of ${holder} to finish`, 60_000, async () => {
    const n = notifications(o);
    return n.some((x) => x.hook === 'escalation') && n.some((x) => x.hook === 'arping') ? true : undefined;
  }, 200);
  await waitForClientChecks(o, holder, 60_000);
  await run(inNs(o, 'cl', [join(p.bin, 'maas-ha'), 'lab', 'vip', 'rackd', 'start', '--dir', o.dir]), 'the rack stand-in on the client');
  step(`lab up: the client reaches the region API, DNS and proxy through the VIP (${holder}); its rack stand-in runs`);
}

async function installSudoers(o: VipLabOptions): Promise<void> {
  const p = vipPaths(o.dir);
  const text = RCS.map((rc) => {
    const c = loadConfig(hostPaths(o.dir, rc).config);
    return renderSudoers(c.vip!, 'postgres', c.source);
  }).join('\n');
  const tmp = `${o.dir}/sudoers.tmp`;
  writeFileSync(tmp, text, { mode: 0o440 });
  await run(['/usr/sbin/visudo', '-cf', tmp], 'visudo -cf (lab sudoers)');
  writeFileSync(p.sudoers, text, { mode: 0o440 });
  chmodSync(p.sudoers, 0o440);
  rmSync(tmp, { force: true });
}

async function initPostgres(o: VipLabOptions, pg: { uid: number; gid: number }): Promise<void> {
  for (const rc of RCS) {
    const hp = hostPaths(o.dir, rc);
    owned(join(hp.root, 'pg'), pg, 0o755);
    owned(hp.pgRun, pg, 0o755);
    owned(hp.pgData, pg, 0o700);
  }
  const r1 = hostPaths(o.dir, 'rc1');
  await run(asPostgres([join(o.pgBinDir, 'initdb'), '-D', r1.pgData, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8']), 'initdb', 120_000);
  const conf = (rc: RcName) =>
    [
      `listen_addresses = '${addr(o, rc)}'`,
      `port = ${PG_PORT}`,
      `unix_socket_directories = '${hostPaths(o.dir, rc).pgRun}'`,
      `cluster_name = '${rc}'`,
      'max_connections = 40',
      'shared_buffers = 16MB',
      ...PG_REPLICATION_SETTINGS,
      "log_line_prefix = '%m [%p] %q%a '",
      '',
    ].join('\n');
  writeFileSync(join(r1.pgData, 'pg_hba.conf'), PG_HBA_VIP(o));
  // Owned by postgres like every file of a data directory: pg_rewind rewrites them as postgres.
  owned(join(r1.pgData, 'node.conf'), pg, 0o644, conf('rc1'));
  writeFileSync(join(r1.pgData, 'postgresql.conf'), `${readFileSync(join(r1.pgData, 'postgresql.conf'), 'utf8')}\ninclude_if_exists = 'node.conf'\n`);
  const start = (rc: RcName) => {
    const hp = hostPaths(o.dir, rc);
    return run(inNs(o, rc, asPostgres([join(o.pgBinDir, 'pg_ctl'), '-D', hp.pgData, '-l', hp.pgLog, '-w', '-t', '60', 'start'])), `pg_ctl start on ${rc}`, 70_000);
  };
  // pgpool's online recovery runs these from the primary's data directory; pg_basebackup and pg_rewind carry them
  // to every node. They name rc1's configuration: every host of the lab sees the same files (a lab shortcut; on
  // real hosts each database host's wrappers name its own, docs/lab.md, "The VIP lab").
  const p = vipPaths(o.dir);
  for (const w of recoveryWrappers({ configPath: r1.config, binDir: p.bin, nodePath: process.execPath })) owned(join(r1.pgData, w.name), pg, 0o700, w.text);
  await start('rc1');
  const psql = (rc: RcName, db: string, sql: string) =>
    run(inNs(o, rc, asPostgres([join(o.pgBinDir, 'psql'), '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-h', hostPaths(o.dir, rc).pgRun, '-p', String(PG_PORT), '-d', db, '-c', sql])), `psql on ${rc}`);
  await psql('rc1', 'template1', 'CREATE EXTENSION IF NOT EXISTS pgpool_recovery');
  await psql('rc1', 'postgres', `SELECT pg_create_physical_replication_slot('${slotName(1)}')`);
  const r2 = hostPaths(o.dir, 'rc2');
  await run(
    inNs(o, 'rc2', asPostgres([join(o.pgBinDir, 'pg_basebackup'), '-h', addr(o, 'rc1'), '-p', String(PG_PORT), '-U', 'postgres', '-D', r2.pgData, '-X', 'stream', '-c', 'fast', '-S', slotName(1)])),
    'pg_basebackup rc2',
    120_000,
  );
  // The standby settings exactly as maas-ha's own rebuilds write them (lib/recovery/standby-conf.ts).
  const config = loadConfig(r1.config);
  const auto = ['# written by maas-ha lab vip up: this node follows rc1', ...standbyLines({ config }, config.nodes[0]!, config.nodes[1]!), ''].join('\n');
  owned(join(r2.pgData, 'postgresql.auto.conf'), pg, 0o600, auto);
  owned(join(r2.pgData, 'standby.signal'), pg, 0o600, '');
  owned(join(r2.pgData, 'node.conf'), pg, 0o644, conf('rc2'));
  await start('rc2');
  // The same setting maas-ha's hooks manage later; set once the standby streams, or every commit would wait.
  await waitFor('rc2 streaming from rc1', 30_000, async () => ((await psql('rc1', 'postgres', 'SELECT count(*) FROM pg_stat_replication')).stdout.trim() === '1' ? true : undefined), 200);
  await psql('rc1', 'postgres', `ALTER SYSTEM SET synchronous_standby_names = '${desiredSynchronousNames(config, 0)}'`);
  await psql('rc1', 'postgres', 'SELECT pg_reload_conf()');
}

/**
 * One `maas-ha-guard watch` per region controller's PostgreSQL, as postgres inside its namespace, detached: what
 * maas-ha-guard.service does on a database host (its ExecStartPre half, start-check, needs systemd: not here).
 */
async function startGuards(o: VipLabOptions): Promise<void> {
  for (const rc of RCS) await startGuard(o, rc);
}

/** The guard of rc's PostgreSQL (the lab's own guard start, run inside rc's namespace). */
export async function startGuard(o: VipLabOptions, rc: RcName): Promise<void> {
  const hp = hostPaths(o.dir, rc);
  const guard = { name: rc, pid: hp.guardPid, log: hp.guardLog, argv: inNs(o, rc, guardWatchArgv(vipPaths(o.dir).bin, RCS.indexOf(rc), hp.config)), env: pgpoolEnv(o, rc) };
  await guardStarted(guard, spawnGuard(guard, postgresUser()));
}

/** Runs a lab service action in the host's namespace, the way the hooks do (but as root directly). */
async function inNsService(o: VipLabOptions, rc: RcName, s: LabService, action: string): Promise<void> {
  await run(inNs(o, rc, [join(vipPaths(o.dir).bin, 'maas-ha'), 'lab', 'vip', 'service', action, s, '--dir', o.dir, '--host', rc]), `${s} ${action} on ${rc}`, 30_000);
}

/** What a boot unit would do before pgpool starts (ExecStartPre): a region controller is fenced until it leads. */
export async function bootFence(o: VipLabOptions, rc: RcName): Promise<void> {
  if (o.mode === 'active-active') return; // every region serves: nothing to fence
  await run(inNs(o, rc, ['/usr/sbin/nft', '-f', hostPaths(o.dir, rc).fenceFile]), `fence on ${rc}`);
}

async function startSink(o: VipLabOptions): Promise<void> {
  const p = vipPaths(o.dir);
  mkdirSync(join(o.dir, 'cl'), { recursive: true, mode: 0o755 });
  writeFileSync(p.sink, '');
  const fd = openSync(p.sinkLog, 'a');
  const child = spawn('ip', inNs(o, 'cl', [join(p.bin, 'maas-ha'), 'lab', 'vip', 'serve-sink', '--port', String(SINK_PORT), '--out', p.sink]).slice(1), {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  writeFileSync(p.sinkPid, `${child.pid}\n`);
  child.unref();
}

export function pgpoolEnv(o: VipLabOptions, h: HostName): Record<string, string> {
  return { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/var/lib/postgresql', USER: 'postgres', LOGNAME: 'postgres', LANG: 'C.UTF-8', MAAS_HA_CONFIG: hostPaths(o.dir, h).config };
}

export async function startPgpool(o: VipLabOptions, h: HostName): Promise<void> {
  const hp = hostPaths(o.dir, h);
  const pg = postgresUser();
  const log = openSync(hp.pgpoolLog, 'a');
  chownSync(hp.pgpoolLog, pg.uid, pg.gid);
  const child = spawn('ip', inNs(o, h, asPostgres(['/usr/sbin/pgpool', '-n', '-D', '-f', hp.pgpoolConf, '-F', hp.pcpConf, '-a', hp.poolHba])).slice(1), {
    detached: true,
    stdio: ['ignore', log, log],
    env: pgpoolEnv(o, h),
    cwd: '/',
  });
  child.unref();
  closeSync(log);
  await waitFor(`pgpool on ${h} to write its pid file`, 15_000, async () => readPid(hp.pgpoolPid), 100);
}

/**
 * Every watchdog member agrees that `leader` leads, has quorum, and hears every other member's heartbeat ("Alive
 * Remote Nodes"): only then is the next fault a clean one. A member that joined a second ago has not heard its
 * peers' heartbeats yet, and a leader crash at that moment sends pgpool's election down a path (the newcomer
 * stands at once, the others still see the old leader) that ends with the witness leading.
 */
export async function waitSettled(o: VipLabOptions, leader: RcName, timeoutMs = 40_000): Promise<void> {
  await waitFor(`the watchdog cluster settled with ${leader} leading`, timeoutMs, async () => {
    for (const h of WATCHDOG_HOSTS) {
      const r = await shell.run(inNs(o, h, ['/usr/sbin/pcp_watchdog_info', '-h', addr(o, h), '-p', String(PCP_PORT), '-U', 'pcpadmin', '-w', '-v']), {
        timeoutMs: 5000,
        env: { PCPPASSFILE: hostPaths(o.dir, h).pcpPass, HOME: '/root' },
      });
      const v = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(r.stdout)?.[1]?.trim();
      if (r.exitCode !== 0 || v('Alive Remote Nodes') !== '2' || v('Quorum state') !== 'QUORUM EXIST' || v('Leader Host Name') !== addr(o, leader)) return undefined;
    }
    return true;
  }, 250);
}

/** Which region controller has the VIP on its eth0 (both, during a duplicate; none, during a move). */
export async function vipHolders(o: VipLabOptions): Promise<RcName[]> {
  const out: RcName[] = [];
  for (const rc of RCS) {
    const r = await shell.run(['ip', '-n', ns(o, rc), '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { timeoutMs: 5000 });
    if (r.stdout.includes(` ${vipAddr(o)}/`)) out.push(rc);
  }
  return out;
}

export async function waitForHolder(o: VipLabOptions, timeoutMs: number, want?: RcName): Promise<RcName> {
  return waitFor(`the VIP on ${want ?? 'exactly one region controller'}`, timeoutMs, async () => {
    const hs = await vipHolders(o);
    return hs.length === 1 && (!want || hs[0] === want) ? hs[0] : undefined;
  }, 100);
}

export interface ClientCheck {
  check: string;
  ok: boolean;
  detail: string;
}

/** `maas-ha vip check --json` from the client namespace: the checks through the VIP, and each secondary's SOA. */
export async function clientVipCheck(o: VipLabOptions, timeoutMs = 2000): Promise<{ checks: ClientCheck[]; secondaries: SoaFinding[] }> {
  const r = await shell.run(
    inNs(o, 'cl', [join(vipPaths(o.dir).bin, 'maas-ha'), 'vip', 'check', '--json', '--timeout-ms', String(timeoutMs), '--config', hostPaths(o.dir, 'rc1').config]),
    { timeoutMs: timeoutMs + 10_000 },
  );
  try {
    const j = JSON.parse(r.stdout) as { checks: ClientCheck[]; secondaries?: SoaFinding[] };
    return { checks: j.checks, secondaries: j.secondaries ?? [] };
  } catch {
    throw new OperationError(`maas-ha vip check from the client: ${r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`}`);
  }
}

export async function clientChecks(o: VipLabOptions, timeoutMs = 2000): Promise<ClientCheck[]> {
  return (await clientVipCheck(o, timeoutMs)).checks;
}

// ---- the cluster controller stand-in (client namespace)

/** What the cluster controller's resolver makes of a name (glibc, /etc/resolv.conf listing both secondaries). */
export async function clusterResolve(o: VipLabOptions, name: string): Promise<string[]> {
  const r = await shell.run(inNs(o, 'cl', ['getent', 'ahostsv4', name]), { timeoutMs: 10_000 });
  return [...new Set(r.stdout.split('\n').map((l) => l.split(/\s+/)[0]).filter((a): a is string => !!a))];
}

/** One secondary's own answer (no recursion, one try of a second), asked from the client namespace. */
export async function askSecondary(o: VipLabOptions, rc: RcName, name: string, type: 'A' | 'TXT'): Promise<string[]> {
  const r = await shell.run(inNs(o, 'cl', ['dig', '+short', '+norecurse', '+time=1', '+tries=1', `@${addr(o, rc)}`, name, type]), { timeoutMs: 5000 });
  return r.exitCode === 0 ? r.stdout.split('\n').map((l) => l.trim().replace(/^"(.*)"$/, '$1')).filter(Boolean) : [];
}

/**
 * A record added to the MAAS zone on `rc`'s primary (the bind9 stand-in), as MAAS does when a machine gets an
 * address: the zone file with the record and the serial one higher, then `rndc reload`; the primary's NOTIFY
 * then brings it to the secondaries.
 */
export async function addZoneRecord(o: VipLabOptions, rc: RcName, name: string, address: string): Promise<number> {
  const d = hostPaths(o.dir, rc).svc('bind9');
  const file = join(d, 'maas.zone');
  const text = readFileSync(file, 'utf8');
  const m = /SOA \S+ \S+ \( (\d+) /.exec(text);
  if (!m) throw new OperationError(`${file}: no SOA serial`);
  const serial = Number(m[1]) + 1;
  writeFileSync(file, `${text.replace(m[0], m[0].replace(m[1]!, String(serial)))}${name} IN A ${address}\n`);
  await run(inNs(o, rc, ['/usr/sbin/rndc', '-s', '127.0.0.1', '-p', String(MASTER_RNDC_PORT), '-k', join(d, 'rndc.key'), 'reload', 'maas']), `rndc reload maas on ${rc}`);
  return serial;
}

/** Until every check passes from the client and the API says `holder` served it. */
export async function waitForClientChecks(o: VipLabOptions, holder: RcName, timeoutMs: number): Promise<ClientCheck[]> {
  let last: ClientCheck[] = [];
  try {
    return await waitFor(`API, DNS and proxy through the VIP, served by ${holder}`, timeoutMs, async () => {
      last = await clientChecks(o);
      return last.length === 3 && last.every((c) => c.ok) && last.some((c) => c.check === 'api' && c.detail.includes(`on ${holder}`)) ? last : undefined;
    }, 200);
  } catch (err) {
    throw new OperationError(`${(err as Error).message}; last: ${JSON.stringify(last)}`);
  }
}

// ---- operations (what the tests do to the hosts)

/** SIGINT: pgpool's fast shutdown, which runs the de-escalation when this node holds the VIP. */
export async function stopPgpool(o: VipLabOptions, h: HostName): Promise<void> {
  const file = hostPaths(o.dir, h).pgpoolPid;
  await stopByPidFile(file, { signal: 'SIGINT', graceMs: 30_000, group: true });
}

/**
 * A host crash: SIGKILL of pgpool's whole process group (no de-escalation runs), of the guard and of the
 * PostgreSQL postmaster, and the link down. `reboot` brings the host back; its PostgreSQL stays down until
 * `maas-ha recover` starts (or rebuilds) it, as with autostart off.
 */
export async function crash(o: VipLabOptions, h: RcName): Promise<void> {
  const hp = hostPaths(o.dir, h);
  for (const file of [hp.pgpoolPid, hp.guardPid]) {
    const pid = readPid(file);
    if (pid) killGroup(pid);
  }
  killPostgres(o, h);
  await setLink(o, h, 'down');
}

/** kill -9 of a region controller's postmaster (its backends notice and exit): the database crashes, nothing else. */
export function killPostgres(o: VipLabOptions, h: RcName): void {
  const pid = readPid(join(hostPaths(o.dir, h).pgData, 'postmaster.pid'));
  if (pid) process.kill(pid, 'SIGKILL');
}

/** SIGKILL of a pgpool's process group: the watchdog member vanishes without a de-escalation. */
export function killPgpool(o: VipLabOptions, h: HostName): void {
  const pid = readPid(hostPaths(o.dir, h).pgpoolPid);
  if (pid) killGroup(pid);
}

export const setLink = (o: VipLabOptions, h: HostName, state: 'up' | 'down') => run(['ip', '-n', ns(o, h), 'link', 'set', 'eth0', state], `link ${state} on ${h}`);

/** Back from a crash as a reboot would be: link up, no stale VIP, fenced before pgpool starts, the guard running. */
export async function reboot(o: VipLabOptions, h: RcName): Promise<void> {
  const pid = readPid(hostPaths(o.dir, h).pgpoolPid);
  if (pid) killGroup(pid);
  // A reboot clears System V shared memory; the crash left the killed pgpool's segment behind.
  await freeOrphanedSharedMemory();
  await shell.run(['ip', '-n', ns(o, h), 'addr', 'del', `${vipAddr(o)}/24`, 'dev', 'eth0'], { timeoutMs: 5000 });
  await setLink(o, h, 'up');
  await bootFence(o, h);
  await startGuard(o, h);
  await startPgpool(o, h);
}

/** `maas-ha ARGS --config <h's configuration>` as root inside h's namespace, as an operator on that host runs it. */
export function maasHaOn(o: VipLabOptions, h: RcName, args: string[], timeoutMs = 150_000): Promise<RunResult> {
  return shell.run(inNs(o, h, [join(vipPaths(o.dir).bin, 'maas-ha'), ...args, '--config', hostPaths(o.dir, h).config]), { timeoutMs });
}

/** The fault campaign's writer (through the VIP) and probe (every node), run inside the client namespace. */
export function startVipCampaign(o: VipLabOptions, maxMs = 240_000): Promise<Campaign> {
  return remoteCampaign(inNs(o, 'cl', [join(vipPaths(o.dir).bin, 'maas-ha'), 'lab', 'vip', 'campaign', '--dir', o.dir, '--max-ms', String(maxMs)]));
}

/** Whether `user` in rc's namespace can open a TCP connection to rc1's PostgreSQL (the fence test). */
export async function canReachPostgres(o: VipLabOptions, rc: RcName, user: string): Promise<boolean> {
  const r = await shell.run(
    inNs(o, rc, ['setpriv', `--reuid=${user}`, `--regid=${user === 'postgres' ? 'postgres' : 'nogroup'}`, '--clear-groups', join(o.pgBinDir, 'pg_isready'), '-h', addr(o, 'rc1'), '-p', String(PG_PORT), '-t', '3']),
    { timeoutMs: 8000 },
  );
  return r.exitCode === 0;
}

export async function fenced(o: VipLabOptions, rc: RcName): Promise<boolean> {
  const r = await shell.run(inNs(o, rc, ['/usr/sbin/nft', 'list', 'table', 'inet', 'maas_ha']), { timeoutMs: 5000 });
  return r.exitCode === 0;
}

/** Makes a stand-in service's next restart fail (or heals it). */
export function breakService(o: VipLabOptions, rc: RcName, s: LabService, broken: boolean): void {
  const marker = join(hostPaths(o.dir, rc).broken, s);
  if (broken) writeFileSync(marker, 'broken on purpose by a test\n');
  else rmSync(marker, { force: true });
}

export function notifications(o: VipLabOptions): Record<string, unknown>[] {
  const f = vipPaths(o.dir).sink;
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** What `maas-ha lab vip status` reports: who holds the VIP, and each host's pgpool and fence. */
export interface VipLabStatus {
  vip: string;
  mode: NonNullable<VipLabOptions['mode']>;
  holders: string[];
  hosts: { host: 'rc1' | 'rc2' | 'wit'; address: string; pgpool_pid: number | null; fenced: boolean | null }[];
}

export async function vipLabStatus(o: VipLabOptions): Promise<VipLabStatus> {
  const hosts: VipLabStatus['hosts'] = [];
  for (const h of ['rc1', 'rc2', 'wit'] as const) {
    hosts.push({ host: h, address: addr(o, h), pgpool_pid: readPid(hostPaths(o.dir, h).pgpoolPid) ?? null, fenced: h === 'wit' ? null : await fenced(o, h) });
  }
  return { vip: vipAddr(o), mode: o.mode ?? 'active-passive', holders: await vipHolders(o), hosts };
}

export function describeVipLabStatus(s: VipLabStatus): string {
  return [
    `VIP ${s.vip} (${s.mode}) on: ${s.holders.join(', ') || 'nobody'}`,
    ...s.hosts.map((h) => `  ${h.host} ${h.address}: pgpool ${h.pgpool_pid ? `running (pid ${h.pgpool_pid})` : 'stopped'}${h.fenced === null ? '' : h.fenced ? ', fenced' : ', not fenced'}`),
  ].join('\n');
}

export async function vipLabDown(o: VipLabOptions, say: Say, opts: { purge: boolean }): Promise<void> {
  const stopPid = async (file: string, what: string, signal: NodeJS.Signals) => {
    if ((await stopByPidFile(file, { signal, graceMs: 10_000, group: true })) !== 'not-running') say(`stopped ${what}`);
  };
  for (const h of ['wit', 'rc2', 'rc1'] as const) {
    const pid = readPid(hostPaths(o.dir, h).pgpoolPid);
    if (pid) killGroup(pid); // no de-escalation needed: the namespaces go away
  }
  // The guards before their nodes: a guard must not see its cluster going down node by node.
  await Promise.all(RCS.map((rc) => stopPid(hostPaths(o.dir, rc).guardPid, `the guard of ${rc}`, 'SIGTERM')));
  // Then everything else at once: each stand-in takes one to three seconds to stop (squid's and named's own
  // shutdown), and one after another that was 20 s of every VIP test file's end.
  await Promise.all([
    ...RCS.flatMap((rc) => {
      const hp = hostPaths(o.dir, rc);
      return [
        ...(['maas-regiond', 'maas-proxy', 'bind9', 'dns-slave'] as const).map((s) => stopPid(join(hp.svc(s), 'service.pid'), `${s} on ${rc}`, 'SIGTERM')),
        stopPid(join(hp.pgData, 'postmaster.pid'), `PostgreSQL on ${rc}`, 'SIGQUIT'),
        stopPid(hp.sshdPid, `sshd on ${rc}`, 'SIGTERM'),
      ];
    }),
    stopPid(vipPaths(o.dir).sinkPid, 'webhook sink', 'SIGTERM'),
    stopPid(clusterPaths(o).rackdPid, 'the rack stand-in', 'SIGTERM'),
  ]);
  rmSync(clusterPaths(o).netnsEtc, { recursive: true, force: true });
  const mine = new Set(['sw', ...HOSTS].map((h) => ns(o, h as HostName | 'sw')));
  for (const n of await namespaces()) if (mine.has(n)) await shell.run(['ip', 'netns', 'del', n], { timeoutMs: 10_000 });
  rmSync(vipPaths(o.dir).sudoers, { force: true });
  // The pgpools above were killed, not stopped: their shared memory stays until removed.
  const freed = await freeOrphanedSharedMemory();
  if (freed) say(`removed ${freed} shared memory segment(s) of killed pgpools`);
  if (opts.purge) rmSync(o.dir, { recursive: true, force: true });
}
