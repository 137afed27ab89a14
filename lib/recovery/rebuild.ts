// The rebuild primitives: observe a node and the primary, carry out a plan from ./plan.ts, start the node as a
// standby, prove it streams, then tidy up. Shared by the recovery hooks (pgpool's online recovery), `maas-ha
// recover` and follow-primary's rewind. Every command runs on the node's own host over ssh as the PostgreSQL
// user, as production does (the recovery hook runs on the primary's host; the copy must land on the target's).
//
// Order of effects, and why:
//   lock (one rebuild per node, on its host) → stop → slot → (CHECKPOINT → pg_rewind in place) | (pg_basebackup
//   beside → swap by rename) | (nothing: a stopped standby whose WAL is a prefix of the primary's) → standby
//   settings → unlock → start → wait until pg_stat_wal_receiver streams the primary's timeline → prune old copies,
//   tidy what the rebuild left beside the data directory, clear fencing.
// Nothing before "streams" deletes a data directory; the only things removed earlier are maas-ha's own
// unfinished copies (`.maas-ha-new`), which never were the node's data.

import type { NodeConfig } from '../config/types.ts';
import { messageOf, OperationError } from '../errors.ts';
import type { Deps, RunResult } from '../model/ports.ts';
import { formatBytes, parseLsnOrUndefined } from '../model/lsn.ts';
import { isWritable, judgePrimaries, observeAll, observeNode, streamsFrom, type NodeObservation } from '../observe.ts';
import { control, shScript, stopNode } from '../pgctl.ts';
import {
  basebackupLogOf,
  describePlan,
  mainConfOf,
  oldDirOf,
  ownConfOf,
  oldDirsToPrune,
  parseTargetDisk,
  planRebuild,
  type PrimaryFacts,
  type RebuildFacts,
  type RebuildMethod,
  type RebuildOptions,
  type RebuildPlan,
  type TargetDisk,
} from './plan.ts';
import { ownConfArg } from './includes.ts';
import {
  BASEBACKUP_SCRIPT,
  FACTS_SCRIPT,
  LOCK_SCRIPT,
  PRUNE_SCRIPT,
  rebuildLockOf,
  RESUME_SCRIPT,
  REWIND_SCRIPT,
  STANDBY_CONF_SCRIPT,
  UNLOCK_SCRIPT,
} from './scripts.ts';
import { slotName, standbyLines } from './standby-conf.ts';

/** pg_controldata and friends speak the locale; the parsers read the C labels. */
const C_LOCALE = ['env', 'LC_ALL=C', 'LANG=C'];

const lastLines = (text: string, n = 3) =>
  text
    .replace(/\r/g, '')
    .trim()
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^stage=/.test(l))
    .slice(-n)
    .join(' | ');

/** What a PostgreSQL tool said went wrong: its "error:" lines (and the detail after the first), else its last lines. */
export function toolError(stderr: string): string {
  const lines = stderr.replace(/\r/g, '').split('\n').map((l) => l.trim()).filter(Boolean);
  const first = lines.findIndex((l) => /\b(error|fatal):/i.test(l));
  if (first === -1) return lastLines(stderr, 2);
  const detail = lines[first + 1] && !/^\S+: /.test(lines[first + 1]!) ? ` ${lines[first + 1]}` : '';
  return `${lines[first]}${detail}`;
}

function sshFailure(deps: Pick<Deps, 'config'>, node: NodeConfig, r: RunResult): OperationError {
  const why = r.timedOut ? `no answer within ${r.durationMs} ms` : lastLines(r.stderr) || `ssh exit ${r.exitCode}`;
  return new OperationError(
    `cannot reach node ${node.id}'s host ${node.ssh_host} over ssh as ${deps.config.ssh.user} (${why}): nothing was changed there. ` +
      `Check that sshd runs on ${node.ssh_host}:${deps.config.ssh.port} and that ${deps.config.ssh.known_hosts_file} holds its host key, then retry`,
  );
}

