// `maas-ha preflight`: before trusting a failover to maas-ha, check what pgpool and the cluster really do. Every
// check here is one somebody got wrong for real: pgpool ignores unknown or renamed settings silently
// (follow_master_command in 4.2+, delegate_ip in 4.3), Debian ships health checks off, `log_min_messages = log`
// hides every WARNING and ERROR, pgpool compares backend_hostname with the standbys' primary_conninfo as strings,
// pg_rewind needs wal_log_hints or checksums, and online recovery needs two executables in every data directory.
// checkPgpoolConf and checkNodeFacts are pure (table-tested); gatherPreflight does the bounded I/O.

import { DEFAULT_CONFIG_PATH } from './config/path.ts';
import type { Config, NodeConfig } from './config/types.ts';
import { messageOf } from './errors.ts';
import type { Deps } from './model/ports.ts';
import { isWritable, judgePrimaries, observeAll, type NodeObservation } from './observe.ts';
import { parsePgpoolConfLine, placeholderValueHazard, renderHookLines } from './pgpool/conf.ts';
import { isAttached } from './pgpool/pcp-output.ts';
import { RECOVERY_WRAPPERS } from './recovery/wrappers.ts';
import { shScript } from './pgctl.ts';
import { compareSoa, observeSoa, type SoaFinding } from './maas/slave-dns.ts';

export type Level = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** What was looked at: `pgpool.conf`, `node 1`, `pcp`, `ssh node 2`. */
  area: string;
  level: Level;
  what: string;
  /** What to do about it (warn and fail). */
  fix?: string;
}

const ok = (area: string, what: string): Finding => ({ area, level: 'ok', what });
const warn = (area: string, what: string, fix: string): Finding => ({ area, level: 'warn', what, fix });
const fail = (area: string, what: string, fix: string): Finding => ({ area, level: 'fail', what, fix });

/** pgpool.conf as pgpool reads it: the last occurrence of a key wins; a syntax error is a finding. */
export function readPgpoolConf(text: string, source: string): { settings: Map<string, string>; findings: Finding[] } {
  const settings = new Map<string, string>();
  const findings: Finding[] = [];
  text.split('\n').forEach((line, i) => {
    try {
      const e = parsePgpoolConfLine(line, `${source}:${i + 1}`);
      if (e) settings.set(e.key, e.value);
    } catch (err) {
      findings.push(fail('pgpool.conf', `line ${i + 1} is not valid pgpool.conf: ${messageOf(err)}`, 'pgpool refuses to start with it: fix the line'));
    }
  });
  return { settings, findings };
}

const HOOK_SETTINGS = ['failover_command', 'follow_primary_command', 'failback_command'] as const;

