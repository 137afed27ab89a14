// What one PostgreSQL node says about itself, in one bounded query (two for a standby whose WAL receiver is
// gone). Used by `maas-ha status`, by the failover decision (which standby is most advanced) and by recovery, so
// all of them see the cluster the same way; `judgePrimaries` below is the one rule for "which writable node is
// the current primary", used by all of them too.

import type { NodeConfig } from './config/types.ts';
import { causeCode, messageOf } from './errors.ts';
import type { Deps } from './model/ports.ts';
import { parseLsnOrUndefined, type Lsn } from './model/lsn.ts';

export interface WalReceiver {
  status: string;
  senderHost: string | null;
  senderPort: number | null;
  receivedTli: number | null;
  slotName: string | null;
}

export interface ReplicationPeer {
  applicationName: string;
  clientAddr: string | null;
  state: string;
  syncState: string;
  flushLsn?: Lsn;
  replayLsn?: Lsn;
}

export type NodeObservation =
  | {
      id: number;
      reachable: false;
      error: string;
      /**
       * The host answered and nothing listens on the port (ECONNREFUSED): the postmaster is gone. Unlike a
       * timeout (host down, or a partition that may hide a running primary), this proves it accepts no writes.
       */
      refused?: boolean;
    }
  | {
      id: number;
      reachable: true;
      inRecovery: boolean;
      timeline: number;
      /**
       * Where `timeline` comes from. 'primary': the WAL it writes; 'receiver': the timeline its live WAL receiver
       * streams; 'identify': IDENTIFY_SYSTEM on a replication connection (the timeline the standby replays);
       * 'checkpoint': its last checkpoint or restartpoint, which can be many timelines old on a standby and is
       * never used to rank (the fallback when neither of the others answers). Absent in hand-built observations:
       * treated as known.
       */
      timelineSource?: TimelineSource;
      /** Primary: pg_current_wal_lsn(). */
      currentLsn?: Lsn;
      /** Standby: WAL received (flushed by the walreceiver) and replayed. */
      receiveLsn?: Lsn;
      replayLsn?: Lsn;
      walReceiver?: WalReceiver;
      replication: ReplicationPeer[];
      synchronousStandbyNames: string;
    };

export type TimelineSource = 'primary' | 'receiver' | 'identify' | 'checkpoint';

/** True when the observation's timeline is what the node writes or replays now, not a stale checkpoint's. */
export const timelineKnown = (o: NodeObservation): boolean => o.reachable && o.timelineSource !== 'checkpoint';

