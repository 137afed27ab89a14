// How to turn a node back into a standby of the current primary, decided from what was observed: pg_rewind in
// place when its data directory is a rewindable former member, else a base backup built *beside* the old data
// directory and swapped in by rename once complete. Pure and table-tested (test/unit/recovery/plan.test.ts); the
// executor is ./rebuild.ts. Online recovery (pgpool's recovery_1st_stage), `maas-ha recover` and follow-primary's
// fallback all plan here, so they take the same decision from the same facts.
//
// The rule that shapes everything: nothing is lost. An old data directory is never deleted before its
// replacement streams from the primary; it is renamed to `<data_directory>.maas-ha-old-<UTC time>` and pruned
// later, down to recovery.keep_old_data_dirs copies.

import type { NodeConfig } from '../config/types.ts';
import { formatBytes, formatLsn, parseLsnOrUndefined, type Lsn } from '../model/lsn.ts';
import { isWritable, streamsFrom, type NodeObservation } from '../observe.ts';
import type { RecoveryArgs } from '../pgpool/args.ts';
import { ownIncludedConf, type ConfIncludeLine, type OwnConfPath } from './includes.ts';

export const NEW_SUFFIX = '.maas-ha-new';
export const OLD_INFIX = '.maas-ha-old-';

/** Where a base backup is built: beside the data directory, on the same filesystem, so the swap is a rename. */
export const newDirOf = (dataDir: string) => `${dataDir}${NEW_SUFFIX}`;
/** pg_basebackup's progress and errors, beside the data directory (the copy's directory must start empty). */
export const basebackupLogOf = (dataDir: string) => `${dataDir}.maas-ha-basebackup.log`;
/** The node's own configuration files, saved before pg_rewind overwrites them with the primary's. */
export const savedConfOf = (dataDir: string) => `${dataDir}.maas-ha-conf`;

/** The node's main configuration file: in its config_directory (Debian: /etc/postgresql/…), else in its data directory. */
export const mainConfOf = (node: Pick<NodeConfig, 'data_directory' | 'config_directory'>) => `${node.config_directory ?? node.data_directory}/postgresql.conf`;

/** The files the node's configuration includes from its data directory: kept through a rebuild like postgresql.conf. */
export const ownConfOf = (node: NodeConfig, disk: Pick<TargetDisk, 'confIncludes'>): OwnConfPath[] =>
  ownIncludedConf(node.data_directory, mainConfOf(node), disk.confIncludes ?? []);

/** `20250102T030405Z`: sorts in time order as text. */
export function utcStamp(at: Date): string {
  return at.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
}
export const oldDirOf = (dataDir: string, at: Date) => `${dataDir}${OLD_INFIX}${utcStamp(at)}`;

/** The replaced data directories to delete so that at most `keep` remain (the newest ones). */
export function oldDirsToPrune(dataDir: string, oldDirs: readonly string[], keep: number): string[] {
  const ours = oldDirs.filter((d) => d.startsWith(`${dataDir}${OLD_INFIX}`)).sort();
  return keep >= ours.length ? [] : ours.slice(0, ours.length - keep);
}

// ---- facts

/** What pg_controldata says about a data directory (LC_ALL=C labels). */
export interface ControlData {
  systemIdentifier?: string;
  state?: string;
  timeline?: number;
  walLogHints?: boolean;
  checksums?: boolean;
}