/** Pure: pgpool.conf against maas-ha's configuration and the hook lines of pgpool/hooks.conf (`template`). */
export function checkPgpoolConf(settings: Map<string, string>, config: Config, template: string, version?: [number, number, number]): Finding[] {
  const area = 'pgpool.conf';
  const out: Finding[] = [];
  const get = (k: string) => settings.get(k);
  const num = (k: string) => (get(k) === undefined ? undefined : Number.parseInt(get(k)!, 10));

  // The hook lines: exactly the ones pgpool/hooks.conf renders for the directory they point at.
  const failover = get('failover_command') ?? '';
  const binDir = /^(\/\S*)\/maas-ha-failover /.exec(failover)?.[1];
  // The configuration pgpool's hooks read: the line's --config, else the default (pgpool's environment rarely
  // carries MAAS_HA_CONFIG). It must be the one this preflight checks.
  const hookConfig = /^\/\S*\/maas-ha-failover --config (\S+) /.exec(failover)?.[1];
  const hookReads = hookConfig ?? DEFAULT_CONFIG_PATH;
  if (binDir && hookReads !== config.source) {
    out.push(fail(area, `pgpool's hooks read ${hookReads}${hookConfig ? ' (--config in the hook lines)' : ' (the default: the lines carry no --config)'}, but this preflight checked ${config.source}`, `maas-ha config render-pgpool --config ${config.source} prints the lines with the right path`));
  }
  let expected = new Map<string, string>();
  if (binDir) {
    try {
      expected = new Map(
        renderHookLines(template, binDir, hookConfig)
          .split('\n')
          .map((l) => parsePgpoolConfLine(l))
          .filter((e): e is NonNullable<typeof e> => e !== undefined)
          .map((e) => [e.key, e.value]),
      );
    } catch (err) {
      out.push(fail(area, `failover_command names a directory maas-ha cannot wire: ${messageOf(err)}`, 'install maas-ha under a plain path (install.sh does)'));
    }
  } else {
    out.push(fail(area, 'failover_command does not run maas-ha-failover', 'append the lines of `maas-ha config render-pgpool --bindir DIR` and `pgpool reload`'));
  }
  const renamedFollow = get('follow_master_command') !== undefined && !get('follow_primary_command');
  for (const key of HOOK_SETTINGS) {
    const want = expected.get(key);
    // The old name in place of follow_primary_command gets its own, more useful, finding below.
    if (!want || (key === 'follow_primary_command' && renamedFollow)) continue;
    if (get(key) === want) out.push(ok(area, `${key} is the line of pgpool/hooks.conf`));
    else if (get(key) === undefined || get(key) === '') out.push(fail(area, `${key} is not set`, `set it to the line \`maas-ha config render-pgpool\` prints`));
    else out.push(fail(area, `${key} differs from pgpool/hooks.conf (an unquoted or missing placeholder shifts or loses values)`, `replace it with the line \`maas-ha config render-pgpool\` prints`));
  }
  if (renamedFollow) {
    out.push(fail(area, 'follow_master_command is set but follow_primary_command is not: pgpool 4.2+ ignores the old name silently', 'rename it to follow_primary_command'));
  }
  const recovery = get('recovery_1st_stage_command');
  if (recovery === 'recovery_1st_stage') out.push(ok(area, 'recovery_1st_stage_command runs the recovery_1st_stage wrapper'));
  else if (recovery?.startsWith('/')) out.push(fail(area, `recovery_1st_stage_command is an absolute path: pgpool runs "$PGDATA/${recovery}" (pgpool issue #117)`, "set recovery_1st_stage_command = 'recovery_1st_stage'"));
  else out.push(warn(area, `recovery_1st_stage_command is ${recovery ? `"${recovery}"` : 'not set'}: pcp_recovery_node will not use maas-ha`, "set recovery_1st_stage_command = 'recovery_1st_stage'"));

  // Detection: without health checks, only a client's failed connection notices a dead primary.
  const hc = num('health_check_period');
  if (!hc) out.push(fail(area, 'health_check_period is 0 or unset (Debian\'s default): a dead primary with no client traffic is never noticed', 'health_check_period = 1 to 5, with health_check_user set'));
  else out.push(ok(area, `health checks every ${hc} s`));
  // pgpool's replication check (the sr_check worker) takes the follow-primary lock for each round and queries every
  // backend with no read timeout; the primary search after a failover waits for that lock. A primary cut off by the
  // network in the middle of a round therefore stalls the search, and every write, until the partition heals or TCP
  // gives up (docs/pgpool-hooks.md, "The replication check and the primary search"). maas-ha reads replication
  // from PostgreSQL itself and needs none of what the check gives.
  const sr = num('sr_check_period');
  if (sr) {
    out.push(
      warn(
        area,
        `sr_check_period is ${sr}: pgpool's replication check holds pgpool's follow-primary lock while it waits on a backend with no timeout, so a primary cut off by the network in the middle of a check makes pgpool's primary search wait until the partition heals (writes fail all that time)`,
        'sr_check_period = 0 (maas-ha status reads replication from PostgreSQL; keep load_balance_mode = off, as delay_threshold needs the check)',
      ),
    );
  }
  if (get('search_primary_node_timeout') === '0') out.push(warn(area, 'search_primary_node_timeout = 0 waits for a primary forever, blocking pgpool', `keep it above the failover budget (${config.budgets_ms.failover / 1000} s), e.g. 30`));
  const level = get('log_min_messages')?.toLowerCase();
  if (level === 'log' || level === 'error' || level === 'fatal' || level === 'panic') {
    out.push(warn(area, `log_min_messages = ${level} hides pgpool's WARNING lines (a failed escalation command is only a WARNING)${level === 'log' ? '; for the server log LOG ranks above ERROR, so ERRORs are hidden too' : ''}`, "log_min_messages = 'warning'"));
  }
  const mode = get('backend_clustering_mode');
  if (mode !== undefined && mode !== 'streaming_replication') out.push(fail(area, `backend_clustering_mode is ${mode}`, "maas-ha drives streaming replication: backend_clustering_mode = 'streaming_replication'"));

  // Backends: pgpool and maas-ha must name every node the same way.
  for (const n of config.nodes) {
    const host = get(`backend_hostname${n.id}`);
    const port = num(`backend_port${n.id}`) ?? 5432;
    const dir = get(`backend_data_directory${n.id}`);
    if (host === undefined) {
      out.push(fail(area, `backend_hostname${n.id} is missing (node ${n.id} is in ${config.source})`, `add backend_hostname${n.id} = '${n.hostname}' and its port and data directory`));
      continue;
    }
    if (host !== n.hostname) {
      out.push(fail(area, `backend_hostname${n.id} is "${host}", maas-ha says "${n.hostname}": pgpool compares it as a string with the standbys' primary_conninfo host`, `use the same spelling in both files`));
    }
    if (port !== n.port) out.push(fail(area, `backend_port${n.id} is ${port}, maas-ha says ${n.port}`, 'use the same port in both files'));
    if (dir !== n.data_directory) out.push(fail(area, `backend_data_directory${n.id} is ${dir ? `"${dir}"` : 'unset'}, maas-ha says "${n.data_directory}": pgpool passes it to the hooks (%D, online recovery)`, 'use the same path in both files'));
    for (const [what, v] of [['backend_hostname', host], ['backend_data_directory', dir ?? '']] as const) {
      const hazard = placeholderValueHazard(v);
      if (hazard) out.push(fail(area, `${what}${n.id} ${hazard}`, 'use a plain host name and path'));
    }
    if (host === n.hostname && port === n.port && dir === n.data_directory) out.push(ok(area, `backend ${n.id} is ${host}:${port} ${dir}, as maas-ha knows it`));
  }
  const known = new Set(config.nodes.map((n) => n.id));
  for (const k of settings.keys()) {
    const id = /^backend_hostname(\d+)$/.exec(k)?.[1];
    if (id !== undefined && !known.has(Number(id))) out.push(fail(area, `pgpool has backend ${id}, ${config.source} does not`, `add node ${id} to ${config.source} or remove it from pgpool.conf`));
  }

  // The watchdog: 4.3 spells the VIP delegate_IP and says nothing about any other spelling.
  if (get('use_watchdog') === 'on') {
    const before44 = !version || version[0] < 4 || (version[0] === 4 && version[1] < 4);
    if (before44 && get('delegate_ip') !== undefined && get('delegate_IP') === undefined) {
      out.push(fail(area, `delegate_ip is set but pgpool ${version ? version.join('.') : '4.3'} reads delegate_IP (4.4+ renamed it): the VIP is silently not managed`, 'write delegate_IP (both spellings are accepted by 4.4+)'));
    }
    if (config.vip && !/maas-ha-escalation/.test(get('wd_escalation_command') ?? '')) {
      out.push(warn(area, 'the vip section is configured but wd_escalation_command does not run maas-ha-escalation', 'wire the lines of pgpool/watchdog.conf'));
    }
  }
  return out;
}