/** The node's disk, from one ssh round trip. An ssh failure is an OperationError that says what to check. */
export async function observeDisk(deps: Pick<Deps, 'ssh' | 'config'>, node: NodeConfig, opts: { sizes?: boolean } = {}): Promise<TargetDisk> {
  // The script bounds its own commands (du of a large directory, df on a hung mount) a little inside our timeout.
  const boundS = opts.sizes ? 55 : 12;
  const r = await deps.ssh.run(
    node.ssh_host,
    [...C_LOCALE, ...shScript(FACTS_SCRIPT, node.data_directory, node.bin_dir, opts.sizes ? '1' : '0', String(boundS), mainConfOf(node))],
    { timeoutMs: deps.config.ssh.connect_timeout_s * 1000 + (boundS + 5) * 1000 },
  );
  if (r.exitCode === 255 || r.timedOut) throw sshFailure(deps, node, r);
  if (r.exitCode !== 0) throw new OperationError(`examining node ${node.id}'s data directory failed: ${lastLines(r.stderr || r.stdout)}`);
  return parseTargetDisk(r.stdout);
}

export async function observePrimary(deps: Pick<Deps, 'pg'>, primary: NodeConfig): Promise<PrimaryFacts> {
  type Row = { in_recovery: boolean; sysid: string; major: string; tli: number; lsn: string; size: string; tablespaces: string[] };
  let rows: Row[];
  try {
    rows = await deps.pg.query<Row>(
      { host: primary.hostname, port: primary.port },
      `SELECT pg_is_in_recovery() AS in_recovery,
              (SELECT system_identifier::text FROM pg_control_system()) AS sysid,
              (current_setting('server_version_num')::int / 10000)::text AS major,
              ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int AS tli,
              pg_current_wal_lsn()::text AS lsn,
              (SELECT sum(pg_database_size(oid))::text FROM pg_database) AS size,
              ARRAY(SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')) AS tablespaces`,
    );
  } catch (err) {
    throw new OperationError(`the primary (node ${primary.id}, ${primary.hostname}:${primary.port}) does not answer: ${messageOf(err)}`, { cause: err });
  }
  const row = rows[0];
  if (!row) throw new OperationError(`node ${primary.id} returned nothing`);
  if (row.in_recovery) throw new OperationError(`node ${primary.id} is in recovery, not a primary: there is nothing to copy from`);
  return {
    id: primary.id,
    systemIdentifier: row.sysid,
    major: row.major,
    timeline: row.tli,
    sizeBytes: Number(row.size),
    tablespaces: row.tablespaces,
    lsn: parseLsnOrUndefined(row.lsn),
  };
}

export async function gatherFacts(deps: Deps, node: NodeConfig, primary: NodeConfig, opts: { sizes?: boolean } = {}): Promise<RebuildFacts> {
  const [primaryFacts, disk, observation] = await Promise.all([
    observePrimary(deps, primary),
    observeDisk(deps, node, opts),
    observeNode(deps, node, 3000),
  ]);
  return { node, primary, primaryFacts, disk, observation };
}

/** The primary among the configured nodes: the one reachable node not in recovery (pgpool's choice breaks a tie). */
export function pickPrimary(observations: NodeObservation[], pgpoolPrimary?: number): { id: number } | { error: string } {
  const primaries = observations.filter(isWritable);
  if (primaries.length === 1) return { id: primaries[0]!.id };
  if (primaries.length === 0) return { error: 'no node answers as a primary: there is nothing to copy from' };
  if (pgpoolPrimary !== undefined && primaries.some((p) => p.id === pgpoolPrimary)) return { id: pgpoolPrimary };
  return { error: `nodes ${primaries.map((p) => p.id).join(' and ')} all run as primaries and pgpool names none of them: settle that first` };
}