export function parseControlData(text: string): ControlData {
  const field = (label: string) => new RegExp(`^${label.replace(/[()']/g, '\\$&')}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const tli = field("Latest checkpoint's TimeLineID");
  const hints = field('wal_log_hints setting');
  const checksum = field('Data page checksum version');
  return {
    systemIdentifier: field('Database system identifier'),
    state: field('Database cluster state'),
    timeline: tli !== undefined && /^\d+$/.test(tli) ? Number(tli) : undefined,
    walLogHints: hints === undefined ? undefined : hints === 'on',
    checksums: checksum === undefined ? undefined : checksum !== '0',
  };
}

/** How far a stopped node's WAL had been replayed, and on which timeline. */
export interface RecoveryPosition {
  lsn: Lsn;
  timeline: number;
}

/**
 * From pg_controldata: the later of the latest checkpoint (restartpoint, on a standby) and the minimum recovery
 * ending location, with that position's own timeline. A standby's checkpoint timeline alone can be stale (it
 * replayed into a newer timeline since its last restartpoint); the minimum recovery point carries the newer one.
 */
export function parseRecoveryPosition(text: string): RecoveryPosition | undefined {
  const field = (label: string) => new RegExp(`^${label.replace(/[()']/g, '\\$&')}:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  const ckpt = parseLsnOrUndefined(field('Latest checkpoint location'));
  const ckptTli = num(field("Latest checkpoint's TimeLineID"));
  const minRec = parseLsnOrUndefined(field('Minimum recovery ending location'));
  const minRecTli = num(field("Min recovery ending loc's timeline"));
  if (ckpt === undefined || ckptTli === undefined) return undefined;
  if (minRec !== undefined && minRecTli !== undefined && minRecTli > 0 && minRec >= ckpt) return { lsn: minRec, timeline: minRecTli };
  return { lsn: ckpt, timeline: ckptTli };
}

/** pg_controldata's states of a standby that was not promoted: crashed (in archive recovery) or shut down cleanly. */
const STANDBY_STATES = new Set(['in archive recovery', 'shut down in recovery']);

/** The target's disk as the facts script (./scripts.ts) reports it over ssh. */
export interface TargetDisk {
  datadirExists: boolean;
  /** The data directory exists and holds nothing. */
  empty: boolean;
  /** PG_VERSION: a cluster lives there. */
  pgVersion?: string;
  /** A live postmaster owns the data directory (postmaster.pid names a running, non-zombie process). */
  running: boolean;
  standbySignal: boolean;
  newExists: boolean;
  /** The copy beside holds a cluster and our standby.signal: it only waits for its swap. */
  newComplete: boolean;
  parentExists: boolean;
  /** A file could be created: false on a read-only filesystem or with wrong ownership. */
  parentWritable: boolean;
  datadirWritable: boolean;
  freeBytes?: number;
  sizeBytes?: number;
  oldDirs: string[];
  control?: ControlData;
  controlError?: string;
  /** Where its WAL replay had got to (pg_controldata), when it holds a cluster. */
  position?: RecoveryPosition;
  /** The include directives of its configuration files (see ./includes.ts). */
  confIncludes?: ConfIncludeLine[];
}

export function parseTargetDisk(stdout: string): TargetDisk {
  const kv = new Map<string, string>();
  const oldDirs: string[] = [];
  const control: string[] = [];
  const confIncludes: ConfIncludeLine[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('control: ')) control.push(line.slice('control: '.length));
    else if (line.startsWith('include: ') && line.includes('\t')) {
      const rest = line.slice('include: '.length);
      const tab = rest.indexOf('\t');
      confIncludes.push({ file: rest.slice(0, tab), line: rest.slice(tab + 1) });
    } else {
      const m = /^([a-z_]+)=(.*)$/.exec(line);
      if (!m) continue;
      if (m[1] === 'old') oldDirs.push(m[2]!);
      else kv.set(m[1]!, m[2]!);
    }
  }
  const flag = (k: string) => kv.get(k) === '1';
  const kb = (k: string) => (/^\d+$/.test(kv.get(k) ?? '') ? Number(kv.get(k)) * 1024 : undefined);
  const pgVersion = kv.get('pg_version')?.trim() || undefined;
  const controlText = control.join('\n');
  const parsed = controlText ? parseControlData(controlText) : undefined;
  const usable = parsed?.systemIdentifier !== undefined;
  return {
    datadirExists: flag('datadir'),
    empty: flag('empty'),
    pgVersion,
    running: flag('running'),
    standbySignal: flag('standby_signal'),
    newExists: flag('new'),
    newComplete: flag('new_complete'),
    parentExists: flag('parent'),
    parentWritable: flag('parent_writable'),
    datadirWritable: flag('writable'),
    freeBytes: kb('free_kb'),
    sizeBytes: kb('size_kb'),
    oldDirs: oldDirs.sort(),
    control: usable ? parsed : undefined,
    controlError: pgVersion && !usable ? controlText.trim().split('\n').slice(-1)[0] || 'pg_controldata printed nothing' : undefined,
    position: usable ? parseRecoveryPosition(controlText) : undefined,
    confIncludes,
  };
}

/** The current primary, the source of every rebuild. */
export interface PrimaryFacts {
  id: number;
  systemIdentifier: string;
  /** Major version, as PG_VERSION writes it ("15"). */
  major: string;
  timeline: number;
  /** Sum of pg_database_size(): what a base backup copies, roughly. */
  sizeBytes: number;
  /** Tablespaces other than pg_default/pg_global (their locations). */
  tablespaces: string[];
  /** pg_current_wal_lsn() when observed: a stopped standby at or behind it on this timeline only needs a start. */
  lsn?: Lsn;
}

export interface RebuildFacts {
  node: NodeConfig;
  primary: NodeConfig;
  primaryFacts: PrimaryFacts;
  disk: TargetDisk;
  /** What the node's PostgreSQL says, when it answers. */
  observation: NodeObservation;
}

export interface RebuildOptions {
  method: 'auto' | 'rewind' | 'basebackup';
  /** Rebuild even a healthy standby, or a node running as a second primary. */
  force: boolean;
  /** A node that never was a member: its data directory must not already hold this cluster. */
  initial: boolean;
  /** Whether a base backup may be used at all (as the method, or when pg_rewind fails). */
  basebackup: boolean;
  /** When the plan is made: names the directory the old data goes to. */
  now: Date;
  /** Why a base backup is not allowed, for the refusal (follow-primary: recovery.follow_basebackup is off). */
  basebackupOffBecause?: string;
}

export type Method = 'rewind' | 'basebackup';

/**
 * How a rebuild is carried out: `start` is a stopped standby whose WAL is a prefix of the primary's, which needs
 * no rebuild at all (its standby settings are rewritten, then it is started); `resume` finishes an earlier swap.
 */
export type RebuildMethod = Method | 'resume' | 'start';

/**
 * The method in the operator's words, for every line that names one (CLI, hooks, follow-primary).
 * `rewindFailure`: pg_rewind failed and a base backup replaced it, with pg_rewind's words; '' when they are not
 * known (pgpool ran the rebuild and only the replaced directory beside the data directory tells).
 */
export function describeMethod(method: RebuildMethod, rewindFailure?: string): string {
  if (method === 'start') return 'a start (no rebuild needed)';
  if (method === 'resume') return 'finishing an earlier swap';
  if (method === 'rewind') return 'pg_rewind';
  if (rewindFailure === undefined) return 'base backup';
  return rewindFailure ? `base backup (pg_rewind failed: ${rewindFailure})` : 'base backup (pg_rewind failed)';
}

/** The planned method, with how much a base backup copies: the headline of `maas-ha recover`. */
export function describePlannedMethod(plan: Extract<RebuildPlan, { kind: 'rebuild' }>): string {
  return plan.method === 'basebackup' ? `${describeMethod('basebackup')} (about ${formatBytes(plan.copyBytes ?? 0)})` : describeMethod(plan.method);
}

/**
 * Why a rebuild is refused, for callers that act on it (`recover --json` reports it): the node is the primary, it
 * runs as a second primary (--force rebuilds it), it is a healthy standby (nothing to do), --initial found the
 * cluster already there, or it cannot be done as things stand (the disk, the method, the primary's layout).
 */
export type RefusalReason = 'is-primary' | 'second-primary' | 'healthy-standby' | 'already-initialised' | 'maintenance' | 'not-possible';

export type RebuildPlan =
  | { kind: 'refuse'; why: string; reason: RefusalReason }
  | {
      kind: 'rebuild';
      /** `resume`: an earlier attempt left a complete copy beside an absent data directory; only the swap is left.
       *  `start`: a stopped standby whose WAL is a prefix of the primary's; nothing to rebuild. */
      method: RebuildMethod;
      why: string;
      /** The node's PostgreSQL runs and must be stopped first. */
      stop: boolean;
      /** pg_rewind may fall back to a base backup (the old data directory moved aside, never deleted). */
      fallback: boolean;
      /** An unfinished copy of an earlier attempt is in the way (it never was the node's data). */
      removeStaleNew: boolean;
      newDir: string;
      /** Where the current data directory goes (base backup of a non-empty directory). */
      oldDir?: string;
      /** Roughly how much a base backup copies. */
      copyBytes?: number;
    };

/** Room for the WAL streamed during the copy and for filesystem slack, on top of the database size. */
export const COPY_HEADROOM_BYTES = 64 * 1024 * 1024;

/** Why pg_rewind cannot work on this data directory, or undefined when it can. */
export function whyNotRewindable(disk: TargetDisk, p: PrimaryFacts): string | undefined {
  if (!disk.datadirExists) return 'there is no data directory';
  if (!disk.pgVersion) return disk.empty ? 'the data directory is empty' : 'the data directory holds no cluster (no PG_VERSION)';
  if (disk.pgVersion !== p.major) return `it holds PostgreSQL ${disk.pgVersion}, the primary runs ${p.major}`;
  if (!disk.control) return `pg_controldata cannot read it (${disk.controlError ?? 'no output'})`;
  if (disk.control.systemIdentifier !== p.systemIdentifier) {
    return `it holds another cluster (system identifier ${disk.control.systemIdentifier}, the primary's is ${p.systemIdentifier})`;
  }
  if (disk.control.walLogHints === false && disk.control.checksums === false) {
    return 'neither wal_log_hints nor data checksums were on, which pg_rewind needs';
  }
  return undefined;
}

/**
 * Why the node needs nothing but a start, or undefined when it needs more: it is stopped, has standby.signal,
 * pg_controldata says it was a standby (crashed: "in archive recovery", or "shut down in recovery"), it holds this
 * cluster, and its WAL reached no further than the primary's on the primary's current timeline, so what it has is a
 * prefix of what the primary has. Conservative: a standby left on an older timeline is rewound (pg_rewind finds out
 * whether it went past the fork), since PostgreSQL 15 has no SQL for the primary's timeline history.
 */
export function whyOnlyStart(disk: TargetDisk, obs: NodeObservation, p: PrimaryFacts): string | undefined {
  const c = disk.control;
  const pos = disk.position;
  if (disk.running || obs.reachable || !disk.standbySignal || !c || !pos || p.lsn === undefined) return undefined;
  if (disk.pgVersion !== p.major || c.systemIdentifier !== p.systemIdentifier || !STANDBY_STATES.has(c.state ?? '')) return undefined;
  if (pos.timeline !== p.timeline || pos.lsn > p.lsn) return undefined;
  const how = c.state === 'in archive recovery' ? 'a standby that stopped without a clean shutdown' : 'a standby shut down cleanly';
  return `${how}, on the primary's timeline ${p.timeline} at ${formatLsn(pos.lsn)} (the primary is at ${formatLsn(p.lsn)}): its WAL is a prefix of the primary's, it only needs to be started`;
}

/** Pure: what to do with the node, or why not. */
export function planRebuild(f: RebuildFacts, o: RebuildOptions): RebuildPlan {
  const { node, primary, primaryFacts: p, disk, observation: obs } = f;
  const refuse = (why: string, reason: RefusalReason = 'not-possible'): RebuildPlan => ({ kind: 'refuse', why, reason });
  const dataDir = node.data_directory;
  if (node.id === primary.id) return refuse(`node ${node.id} is the primary: there is nothing to rebuild it from`, 'is-primary');

  if (isWritable(obs) && !o.force) {
    return refuse(
      `node ${node.id} runs as a second primary (timeline ${obs.timeline}): rebuilding it discards what was written to it since the fork; ` +
        `stop it first, or use --force`,
      'second-primary',
    );
  }
  if (streamsFrom(obs, primary, p.timeline) && !o.force) {
    return refuse(
      `node ${node.id} is a healthy standby: it streams timeline ${p.timeline} from node ${primary.id}; ` +
        `if pgpool shows it down, attach it (pcp_attach_node -n ${node.id}); use --force to rebuild it anyway`,
      'healthy-standby',
    );
  }
  if (o.initial && disk.control?.systemIdentifier === p.systemIdentifier) {
    return refuse(
      `--initial: node ${node.id}'s data directory ${dataDir} already holds this cluster (system identifier ${p.systemIdentifier}); ` +
        `run maas-ha recover ${node.id} without --initial`,
      'already-initialised',
    );
  }
  const stop = disk.running || obs.reachable;
  const newDir = newDirOf(dataDir);

  if (!disk.datadirExists && disk.newComplete) {
    return {
      kind: 'rebuild',
      method: 'resume',
      why: `an earlier attempt left a complete copy at ${newDir} and no data directory: finish its swap`,
      stop: false,
      fallback: false,
      removeStaleNew: false,
      newDir,
    };
  }

  const onlyStart = o.method === 'auto' ? whyOnlyStart(disk, obs, p) : undefined;
  if (onlyStart) {
    if (!disk.datadirWritable) {
      return refuse(
        `node ${node.id}'s data directory ${dataDir} is not writable (read-only filesystem or wrong owner): nothing was changed; fix the disk, then retry`,
      );
    }
    return { kind: 'rebuild', method: 'start', why: onlyStart, stop: false, fallback: false, removeStaleNew: false, newDir };
  }

  const notRewindable = whyNotRewindable(disk, p);
  let method: Method;
  let why: string;
  if (o.method === 'rewind') {
    if (notRewindable) return refuse(`pg_rewind cannot rejoin node ${node.id}: ${notRewindable}`);
    method = 'rewind';
    why = 'pg_rewind was asked for';
  } else if (o.method === 'basebackup') {
    method = 'basebackup';
    why = 'a base backup was asked for';
  } else if (notRewindable) {
    method = 'basebackup';
    why = `pg_rewind cannot work: ${notRewindable}`;
  } else {
    method = 'rewind';
    why = `its data directory is a former member of this cluster (timeline ${disk.control?.timeline ?? '?'}, ${disk.control?.state ?? 'state unknown'})`;
  }
  if (method === 'basebackup' && !o.basebackup) {
    return refuse(`node ${node.id} needs a base backup (${why}), which is not allowed here${o.basebackupOffBecause ? ` (${o.basebackupOffBecause})` : ''}`);
  }

  const parent = dataDir.replace(/\/[^/]*$/, '') || '/';
  if (method === 'rewind' && !disk.datadirWritable) {
    return refuse(
      `node ${node.id}'s data directory ${dataDir} is not writable (read-only filesystem or wrong owner): nothing was changed; fix the disk, then retry`,
    );
  }
  if (method === 'rewind' && (!disk.parentExists || !disk.parentWritable)) {
    // The node's own configuration files are saved in <data_directory>.maas-ha-conf before pg_rewind overwrites them.
    return refuse(
      `cannot save node ${node.id}'s own configuration files beside ${dataDir} before pg_rewind: ${parent} ${disk.parentExists ? 'is not writable' : 'does not exist'} ` +
        `on node ${node.id}'s host (read-only filesystem or wrong owner); nothing was changed; fix the disk, then retry`,
    );
  }
  if (method === 'basebackup') {
    if (!disk.parentExists) return refuse(`${parent} does not exist on node ${node.id}'s host: create it (owned by the PostgreSQL user), then retry`);
    if (!disk.parentWritable) {
      return refuse(
        `cannot build the copy beside ${dataDir}: ${parent} is not writable on node ${node.id}'s host (read-only filesystem or wrong owner); ` +
          `nothing was changed; fix the disk, then retry`,
      );
    }
    if (p.tablespaces.length > 0) {
      return refuse(`the primary has tablespaces (${p.tablespaces.join(', ')}): maas-ha's base backup does not relocate them; rebuild node ${node.id} by hand`);
    }
    const need = p.sizeBytes + COPY_HEADROOM_BYTES;
    if (disk.freeBytes !== undefined && disk.freeBytes < need) {
      const kept = disk.oldDirs.length ? `; replaced data directories kept there: ${disk.oldDirs.join(', ')}` : '';
      return refuse(
        `a base backup needs about ${formatBytes(need)} free in ${parent} on node ${node.id}'s host, only ${formatBytes(disk.freeBytes)} is: ` +
          `nothing was changed; free some space${kept}`,
      );
    }
  }
  return {
    kind: 'rebuild',
    method,
    why,
    stop,
    fallback: method === 'rewind' && o.basebackup,
    removeStaleNew: disk.newExists,
    newDir,
    oldDir: method === 'basebackup' && disk.datadirExists && !disk.empty ? oldDirOf(dataDir, o.now) : undefined,
    copyBytes: method === 'basebackup' ? p.sizeBytes : undefined,
  };
}

/** The plan as numbered steps, for `--dry-run` and for the log. */
export function describePlan(f: RebuildFacts, plan: RebuildPlan, keepOld: number): string[] {
  if (plan.kind === 'refuse') return [`refused: ${plan.why}`];
  const { node, primary } = f;
  const steps: string[] = [];
  const dataDir = node.data_directory;
  if (plan.stop) steps.push(`stop node ${node.id}'s PostgreSQL (it runs ${isWritable(f.observation) ? 'as a primary' : 'as a standby'})`);
  if (plan.removeStaleNew) steps.push(`remove the unfinished copy of an earlier attempt: ${plan.newDir}`);
  const own = ownConfOf(node, f.disk).map((p) => (p.kind === 'dir' ? `${p.rel}/*.conf` : p.rel));
  const ownText = own.length ? `, and the files its configuration includes: ${own.join(', ')}` : '';
  if (plan.method === 'start') {
    steps.push(`nothing to rebuild: ${plan.why}`);
  } else if (plan.method === 'resume') {
    steps.push(`rename ${plan.newDir} to ${dataDir}`);
  } else if (plan.method === 'rewind') {
    steps.push(`CHECKPOINT on node ${primary.id}, then pg_rewind ${dataDir} from node ${primary.id} (${primary.hostname}:${primary.port}), in place`);
    if (f.disk.sizeBytes !== undefined) steps.push(`  data directory today: ${formatBytes(f.disk.sizeBytes)}; pg_rewind copies only what changed since the fork`);
    steps.push(
      plan.fallback
        ? `  if pg_rewind fails: base backup instead (${formatBytes(f.primaryFacts.sizeBytes)}), the rewound directory moved aside, not deleted`
        : '  if pg_rewind fails: stop there (no base backup allowed here)',
    );
    steps.push(`restore the node's own configuration files (pg_rewind copies the primary's)${ownText}`);
  } else {
    steps.push(`base backup of node ${primary.id} (about ${formatBytes(plan.copyBytes ?? 0)}) into ${plan.newDir}, streaming WAL through slot of node ${node.id}`);
    steps.push(`copy the node's own configuration files from ${dataDir} into the copy${ownText}`);
    steps.push(
      plan.oldDir
        ? `swap: ${dataDir} → ${plan.oldDir}${f.disk.sizeBytes !== undefined ? ` (${formatBytes(f.disk.sizeBytes)})` : ''}, then ${plan.newDir} → ${dataDir}`
        : `rename ${plan.newDir} to ${dataDir} (there is no data to keep)`,
    );
  }
  steps.push(`write the standby settings (primary_conninfo host=${primary.hostname} port=${primary.port}, slot, standby.signal)`);
  steps.push(`start node ${node.id} and wait until it streams timeline ${f.primaryFacts.timeline} from node ${primary.id}`);
  steps.push(
    keepOld > 0
      ? `then keep the ${keepOld} newest replaced data director${keepOld === 1 ? 'y' : 'ies'} beside ${dataDir}, delete older ones`
      : 'then delete the replaced data directory (recovery.keep_old_data_dirs is 0)',
  );
  let n = 0;
  return steps.map((s) => (s.startsWith('  ') ? `      ${s.trim()}` : `  ${String(++n).padStart(2)}. ${s}`));
}

// ---- which nodes pgpool means

/** Whether `host`, as pgpool passes it, names this node: pgpool replaces an empty or socket-path backend_hostname by "localhost". */
const isPgpoolHost = (n: NodeConfig, host: string) => n.hostname === host || (host === 'localhost' && (n.hostname === '' || n.hostname.startsWith('/')));

/**
 * The node pgpool asks to recover, from the recovery_1st_stage arguments. pgpool passes its own backend_*
 * settings; maas-ha's config must say the same, or the hook would act on the wrong host or directory.
 */
export function resolveTarget(nodes: readonly NodeConfig[], a: RecoveryArgs): NodeConfig {
  const sameDir = (n: NodeConfig) => n.data_directory === a.targetDataDir;
  const sameHost = (n: NodeConfig) => isPgpoolHost(n, a.targetHost);
  if (a.targetNodeId !== undefined) {
    const n = nodes.find((x) => x.id === a.targetNodeId);
    if (!n) throw new Error(`pgpool asks to recover node ${a.targetNodeId}, which is not in maas-ha's configuration`);
    const diffs = [
      !sameHost(n) ? `host ${a.targetHost} (maas-ha: ${n.hostname})` : '',
      !sameDir(n) ? `data directory ${a.targetDataDir} (maas-ha: ${n.data_directory})` : '',
      a.targetPort !== undefined && a.targetPort !== n.port ? `port ${a.targetPort} (maas-ha: ${n.port})` : '',
    ].filter(Boolean);
    if (diffs.length) {
      throw new Error(`pgpool's backend settings for node ${n.id} differ from maas-ha's: ${diffs.join(', ')}; make backend_*${n.id} in pgpool.conf and nodes[] in maas-ha.yaml identical`);
    }
    return n;
  }
  const matches = nodes.filter((n) => sameHost(n) && sameDir(n) && (a.targetPort === undefined || n.port === a.targetPort));
  if (matches.length === 1) return matches[0]!;
  throw new Error(
    matches.length === 0
      ? `no node in maas-ha's configuration has host ${a.targetHost} and data directory ${a.targetDataDir} (pgpool's backend settings must match nodes[])`
      : `nodes ${matches.map((n) => n.id).join(' and ')} both have host ${a.targetHost} and data directory ${a.targetDataDir}; pgpool older than 4.0 does not say which one it means`,
  );
}

/** The nodes that could be the primary that runs recovery_1st_stage (the caller asks them which one is). */
export function primaryCandidates(nodes: readonly NodeConfig[], a: RecoveryArgs, target: NodeConfig): NodeConfig[] {
  const others = nodes.filter((n) => n.id !== target.id);
  if (a.primaryHost !== undefined) return others.filter((n) => n.hostname === a.primaryHost && n.port === a.primaryPort);
  return others.filter((n) => n.port === a.primaryPort && n.data_directory === a.primaryDataDir);
}

/** The node `pgpool_remote_start host datadir` means. */
export function resolveRemoteStart(nodes: readonly NodeConfig[], host: string, dataDir: string): NodeConfig {
  const matches = nodes.filter((n) => isPgpoolHost(n, host) && n.data_directory === dataDir);
  if (matches.length === 1) return matches[0]!;
  throw new Error(
    matches.length === 0
      ? `pgpool_remote_start: no node in maas-ha's configuration has host ${host} and data directory ${dataDir} (pgpool's backend settings must match nodes[])`
      : `pgpool_remote_start: nodes ${matches.map((n) => n.id).join(' and ')} both have host ${host} and data directory ${dataDir}`,
  );
}