/** What one node told us, beyond the observation: settings, wrappers, slots. */
export interface NodeFacts {
  observation: NodeObservation;
  walLogHints?: boolean;
  dataChecksums?: boolean;
  /** pgpool_recovery in template1 (asked of the primary only). */
  recoveryExtension?: boolean;
  /** Slot names on the primary. */
  slots?: string[];
  /** IDENTIFY_SYSTEM over a replication connection as maas-ha's user: undefined when it worked, else the error. */
  identifyError?: string;
  /** ssh: undefined when it worked, else what went wrong. */
  sshError?: string;
  /** Over ssh: which recovery wrappers are executable in the data directory, which PostgreSQL tools are there. */
  wrappers?: string[];
  tools?: string[];
}

const TOOLS = ['pg_ctl', 'pg_rewind', 'pg_basebackup', 'pg_controldata'];

/** Pure: the facts of every node against the configuration. */
export function checkNodeFacts(config: Config, facts: Map<number, NodeFacts>): Finding[] {
  const out: Finding[] = [];
  const judged = judgePrimaries([...facts.values()].map((f) => f.observation));
  const primaryNode = judged.current !== undefined ? config.nodes.find((n) => n.id === judged.current) : undefined;
  const writable = [...facts.values()].filter((f) => isWritable(f.observation)).length;
  if (writable === 0) out.push(fail('cluster', 'no node answers as a primary', 'recover or promote one (maas-ha status shows what each node is)'));
  else if (judged.ambiguous.length) out.push(fail('cluster', `${judged.ambiguous.length} nodes answer as primaries (split brain): ${judged.why}`, 'stop every primary but one, then maas-ha recover the others'));
  for (const st of judged.stale) out.push(fail('cluster', `split brain: ${st.why}`, `stop it, then maas-ha recover ${st.node}`));
  for (const n of config.nodes) {
    const area = `node ${n.id}`;
    const f = facts.get(n.id);
    if (!f) continue;
    const o = f.observation;
    if (!o.reachable) {
      out.push(fail(area, `PostgreSQL does not answer: ${o.error}`, `start it, or maas-ha recover ${n.id}`));
    } else {
      if (f.walLogHints === false && f.dataChecksums === false) {
        out.push(fail(area, 'wal_log_hints is off and data checksums are off: pg_rewind cannot rewind this node, every rejoin would be a full base backup', 'wal_log_hints = on (restart needed)'));
      } else out.push(ok(area, `${o.inRecovery ? 'standby' : 'primary'}, rewindable (${f.walLogHints ? 'wal_log_hints' : 'data checksums'})`));
      if (o.inRecovery && primaryNode) {
        const wr = o.walReceiver;
        if (!wr || wr.status !== 'streaming') out.push(fail(area, 'not streaming', `maas-ha recover ${n.id}`));
        else if (wr.senderHost !== primaryNode.hostname) {
          out.push(fail(area, `streams from "${wr.senderHost}", but the primary is "${primaryNode.hostname}" in pgpool: pgpool's false-primary check compares the strings`, `repoint primary_conninfo at host=${primaryNode.hostname}`));
        }
      }
      if (!o.inRecovery && config.replication.use_slots && f.slots) {
        for (const m of config.nodes.filter((x) => x.id !== n.id)) {
          if (!f.slots.includes(`maas_ha_node_${m.id}`)) out.push(warn(area, `no replication slot maas_ha_node_${m.id} for node ${m.id}`, 'maas-ha creates it when that node follows or is recovered; until then WAL it needs may be removed'));
        }
      }
      if (f.identifyError !== undefined) {
        out.push(fail(area, `${config.postgres.user} cannot open a replication connection (${f.identifyError}): failover cannot read which timeline a standby replays, and ranks standbys by WAL position only`, `pg_hba.conf on every node: host replication ${config.postgres.user} <pgpool hosts> <method>`));
      }
      if (!o.inRecovery && f.recoveryExtension === false) out.push(fail(area, 'the pgpool_recovery extension is not in template1: pcp_recovery_node fails', 'CREATE EXTENSION pgpool_recovery in template1 (as a superuser)'));
    }
    const sshArea = `ssh node ${n.id}`;
    if (f.sshError !== undefined) {
      out.push(fail(sshArea, `${config.ssh.user}@${n.ssh_host} does not answer: ${f.sshError}`, 'check the key, the known_hosts entry (ssh-keyscan) and that sshd runs'));
      continue;
    }
    const missingTools = TOOLS.filter((t) => !(f.tools ?? []).includes(t));
    if (missingTools.length) out.push(fail(sshArea, `${n.bin_dir} lacks ${missingTools.join(', ')}`, `set nodes[${n.id}].bin_dir (or postgres.bin_dir) to the PostgreSQL binaries`));
    const missingWrappers = Object.keys(RECOVERY_WRAPPERS).filter((w) => !(f.wrappers ?? []).includes(w));
    if (missingWrappers.length) out.push(fail(sshArea, `${n.data_directory} lacks ${missingWrappers.join(' and ')}: online recovery through pgpool cannot run when this node is primary`, `./install.sh --database-host ${n.data_directory} on that host`));
    if (!missingTools.length && !missingWrappers.length) out.push(ok(sshArea, `reachable with strict host keys; tools and recovery wrappers in place`));
  }
  return out;
}