export const OBSERVE_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS primary_tli,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  (SELECT json_build_object('status', status, 'sender_host', sender_host, 'sender_port', sender_port,
                            'received_tli', received_tli, 'slot_name', slot_name)
     FROM pg_stat_wal_receiver LIMIT 1) AS wal_receiver,
  (SELECT coalesce(json_agg(json_build_object('application_name', application_name, 'client_addr', client_addr::text,
                   'state', state, 'sync_state', sync_state, 'flush_lsn', flush_lsn::text, 'replay_lsn', replay_lsn::text)), '[]')
     FROM pg_stat_replication) AS replication,
  current_setting('synchronous_standby_names') AS synchronous_standby_names`;

interface Row {
  in_recovery: boolean;
  primary_tli: number | null;
  checkpoint_tli: number;
  current_lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  wal_receiver: { status: string; sender_host: string | null; sender_port: number | null; received_tli: number | null; slot_name: string | null } | null;
  replication: { application_name: string; client_addr: string | null; state: string; sync_state: string; flush_lsn: string | null; replay_lsn: string | null }[];
  synchronous_standby_names: string;
}

/** Pure: a query row (and, for a standby, IDENTIFY_SYSTEM's timeline when it answered) to an observation. */
export function toObservation(id: number, row: Row, identifiedTli?: number): NodeObservation {
  const wr = row.wal_receiver;
  const walReceiver: WalReceiver | undefined = wr
    ? { status: wr.status, senderHost: wr.sender_host, senderPort: wr.sender_port, receivedTli: wr.received_tli, slotName: wr.slot_name }
    : undefined;
  // A standby's checkpoint timeline lags (a restartpoint comes only every checkpoint_timeout), so it is only
  // the fallback; a live receiver's received_tli, or IDENTIFY_SYSTEM's replay timeline, is what it is on.
  const streamingTli = walReceiver?.status === 'streaming' && walReceiver.receivedTli ? walReceiver.receivedTli : undefined;
  let timeline: number;
  let timelineSource: TimelineSource;
  if (!row.in_recovery) {
    timeline = row.primary_tli ?? row.checkpoint_tli;
    timelineSource = row.primary_tli !== null ? 'primary' : 'checkpoint';
  } else if (streamingTli !== undefined || identifiedTli !== undefined) {
    timeline = Math.max(streamingTli ?? 0, identifiedTli ?? 0);
    timelineSource = streamingTli !== undefined && streamingTli >= (identifiedTli ?? 0) ? 'receiver' : 'identify';
  } else {
    timeline = row.checkpoint_tli;
    timelineSource = 'checkpoint';
  }
  return {
    id,
    reachable: true,
    inRecovery: row.in_recovery,
    timeline,
    timelineSource,
    currentLsn: parseLsnOrUndefined(row.current_lsn),
    receiveLsn: parseLsnOrUndefined(row.receive_lsn),
    replayLsn: parseLsnOrUndefined(row.replay_lsn),
    walReceiver,
    replication: row.replication.map((r) => ({
      applicationName: r.application_name,
      clientAddr: r.client_addr,
      state: r.state,
      syncState: r.sync_state,
      flushLsn: parseLsnOrUndefined(r.flush_lsn),
      replayLsn: parseLsnOrUndefined(r.replay_lsn),
    })),
    synchronousStandbyNames: row.synchronous_standby_names,
  };
}

/**
 * The timeline a standby replays, from IDENTIFY_SYSTEM on a replication connection (PostgreSQL answers it on a
 * standby with its replay timeline). Needs a `replication` line for maas-ha's user in pg_hba.conf (preflight
 * checks it); undefined when refused or silent, and the caller then does not rank by the timeline.
 */
async function identifiedTimeline(deps: Pick<Deps, 'pg'>, node: NodeConfig, timeoutMs?: number): Promise<number | undefined> {
  try {
    const rows = await deps.pg.query<{ timeline: string | number }>(
      { host: node.hostname, port: node.port, replicationConnection: true },
      'IDENTIFY_SYSTEM',
      [],
      timeoutMs ? { timeoutMs } : {},
    );
    const tli = Number(rows[0]?.timeline);
    return Number.isInteger(tli) && tli > 0 ? tli : undefined;
  } catch {
    return undefined;
  }
}

export async function observeNode(deps: Pick<Deps, 'pg'>, node: NodeConfig, timeoutMs?: number): Promise<NodeObservation> {
  try {
    const rows = await deps.pg.query<Row & Record<string, unknown>>({ host: node.hostname, port: node.port }, OBSERVE_SQL, [], timeoutMs ? { timeoutMs } : {});
    const row = rows[0];
    if (!row) return { id: node.id, reachable: false, error: 'no row returned' };
    const streaming = row.wal_receiver?.status === 'streaming' && row.wal_receiver.received_tli;
    // A standby without a live receiver (always, right after its primary died): ask what it replays. The node
    // has just answered, so this second round trip is as quick; it gets the same bound.
    const identified = row.in_recovery && !streaming ? await identifiedTimeline(deps, node, timeoutMs) : undefined;
    return toObservation(node.id, row, identified);
  } catch (err) {
    return { id: node.id, reachable: false, error: messageOf(err), ...(causeCode(err) === 'ECONNREFUSED' ? { refused: true } : {}) };
  }
}

export function observeAll(deps: Pick<Deps, 'pg' | 'config'>, timeoutMs?: number): Promise<NodeObservation[]> {
  return Promise.all(deps.config.nodes.map((n) => observeNode(deps, n, timeoutMs)));
}

/** An observation of a node that answered. */
export type Answered = Extract<NodeObservation, { reachable: true }>;

/**
 * A node that accepts writes: answers and is not in recovery. The one definition of "runs as a primary"; which
 * writable node is *the* primary is judgePrimaries' (below). The guard narrows only when true: a node that is not
 * writable may still have answered (a standby).
 */
export const isWritable = (o: NodeObservation): o is Answered & { inRecovery: false } => o.reachable && !o.inRecovery;

/**
 * The one definition of "streams timeline `timeline` from `from`": its WAL receiver is streaming, connected to
 * that node's hostname *and* port (two nodes may share a host), on that timeline. pg_stat_wal_receiver on the node
 * itself, not pgpool's view (docs/lab.md, "A standby that cannot follow still looks streaming").
 */
export function streamsFrom(o: NodeObservation, from: Pick<NodeConfig, 'hostname' | 'port'>, timeline: number): boolean {
  const wr = o.reachable ? o.walReceiver : undefined;
  return wr?.status === 'streaming' && wr.senderHost === from.hostname && wr.senderPort === from.port && wr.receivedTli === timeline;
}

export interface PrimaryJudgement {
  /** The one writable node that is the cluster's current primary, if there is exactly one. */
  current?: number;
  /** Writable nodes that must not be written to: fenced, or on a timeline the cluster has left. Each with why. */
  stale: { node: number; why: string }[];
  /** Writable nodes that cannot be told apart (same timeline, nothing fences either): a split brain to resolve by hand. */
  ambiguous: number[];
  /** Why `current` is (or why nobody is) the current primary, as a phrase. */
  why: string;
}

/**
 * The one rule for "which writable node is the current primary", used by failover, status and recovery alike.
 * A writable node is the current primary only if maas-ha has not fenced it, no node it can see is on a newer
 * timeline (a node restarted writable from an old data directory, e.g. by a reboot with autostart, sits on the
 * timeline the cluster left), and no other writable node shares its timeline. `promotedByUs`: the node this
 * cluster's own failover promoted in the event at hand (its journal), which counts even before standbys follow.
 * Timelines from a stale checkpoint can only be older than the truth, so a newer one there still proves a
 * writable node stale; they never prove one current.
 */
export function judgePrimaries(
  obs: readonly NodeObservation[],
  opts: { fenced?: readonly (number | { node: number; timeline?: number })[]; promotedByUs?: number } = {},
): PrimaryJudgement {
  // A marker with a timeline applies while the node is not on a newer one (it was promoted since, legitimately).
  const fencedStill = (w: { id: number; timeline: number }) =>
    (opts.fenced ?? []).some((m) => (typeof m === 'number' ? m === w.id : m.node === w.id && (m.timeline === undefined || w.timeline <= m.timeline)));
  const writable = obs.filter(isWritable);
  const stale: { node: number; why: string }[] = [];
  const live: (typeof writable)[number][] = [];
  for (const w of writable) {
    if (opts.promotedByUs === w.id) {
      live.push(w);
      continue;
    }
    if (fencedStill(w)) {
      stale.push({ node: w.id, why: `node ${w.id} accepts writes but maas-ha fenced it as a former primary` });
      continue;
    }
    const newer = obs.filter((o) => o.reachable && o.id !== w.id && o.timeline > w.timeline);
    if (newer.length) {
      const top = newer.reduce((a, b) => (b.reachable && a.reachable && b.timeline > a.timeline ? b : a));
      stale.push({ node: w.id, why: `node ${w.id} accepts writes on timeline ${w.timeline}, but node ${top.id} is on timeline ${top.reachable ? top.timeline : '?'}: a stale former primary` });
      continue;
    }
    live.push(w);
  }
  if (live.length === 1) {
    const p = live[0]!;
    return { current: p.id, stale, ambiguous: [], why: opts.promotedByUs === p.id ? `promoted by this failover` : `the only writable node on the newest timeline ${p.timeline}` };
  }
  if (live.length === 0) return { stale, ambiguous: [], why: writable.length ? 'every writable node is stale' : 'no node accepts writes' };
  const ids = live.map((w) => w.id);
  return { stale, ambiguous: ids, why: `nodes ${ids.join(' and ')} all accept writes on timeline ${Math.max(...live.map((w) => w.timeline))}: split brain` };
}