export async function ensureSlot(deps: Pick<Deps, 'pg' | 'config'>, primary: NodeConfig, node: NodeConfig): Promise<void> {
  if (!deps.config.replication.use_slots) return;
  await deps.pg.query(
    { host: primary.hostname, port: primary.port },
    `SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
    [slotName(node.id)],
  );
}

/** Values of `key=value` lines a script printed. */
const stdoutValues = (stdout: string, key: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));

export interface PrepareResult {
  method: RebuildMethod;
  /** Where the replaced data directory went (base backup). */
  oldDir?: string;
  /** Set when pg_rewind failed and a base backup replaced it. */
  rewindFailure?: string;
  durationMs: number;
}

export interface PrepareOptions {
  /** Milliseconds the whole preparation may take (the copy gets what is left). */
  budgetMs: number;
  now: () => Date;
  /** Names this rebuild in the node's rebuild lock (default: time and pid of this process). */
  runId?: string;
}

/**
 * One rebuild per node at a time, across hosts and processes: a lock beside the data directory on the node's own
 * host (./scripts.ts LOCK_SCRIPT), held for at most the rebuild's budget; a lock whose run outlived its budget is
 * stale and taken over. Returns the release.
 */
export async function lockRebuild(deps: Pick<Deps, 'ssh' | 'config' | 'log'>, node: NodeConfig, runId: string, budgetMs: number): Promise<() => Promise<void>> {
  const id = runId.replace(/[^A-Za-z0-9._:-]/g, '_');
  const holdS = Math.ceil(budgetMs / 1000) + 60;
  const timeoutMs = deps.config.ssh.connect_timeout_s * 1000 + 10_000;
  const r = await deps.ssh.run(node.ssh_host, shScript(LOCK_SCRIPT, node.data_directory, id, String(holdS)), { timeoutMs });
  if (r.exitCode === 255 || r.timedOut) throw sshFailure(deps, node, r);
  const held = stdoutValues(r.stdout, 'held')[0];
  if (r.exitCode === 3 && held !== undefined) {
    const f = (k: string) => new RegExp(`(?:^| )${k}=(\\S+)`).exec(held)?.[1];
    const at = (k: string) => (/^\d+$/.test(f(k) ?? '') ? new Date(Number(f(k)) * 1000).toISOString() : '?');
    throw new OperationError(
      `node ${node.id} is being rebuilt by run ${f('run') ?? '?'} since ${at('since')}: nothing was changed; wait for it to finish ` +
        `(it holds ${rebuildLockOf(node.data_directory)} on ${node.ssh_host} until ${at('until')} at most; remove that link only if the run is gone)`,
    );
  }
  if (r.exitCode !== 0) throw new OperationError(`cannot take node ${node.id}'s rebuild lock: ${lastLines(r.stderr || r.stdout) || `exit ${r.exitCode}`}`);
  const took = stdoutValues(r.stdout, 'took_over')[0];
  if (took) deps.log.warn({ step: 'lock', node_id: node.id, outcome: 'ok' }, `took over node ${node.id}'s stale rebuild lock (${took})`);
  return async () => {
    const u = await deps.ssh.run(node.ssh_host, shScript(UNLOCK_SCRIPT, node.data_directory, id), { timeoutMs }).catch((err: unknown) => messageOf(err));
    if (typeof u === 'string' || u.exitCode !== 0 || !/^unlocked=/m.test(u.stdout)) {
      const why = typeof u === 'string' ? u : lastLines(u.stderr || u.stdout) || `exit ${u.exitCode}`;
      deps.log.warn({ step: 'unlock', node_id: node.id, outcome: 'failed' }, `releasing node ${node.id}'s rebuild lock failed (${why}); it expires by itself`);
    }
  };
}

/**
 * Carries out a plan up to "ready to start": the node is stopped, rebuilt, and configured as a standby of the
 * primary. Throws OperationError with a message that says what happened to the data directory and what to do.
 */
export async function prepareStandby(deps: Deps, facts: RebuildFacts, plan: Extract<RebuildPlan, { kind: 'rebuild' }>, opts: PrepareOptions): Promise<PrepareResult> {
  const started = deps.clock.now();
  const release = await lockRebuild(deps, facts.node, opts.runId ?? `${started.toString(36)}-${process.pid.toString(36)}`, opts.budgetMs);
  try {
    return await prepareLocked(deps, facts, plan, { ...opts, budgetMs: opts.budgetMs - (deps.clock.now() - started) });
  } finally {
    await release();
  }
}

async function prepareLocked(deps: Deps, facts: RebuildFacts, plan: Extract<RebuildPlan, { kind: 'rebuild' }>, opts: PrepareOptions): Promise<PrepareResult> {
  const { node, primary } = facts;
  const log = deps.log.child({ node_id: node.id });
  const started = deps.clock.now();
  const left = () => opts.budgetMs - (deps.clock.now() - started);
  for (const line of describePlan(facts, plan, deps.config.recovery.keep_old_data_dirs)) log.info({ step: 'plan' }, line.trim());
  const keep = ownConfOf(node, facts.disk).map(ownConfArg);

  if (plan.stop) {
    const stop = await stopNode(deps, node, Math.min(60_000, Math.max(10_000, left() / 4)));
    if (stop.outcome === 'unreachable' || stop.outcome === 'still-running') {
      throw new OperationError(`node ${node.id} could not be stopped (${stop.outcome}: ${stop.detail}): nothing else was changed; stop it by hand, then retry`);
    }
    log.info({ step: 'stop', outcome: 'ok' }, `node ${node.id}: ${stop.outcome}`);
  }
  await ensureSlot(deps, primary, node);

  if (plan.method === 'start') {
    const lines = standbyLines(deps, primary, node);
    const r = await deps.ssh.run(node.ssh_host, shScript(STANDBY_CONF_SCRIPT, node.data_directory, '20', String(lines.length), ...lines), { timeoutMs: 30_000 });
    if (r.exitCode === 255 && !/stage=/.test(r.stdout)) throw sshFailure(deps, node, r);
    if (r.exitCode !== 0) throw new OperationError(`writing node ${node.id}'s standby settings failed: ${lastLines(r.stderr || r.stdout) || `exit ${r.exitCode}`}`);
    log.info({ step: 'standby-conf', outcome: 'ok' }, `node ${node.id} needs no rebuild (${plan.why}); standby settings now name node ${primary.id}`);
    return { method: 'start', durationMs: deps.clock.now() - started };
  }

  if (plan.method === 'resume') {
    const r = await deps.ssh.run(node.ssh_host, shScript(RESUME_SCRIPT, node.data_directory, '20'), { timeoutMs: 30_000 });
    if (r.exitCode !== 0) throw new OperationError(`finishing the swap of ${plan.newDir} into ${node.data_directory} failed: ${lastLines(r.stderr || r.stdout)}`);
    log.info({ step: 'swap', outcome: 'ok' }, `finished the swap an earlier attempt left: ${plan.newDir} is now ${node.data_directory}`);
    return { method: 'resume', durationMs: deps.clock.now() - started };
  }

  if (plan.method === 'rewind') {
    const failure = await rewind(deps, node, primary, left(), keep);
    if (!failure) return { method: 'rewind', durationMs: deps.clock.now() - started };
    if (!plan.fallback) {
      throw new OperationError(
        `pg_rewind of node ${node.id} from node ${primary.id} failed (${failure}): its data directory ${node.data_directory} may now be inconsistent; ` +
          `rebuild it by base backup (maas-ha recover ${node.id}), which keeps this directory beside the new one`,
      );
    }
    log.warn({ step: 'rewind', outcome: 'failed' }, `pg_rewind failed (${failure}): falling back to a base backup; the rewound directory will be kept, not deleted`);
    const again = await gatherFacts(deps, node, primary);
    const fallback = planRebuild(again, { method: 'basebackup', force: true, initial: false, basebackup: true, now: opts.now() });
    if (fallback.kind === 'refuse') throw new OperationError(`pg_rewind of node ${node.id} failed (${failure}), and a base backup is impossible: ${fallback.why}`);
    const oldDir = await basebackup(deps, again, fallback, left(), keep);
    return { method: 'basebackup', oldDir, rewindFailure: failure, durationMs: deps.clock.now() - started };
  }

  const oldDir = await basebackup(deps, facts, plan, left(), keep);
  return { method: 'basebackup', oldDir, durationMs: deps.clock.now() - started };
}

/** pg_rewind in place; undefined on success, else pg_rewind's own words. Our own file steps failing throws. */
async function rewind(deps: Deps, node: NodeConfig, primary: NodeConfig, budgetMs: number, keep: string[]): Promise<string | undefined> {
  const { config } = deps;
  const log = deps.log.child({ node_id: node.id });
  try {
    // pg_rewind against a freshly promoted primary needs the new timeline in a checkpoint (docs/lab.md, "pg_rewind needs a checkpoint on the new primary").
    await deps.pg.query({ host: primary.hostname, port: primary.port }, 'CHECKPOINT', [], { timeoutMs: Math.min(60_000, Math.max(5000, budgetMs / 4)) });
  } catch (err) {
    log.warn({ step: 'checkpoint', node_id: primary.id, outcome: 'failed' }, `CHECKPOINT on node ${primary.id} failed: ${messageOf(err)}`);
  }
  const started = deps.clock.now();
  const source = `host=${primary.hostname} port=${primary.port} user=${config.postgres.user} dbname=${config.postgres.database} connect_timeout=5`;
  // pg_rewind (PG 13+) first runs crash recovery in single-user mode on a target that was not shut down cleanly
  // (a killed primary); that server reads its configuration, which on Debian lives outside the data directory.
  // --no-sync: the script makes the result durable with one syncfs, much faster than fsync of every file.
  const argv = [`${node.bin_dir}/pg_rewind`, '-D', node.data_directory, `--source-server=${source}`, '--no-sync'];
  if (node.config_directory) argv.push(`--config-file=${node.config_directory}/postgresql.conf`);
  const lines = standbyLines(deps, primary, node);
  const secs = Math.max(10, Math.floor(budgetMs / 1000) - 15);
  const env = [...C_LOCALE, ...(config.postgres.password_file ? [`PGPASSFILE=${config.postgres.password_file}`] : [])];
  const keepArgs = keep.length ? ['--keep', String(keep.length), ...keep] : [];
  const r = await deps.ssh.run(node.ssh_host, [...env, ...shScript(REWIND_SCRIPT, node.data_directory, String(secs), String(lines.length), ...lines, ...keepArgs, ...argv)], {
    timeoutMs: secs * 1000 + 20_000,
  });
  if (r.exitCode === 255 && !/stage=/.test(r.stdout)) throw sshFailure(deps, node, r);
  if (r.exitCode === 10) return toolError(r.stderr) || `pg_rewind exit ${/rc=(\d+)/.exec(r.stdout)?.[1] ?? '?'}`;
  if (r.exitCode !== 0) {
    const why = lastLines(r.stderr || r.stdout) || `exit ${r.exitCode}`;
    // Only what the script reported: the files are saved once it said stage=saved, and pg_rewind ran only after that.
    if (!/stage=saved/.test(r.stdout)) {
      throw new OperationError(`saving node ${node.id}'s own configuration files before pg_rewind failed (${why}): nothing was changed; fix the cause and run maas-ha recover ${node.id}`);
    }
    throw new OperationError(
      `rewinding node ${node.id} failed after pg_rewind ${/stage=rewound/.test(r.stdout) ? 'succeeded' : 'started'} (${why}); ` +
        `its own configuration files are saved in ${node.data_directory}.maas-ha-conf; fix the cause and run maas-ha recover ${node.id}`,
    );
  }
  const said = lastLines(r.stderr, 1);
  log.info({ step: 'rewind', outcome: 'ok', duration_ms: deps.clock.now() - started }, `pg_rewind of node ${node.id} from node ${primary.id}: ${said || 'done'}`);
  return undefined;
}

/** Base backup beside, swap by rename. Returns where the old data directory went (if it held anything). */
async function basebackup(deps: Deps, facts: RebuildFacts, plan: Extract<RebuildPlan, { kind: 'rebuild' }>, budgetMs: number, keep: string[]): Promise<string | undefined> {
  const { config } = deps;
  const { node, primary } = facts;
  const log = deps.log.child({ node_id: node.id });
  const started = deps.clock.now();
  const argv = [
    `${node.bin_dir}/pg_basebackup`,
    '-D', plan.newDir,
    '-h', primary.hostname,
    '-p', String(primary.port),
    '-U', config.replication.user,
    '-w',
    '-X', 'stream',
    '-c', 'fast',
    '--progress',
    '--verbose',
    // The manifest's per-file checksums cost CPU on both ends and nobody verifies this copy with pg_verifybackup:
    // the standby proves itself by streaming.
    '--manifest-checksums=NONE',
    // The script syncs the copy with one syncfs before the swap (see BASEBACKUP_SCRIPT).
    '--no-sync',
  ];
  if (config.replication.use_slots) argv.push('-S', slotName(node.id));
  if (config.recovery.max_rate_kb_s) argv.push(`--max-rate=${config.recovery.max_rate_kb_s}`);
  const lines = standbyLines(deps, primary, node);
  const secs = Math.max(30, Math.floor(budgetMs / 1000) - 20);
  const env = [...C_LOCALE, ...(config.replication.password_file ? [`PGPASSFILE=${config.replication.password_file}`] : [])];
  // The script decides from the disk as it is then; a directory that gained content since the plan still moves aside.
  const oldDir = plan.oldDir ?? oldDirOf(node.data_directory, new Date(deps.clock.now()));
  log.info({ step: 'basebackup', outcome: 'started' }, `base backup of node ${primary.id} (about ${formatBytes(plan.copyBytes ?? 0)}) into ${plan.newDir}`);
  const r = await deps.ssh.run(
    node.ssh_host,
    [
      ...env,
      ...shScript(
        BASEBACKUP_SCRIPT,
        node.data_directory,
        oldDir,
        String(secs),
        basebackupLogOf(node.data_directory),
        String(lines.length),
        ...lines,
        ...(keep.length ? ['--keep', String(keep.length), ...keep] : []),
        ...argv,
      ),
    ],
    { timeoutMs: secs * 1000 + 30_000 },
  );
  const took = ((deps.clock.now() - started) / 1000).toFixed(1);
  if (r.exitCode === 255 && !/stage=/.test(r.stdout)) throw sshFailure(deps, node, r);
  if (r.exitCode === 10 || (r.timedOut && !/stage=copied/.test(r.stdout))) {
    // A disk that filled up during the copy is the target's problem, not the primary's.
    const check = /No space left on device/i.test(r.stderr)
      ? `free space beside ${node.data_directory} on ${node.ssh_host} (the copy needs room for a whole database)`
      : 'check the primary and the network';
    throw new OperationError(
      `base backup of node ${node.id} from node ${primary.id} failed after ${took} s (${toolError(r.stderr) || (r.timedOut ? 'timed out' : 'no message')}): ` +
        `node ${node.id}'s data directory ${node.data_directory} was not touched and the unfinished copy was removed; ` +
        `${check} (full log: ${basebackupLogOf(node.data_directory)} on ${node.ssh_host}), then retry: maas-ha recover ${node.id}`,
    );
  }
  if (r.exitCode !== 0) {
    const swapped = /stage=swapped/.test(r.stdout);
    throw new OperationError(
      `base backup of node ${node.id} was copied but ${swapped ? 'not completed' : 'could not be swapped in'} (${lastLines(r.stderr || r.stdout) || `exit ${r.exitCode}`}): ` +
        `the copy is at ${plan.newDir}, the data directory ${stdoutValues(r.stdout, 'old').length ? `was moved to ${stdoutValues(r.stdout, 'old')[0]}` : `is still ${node.data_directory}`}; fix the cause and run maas-ha recover ${node.id}`,
    );
  }
  const moved = stdoutValues(r.stdout, 'old')[0];
  log.info(
    { step: 'basebackup', outcome: 'ok', duration_ms: deps.clock.now() - started, old_dir: moved },
    `base backup of node ${node.id} done in ${took} s and swapped in${moved ? `; the previous data directory is kept at ${moved}` : ''}`,
  );
  return moved;
}

// ---- start and prove

export interface StartOptions {
  startTimeoutMs: number;
  streamTimeoutMs: number;
  /**
   * The caller has just prepared the node (prepareStandby: stopped, standby.signal written), so the look at its
   * disk would only say so again: one ssh round trip saved. The start still runs behind the host-side check for
   * standby.signal (lib/pgctl.ts), so a wrong claim cannot start a primary.
   */
  justPrepared?: boolean;
}

/**
 * Starts the node (unless it runs) and waits until it streams the primary's current timeline. Refuses to start a
 * data directory without standby.signal: that would bring up a second primary (a fenced old primary included).
 */
export async function startStandby(deps: Deps, node: NodeConfig, primary: NodeConfig, opts: StartOptions): Promise<{ timeline: number; primary: NodeConfig }> {
  const { log } = deps;
  const disk = opts.justPrepared ? { standbySignal: true, running: false } : await observeDisk(deps, node);
  if (!disk.standbySignal) {
    const fenced = deps.state.fenced().find((m) => m.node === node.id);
    throw new OperationError(
      `node ${node.id}'s data directory ${node.data_directory} has no standby.signal: starting it would bring up a second primary` +
        `${fenced ? ` (it is fenced since ${fenced.since}: ${fenced.reason})` : ''}; rebuild it first: maas-ha recover ${node.id}`,
    );
  }
  const started = deps.clock.now();
  if (!disk.running) {
    await control(deps, node, 'start', opts.startTimeoutMs).catch((err: unknown) => {
      const where = node.control.method === 'pg_ctl' ? node.control.log_file : `the log of cluster ${node.control.version}/${node.control.name}`;
      throw new OperationError(`${messageOf(err)}; see ${where} on ${node.ssh_host}`, { cause: err });
    });
    log.info({ step: 'start', node_id: node.id, outcome: 'ok', duration_ms: deps.clock.now() - started }, `node ${node.id} started`);
  }
  const deadline = started + opts.startTimeoutMs;
  let o = await observeNode(deps, node, 2000);
  while (!o.reachable && deps.clock.now() < deadline) {
    await deps.clock.sleep(200);
    o = await observeNode(deps, node, 2000);
  }
  if (!o.reachable) throw new OperationError(`node ${node.id} was started but does not accept connections after ${opts.startTimeoutMs} ms (${o.error})`);
  if (!o.inRecovery) {
    // standby.signal was there a moment ago; a primary now means someone else started or promoted it.
    await stopNode(deps, node, 30_000);
    throw new OperationError(`node ${node.id} came up as a primary, not a standby: stopped it again; check ${node.data_directory}/standby.signal`);
  }
  return waitStreaming(deps, node, primary, opts.streamTimeoutMs);
}

/** pg_stat_wal_receiver on the node itself, not pgpool's view: "streaming" in pg_stat_replication can be brief
 *  and false for a standby that cannot follow (docs/lab.md, "A standby that cannot follow still looks streaming"); what counts is the receiver's timeline. */
export async function waitStreaming(deps: Deps, node: NodeConfig, primary: NodeConfig, timeoutMs: number): Promise<{ timeline: number; primary: NodeConfig }> {
  let target = primary;
  let deadline = deps.clock.now() + timeoutMs;
  let followed = false;
  let last = 'no answer yet';
  while (deps.clock.now() < deadline) {
    const [o, p] = await Promise.all([observeNode(deps, node, 1500), observeNode(deps, target, 1500)]);
    if (o.reachable && isWritable(p)) {
      if (streamsFrom(o, target, p.timeline)) return { timeline: p.timeline, primary: target };
      const wr = o.walReceiver;
      last = wr ? `walreceiver ${wr.status} from ${wr.senderHost}, timeline ${wr.receivedTli} (primary: ${p.timeline})` : 'no walreceiver yet';
    } else {
      last = !o.reachable ? o.error : p.reachable ? `node ${target.id} is in recovery` : p.error;
      // The primary it was rebuilt from is gone or a standby now: a failover happened meanwhile. pgpool's
      // follow_primary repoints the node at the new primary; wait for that, once, with a fresh timeout.
      if (!followed && !isWritable(p)) {
        const current = judgePrimaries(await observeAll(deps, 1500)).current;
        const next = deps.config.nodes.find((n) => n.id === current);
        if (next && next.id !== target.id && next.id !== node.id) {
          deps.log.warn(
            { step: 'stream', node_id: node.id, outcome: 'started' },
            `node ${target.id} is no longer the primary (${last}): a failover made node ${next.id} the primary while node ${node.id} was being rebuilt; waiting for node ${node.id} to stream from node ${next.id}`,
          );
          target = next;
          followed = true;
          deadline = deps.clock.now() + timeoutMs;
          continue;
        }
      }
    }
    await deps.clock.sleep(100);
  }
  const moved = followed ? ` (a failover made node ${target.id} the primary while node ${node.id} was being rebuilt from node ${primary.id})` : '';
  throw new OperationError(`node ${node.id} runs but does not stream from node ${target.id} after ${timeoutMs} ms (${last})${moved}; see its PostgreSQL log`);
}

/**
 * After the node streams: keep the newest recovery.keep_old_data_dirs replaced data directories, delete older
 * ones, and clear the fencing marker (a streaming standby is no longer a primary that could come back).
 */
export async function settle(deps: Deps, node: NodeConfig, knownOldDirs?: string[]): Promise<{ kept: string[]; pruned: string[] }> {
  // A caller that just listed them (and knows what it moved aside since) saves the ssh round trip.
  const oldDirs = knownOldDirs ?? (await observeDisk(deps, node)).oldDirs;
  const disk = { oldDirs };
  const prune = oldDirsToPrune(node.data_directory, disk.oldDirs, deps.config.recovery.keep_old_data_dirs);
  // Always one round trip: besides pruning, the node streams, so what its rebuild left beside the data directory
  // (pg_basebackup's log, a configuration saved before a pg_rewind that then failed) has served its purpose.
  const r = await deps.ssh.run(node.ssh_host, shScript(PRUNE_SCRIPT, '--bound', '290', '--tidy', node.data_directory, ...prune), { timeoutMs: 300_000 });
  const pruned = stdoutValues(r.stdout, 'pruned');
  if (r.exitCode !== 0) deps.log.warn({ step: 'prune', node_id: node.id, outcome: 'failed' }, `tidying beside the data directory failed: ${lastLines(r.stderr) || `exit ${r.exitCode}`}`);
  const kept = disk.oldDirs.filter((d) => !pruned.includes(d));
  unfence(deps, node);
  return { kept, pruned };
}

/** Once the node streams as a standby it is no longer a primary that could come back: its fencing marker goes. */
export function unfence(deps: Pick<Deps, 'state' | 'log'>, node: NodeConfig): void {
  if (!deps.state.fenced().some((m) => m.node === node.id)) return;
  deps.state.clearFenced(node.id);
  deps.log.info({ step: 'unfence', node_id: node.id, outcome: 'ok' }, `node ${node.id} streams as a standby: fencing marker cleared`);
}

export interface StartedStandby {
  timeline: number;
  /** The primary it streams from: the one it was rebuilt from, or a new one after a failover meanwhile. */
  primary: NodeConfig;
  kept: string[];
  pruned: string[];
}

/**
 * The rest of a rebuild once prepareStandby is done: start the node, prove it streams, settle. Tidying up after
 * the node streams is best effort everywhere: a failure there is a warning, not a failed rebuild (the node is a
 * standby by then); what was beside the data directory is then reported as kept.
 */
export async function startPrepared(
  deps: Deps,
  facts: RebuildFacts,
  prepared: PrepareResult,
  timeouts: Pick<StartOptions, 'startTimeoutMs' | 'streamTimeoutMs'>,
): Promise<StartedStandby> {
  const { node } = facts;
  const { timeline, primary } = await startStandby(deps, node, facts.primary, { ...timeouts, justPrepared: true });
  // What was beside the data directory before, plus what this run moved there (a fallback re-listed it).
  const known = prepared.rewindFailure ? undefined : [...facts.disk.oldDirs, ...(prepared.oldDir ? [prepared.oldDir] : [])];
  const { kept, pruned } = await settle(deps, node, known).catch((err: unknown) => {
    deps.log.warn({ step: 'settle', node_id: node.id, outcome: 'failed' }, `tidying up after node ${node.id} streams failed: ${messageOf(err)}`);
    return { kept: known ?? [], pruned: [] };
  });
  return { timeline, primary, kept, pruned };
}

export interface RebuildRun {
  plan: RebuildPlan;
  prepared?: PrepareResult;
  timeline?: number;
  kept: string[];
  pruned: string[];
}

/** Everything in one go (follow-primary, `maas-ha recover` without pgpool): plan, prepare, start, prove, settle. */
export async function rebuildAsStandby(
  deps: Deps,
  node: NodeConfig,
  primary: NodeConfig,
  options: Omit<RebuildOptions, 'now'>,
  budgetMs: number,
  facts?: RebuildFacts,
): Promise<RebuildRun> {
  const started = deps.clock.now();
  const f = facts ?? (await gatherFacts(deps, node, primary));
  const plan = planRebuild(f, { ...options, now: new Date(deps.clock.now()) });
  if (plan.kind === 'refuse') return { plan, kept: [], pruned: [] };
  const r = deps.config.recovery;
  const prepared = await prepareStandby(deps, f, plan, { budgetMs: Math.max(10_000, budgetMs - r.start_timeout_ms), now: () => new Date(deps.clock.now()) });
  const remaining = budgetMs - (deps.clock.now() - started);
  const { timeline, kept, pruned } = await startPrepared(deps, f, prepared, {
    startTimeoutMs: Math.max(5000, Math.min(r.start_timeout_ms, remaining)),
    streamTimeoutMs: Math.max(5000, Math.min(r.stream_timeout_ms, remaining)),
  });
  return { plan, prepared, timeline, kept, pruned };
}