/** What ssh checks on a node: which wrappers are executable, which tools exist. Prints one word per hit. */
const NODE_FILES_SCRIPT = `
dir="$1"; bin="$2"; shift 2
for w in "$@"; do [ -x "$dir/$w" ] && echo "wrapper:$w"; done
for t in ${TOOLS.join(' ')}; do [ -x "$bin/$t" ] && echo "tool:$t"; done
exit 0`;

async function nodeFacts(deps: Deps, n: NodeConfig, observation: NodeObservation): Promise<NodeFacts> {
  const f: NodeFacts = { observation };
  const target = { host: n.hostname, port: n.port };
  if (observation.reachable) {
    try {
      const [row] = await deps.pg.query<{ h: string; c: string }>(target, "SELECT current_setting('wal_log_hints') AS h, current_setting('data_checksums') AS c");
      f.walLogHints = row?.h === 'on';
      f.dataChecksums = row?.c === 'on';
      if (!observation.inRecovery) {
        const [ext] = await deps.pg.query<{ n: string }>({ ...target, database: 'template1' }, "SELECT count(*)::text AS n FROM pg_extension WHERE extname = 'pgpool_recovery'");
        f.recoveryExtension = ext?.n === '1';
        f.slots = (await deps.pg.query<{ s: string }>(target, 'SELECT slot_name AS s FROM pg_replication_slots')).map((r) => r.s);
      }
    } catch {
      // The observation already says the node answers; a failing detail query leaves the detail unknown.
    }
    try {
      await deps.pg.query({ ...target, replicationConnection: true }, 'IDENTIFY_SYSTEM');
    } catch (err) {
      f.identifyError = messageOf(err);
    }
  }
  const r = await deps.ssh.run(n.ssh_host, shScript(NODE_FILES_SCRIPT, n.data_directory, n.bin_dir, ...Object.keys(RECOVERY_WRAPPERS)), {
    timeoutMs: deps.config.ssh.connect_timeout_s * 1000 + 5000,
  });
  if (r.exitCode !== 0) f.sshError = r.timedOut ? `no answer within ${r.durationMs} ms` : (r.stderr.trim().split('\n').pop() ?? `exit ${r.exitCode}`);
  else {
    const words = r.stdout.split('\n');
    f.wrappers = words.filter((w) => w.startsWith('wrapper:')).map((w) => w.slice(8));
    f.tools = words.filter((w) => w.startsWith('tool:')).map((w) => w.slice(5));
  }
  return f;
}

/** Every check, live: pgpool.conf (when its text is given), pcp, and each node over PostgreSQL and ssh. */
export interface PgpoolHost {
  text: string;
  source: string;
  /** `pgpool --version` of the pgpool that reads it. */
  versionText?: string;
  /** The OS user pgpool runs as (its hooks run as it). */
  user?: string;
}

export async function gatherPreflight(deps: Deps, pgpool: PgpoolHost | undefined, template: string): Promise<Finding[]> {
  const findings: Finding[] = [];
  if (pgpool) {
    const { settings, findings: syntax } = readPgpoolConf(pgpool.text, pgpool.source);
    const version = pgpool.versionText ? parsePgpoolVersion(pgpool.versionText) : undefined;
    findings.push(ok('pgpool.conf', `read ${pgpool.source}`), ...syntax, ...checkPgpoolConf(settings, deps.config, template, version));
    if (version) findings.push(...versionFindings(version, settings));
    else findings.push(warn('pgpool version', `could not tell pgpool's version (${pgpool.versionText?.trim() || 'pgpool --version did not answer'}): version traps not checked`, 'run preflight on the pgpool host'));
    findings.push(await hooksLoadConfig(deps, settings, pgpool.user));
  }
  try {
    const count = await deps.pcp.nodeCount();
    if (count !== deps.config.nodes.length) findings.push(fail('pcp', `pgpool has ${count} backends, ${deps.config.source} has ${deps.config.nodes.length} nodes`, 'make both list the same nodes'));
    for (const n of deps.config.nodes) {
      const info = await deps.pcp.nodeInfo(n.id);
      if (info.host !== n.hostname || info.port !== n.port) findings.push(fail('pcp', `pgpool's backend ${n.id} is ${info.host}:${info.port}, maas-ha's node ${n.id} is ${n.hostname}:${n.port}`, 'use the same node ids, hosts and ports in both'));
      else if (!isAttached(info)) findings.push(warn('pcp', `pgpool has node ${n.id} detached (status ${info.statusName})`, `maas-ha recover ${n.id}`));
    }
    findings.push(ok('pcp', `pgpool answers on ${deps.config.pcp.host}:${deps.config.pcp.port} with ${count} backends`));
  } catch (err) {
    findings.push(fail('pcp', `pgpool's pcp does not answer as ${deps.config.pcp.user}: ${messageOf(err)}`, `check pcp.host/port, pcp.conf and the pcppass file ${deps.config.pcp.pcppass_file}`));
  }
  const observations = await observeAll(deps, 3000);
  const facts = new Map(await Promise.all(deps.config.nodes.map(async (n, i) => [n.id, await nodeFacts(deps, n, observations[i]!)] as const)));
  findings.push(...checkNodeFacts(deps.config, facts));
  const vip = deps.config.vip;
  if (vip?.slave_dns && deps.net) findings.push(...soaFindings(compareSoa(vip.slave_dns.zones, await observeSoa(deps.net, vip, vip.slave_dns, vip.slave_dns.zones))));
  return findings;
}

/** Pure: the secondary DNS comparison as preflight findings. */
export function soaFindings(results: readonly SoaFinding[]): Finding[] {
  return results.map((r) => (r.ok ? ok('slave dns', `${r.server}: ${r.detail}`) : fail('slave dns', `${r.server}: ${r.detail}`, r.fix ?? 'maas-ha render dns --write on that host')));
}

/**
 * The hooks pgpool would run can load their configuration: `maas-ha config get cluster_name` from the bin
 * directory of the hook lines, with the line's --config, as pgpool's user and with an environment as bare as
 * pgpool's service gives it (no MAAS_HA_CONFIG). Run as root, it drops to that user; otherwise as whoever runs it.
 */
async function hooksLoadConfig(deps: Deps, settings: Map<string, string>, user = 'postgres'): Promise<Finding> {
  const area = 'pgpool hooks';
  const line = settings.get('failover_command') ?? '';
  const m = /^(\/\S*)\/maas-ha-failover (?:--config (\S+) )?/.exec(line);
  if (!m) return warn(area, 'failover_command does not run maas-ha-failover: the hooks were not tried', 'wire the lines of maas-ha config render-pgpool');
  const argv = [`${m[1]}/maas-ha`, 'config', 'get', 'cluster_name', ...(m[2] ? ['--config', m[2]] : [])];
  const asUser = process.getuid?.() === 0 ? ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--'] : [];
  const r = await deps.shell.run([...asUser, ...argv], { timeoutMs: 15_000, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C' }, cwd: '/' });
  const reads = m[2] ?? DEFAULT_CONFIG_PATH;
  if (r.exitCode === 0) return ok(area, `pgpool's hooks load ${reads} as ${asUser.length ? user : 'this user'} (cluster ${r.stdout.trim()})`);
  return fail(area, `pgpool's hooks cannot load ${reads} as ${asUser.length ? user : 'this user'}: ${(r.stderr || r.stdout).trim().split('\n').pop() || `exit ${r.exitCode}`}`, `make ${reads} readable by ${user}, or write its path into the hook lines (maas-ha config render-pgpool --config FILE)`);
}

/** `pgpool-II version 4.3.5 (tamahomeboshi)` → [4, 3, 5]. */
export function parsePgpoolVersion(text: string): [number, number, number] | undefined {
  const m = /pgpool-II version (\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/**
 * Pure: the settings that pgpool of this version reads differently from what the file says, or defaults that
 * changed under it: each one breaks a setup silently (pgpool logs at most an INFO line). Table-tested per version.
 */
export function versionFindings(version: [number, number, number], settings: Map<string, string>): Finding[] {
  const area = 'pgpool version';
  const [maj, min, patch] = version;
  const at = (a: number, b: number) => maj > a || (maj === a && min >= b);
  const v = `${maj}.${min}.${patch}`;
  const has = (k: string) => settings.has(k);
  const watchdog = settings.get('use_watchdog') === 'on';
  const out: Finding[] = [];
  if (!at(4, 2) && has('follow_primary_command') && !has('follow_master_command')) {
    out.push(fail(area, `pgpool ${v} knows follow_master_command only: follow_primary_command is ignored`, 'rename it to follow_master_command (the line is in pgpool/hooks.conf, commented)'));
  }
  if (watchdog) {
    if (at(4, 4) && has('delegate_IP') && !has('delegate_ip')) {
      out.push(warn(area, `delegate_IP is the pre-4.4 spelling: pgpool ${v} documents delegate_ip`, 'write delegate_ip'));
    }
    if (maj === 4 && min <= 3 && (min < 3 || patch < 17)) {
      out.push(warn(area, `pgpool ${v} lacks the watchdog split-brain fixes of 4.3.17 and later: after a network partition two watchdog leaders can both hold the VIP for a while`, 'upgrade pgpool to 4.3.17 or later (Debian 12 ships 4.3.5); until then keep a third watchdog member (a witness) so the quorum decides'));
    }
    if (at(4, 7) && !has('hostname0') && !has('wd_hostname')) {
      out.push(warn(area, `pgpool ${v}'s watchdog listens only on its hostname setting: without it the peers cannot reach it`, 'set hostname0.. (and wd_port0..) for every watchdog member'));
    }
  }
  if (at(4, 6)) {
    for (const k of ['health_check_user', 'sr_check_user', 'recovery_user', 'wd_lifecheck_user']) {
      if (k === 'wd_lifecheck_user' && !watchdog) continue;
      if (!settings.get(k)) out.push(fail(area, `${k} is unset: pgpool ${v} no longer defaults it (4.6 made the default empty)`, `set ${k} explicitly`));
    }
  }
  if (at(4, 7)) {
    if (has('logdir') && !has('work_dir')) out.push(fail(area, `logdir is set but pgpool ${v} reads work_dir (renamed in 4.7): pgpool_status goes elsewhere`, 'rename logdir to work_dir'));
    const db = settings.get('recovery_database') ?? 'postgres';
    out.push(warn(area, `pgpool ${v} runs online recovery in recovery_database (${db}): the pgpool_recovery extension must exist there, not only in template1`, `CREATE EXTENSION pgpool_recovery in ${db} on the primary`));
  }
  if (out.length === 0) out.push(ok(area, `pgpool ${v}: no setting it reads differently`));
  return out;
}

export function renderFindings(findings: Finding[]): string {
  const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
  const lines = findings.map((f) => `${mark[f.level]}  ${f.area.padEnd(12)} ${f.what}${f.fix ? `\n${' '.repeat(19)}→ ${f.fix}` : ''}`);
  const fails = findings.filter((f) => f.level === 'fail').length;
  const warns = findings.filter((f) => f.level === 'warn').length;
  lines.push(fails ? `preflight FAILED: ${fails} problem${fails === 1 ? '' : 's'}, ${warns} warning${warns === 1 ? '' : 's'}` : `preflight passed${warns ? ` with ${warns} warning${warns === 1 ? '' : 's'}` : ''}`);
  return lines.join('\n');
}
