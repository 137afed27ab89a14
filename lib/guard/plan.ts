// What the guard on a database host decides, from what it saw: pure, table-tested (test/unit/guard/plan.test.ts).
//
// The guard exists because maas-ha's fence is `pg_ctl stop` over ssh: it does not survive the old primary's host
// rebooting (PostgreSQL autostarts without standby.signal, as a primary), nor a partition that hid the old
// primary from pgpool and then healed (it never stopped). Patroni's model is "a node without the leader lock
// demotes itself"; maas-ha has no lock store, so the timeline stands in for the lock: a promotion always starts a
// new timeline, so a primary that sees another node on a newer timeline knows the cluster moved on without it.
//
// Two questions, one per moment:
//   check       (periodic, on a running node): must this primary step down?
//   start-check (systemd ExecStartPre, before PostgreSQL starts): may this node start as a primary?
// Both decide only from what the peers' PostgreSQL say over libpq. Fencing markers live on the pgpool host and
// are not visible here. Missing information never causes a demotion: a partitioned guard that hears nobody must
// not stop the one primary the cluster has.

import { isWritable, judgePrimaries, type Answered, type NodeObservation } from '../observe.ts';

/** This node, as seen from its own host. */
export type LocalState =
  /** Answers over libpq and is not in recovery; timeline from pg_walfile_name(pg_current_wal_lsn()). */
  | { kind: 'primary'; timeline: number }
  | { kind: 'standby'; timeline: number }
  /** Not running; the timeline of its last checkpoint (pg_controldata), when it could be read. */
  | { kind: 'stopped'; checkpointTimeline?: number }
  /** Running (or undecidable) but does not answer: starting, shutting down, crashed, or its status failed. */
  | { kind: 'unknown'; why: string };

export interface GuardFacts {
  node: number;
  local: LocalState;
  /** standby.signal exists in the data directory (PostgreSQL would start as a standby). */
  standbySignal: boolean;
  /** Every other configured node, observed over libpq with a short timeout. */
  peers: NodeObservation[];
}

export type GuardPlan =
  | { action: 'none'; level: 'info' | 'warn'; reason: string }
  /** Write standby.signal, then stop PostgreSQL (fast, immediate if fast does not finish), within a bound. */
  | { action: 'demote'; level: 'warn'; reason: string; peer: number }
  /** Write standby.signal before the start, so PostgreSQL comes up as a standby; the start goes ahead. */
  | { action: 'standby-signal'; level: 'warn'; reason: string; peer: number };

const answered = (peers: readonly NodeObservation[]): Answered[] => peers.filter((p): p is Answered => p.reachable);
const role = (o: Answered) => (o.inRecovery ? 'a standby' : 'a primary');
const describe = (o: Answered) => `node ${o.id} is ${role(o)} on timeline ${o.timeline}`;
type Silent = Extract<NodeObservation, { reachable: false }>;
const silent = (peers: readonly NodeObservation[]) => peers.filter((p): p is Silent => !p.reachable).map((p) => `node ${p.id}: ${p.error}`);

/** The periodic check of a running node. Only a primary can be told to step down. */
export function planCheck(f: GuardFacts): GuardPlan {
  const me = `node ${f.node}`;
  const local = f.local;
  switch (local.kind) {
    case 'unknown':
      return { action: 'none', level: 'warn', reason: `${me}: cannot tell its state (${local.why}); nothing to decide` };
    case 'stopped':
      return {
        action: 'none',
        level: 'info',
        reason: `${me} is not running${f.standbySignal ? ' (standby.signal present: it starts as a standby)' : ''}; start-check guards its next start`,
      };
    case 'standby':
      return { action: 'none', level: 'info', reason: `${me} is a standby on timeline ${local.timeline}` };
    case 'primary':
      break;
  }
  const peers = answered(f.peers);
  if (peers.length === 0) {
    return {
      action: 'none',
      level: 'warn',
      reason: `${me} is a primary on timeline ${local.timeline} and no peer answered (${silent(f.peers).join('; ') || 'no peers configured'}): never demoting on missing information`,
    };
  }
  // The one rule of "which writable node is the current primary" (lib/observe.ts), applied to what this host sees.
  const self: NodeObservation = { id: f.node, reachable: true, inRecovery: false, timeline: local.timeline, replication: [], synchronousStandbyNames: '' };
  const judged = judgePrimaries([self, ...f.peers]);
  const newer = peers.filter((p) => p.timeline > local.timeline).sort((a, b) => b.timeline - a.timeline || Number(a.inRecovery) - Number(b.inRecovery));
  if (judged.stale.some((s) => s.node === f.node) && newer[0]) {
    const top = newer[0];
    return {
      action: 'demote',
      level: 'warn',
      peer: top.id,
      reason: `${me} is a primary on timeline ${local.timeline} but ${describe(top)}: the cluster moved on without it; demoting (standby.signal, then stop)`,
    };
  }
  const twins = peers.filter((p) => isWritable(p) && p.timeline === local.timeline);
  if (twins.length) {
    return {
      action: 'none',
      level: 'warn',
      reason: `${me} and ${twins.map((p) => `node ${p.id}`).join(' and ')} are all primaries on timeline ${local.timeline}: cannot tell which one the cluster chose, doing nothing (resolve by hand: maas-ha status)`,
    };
  }
  const older = peers.filter((p) => isWritable(p) && p.timeline < local.timeline);
  const others = [
    ...peers.filter((p) => !older.includes(p)).map(describe),
    ...older.map((p) => `${describe(p)} (older: its own guard demotes it)`),
    ...silent(f.peers).map((s) => `${s} (no answer)`),
  ];
  return { action: 'none', level: older.length ? 'warn' : 'info', reason: `${me} is the primary on timeline ${local.timeline}; ${others.join('; ')}` };
}

/**
 * Before PostgreSQL starts (ExecStartPre). A node with standby.signal starts as a standby: nothing to check. One
 * without it would start as a primary; that is refused (by writing standby.signal, which is harmless: a standby
 * that cannot follow stays read-only until `maas-ha recover`) when a peer shows the cluster has a primary at
 * least as new, or has moved to a newer timeline. When no peer says so, the start is allowed: a whole-cluster cold
 * start must come up, and the periodic check demotes it later if a newer primary appears.
 */
export function planStartCheck(f: GuardFacts): GuardPlan {
  const me = `node ${f.node}`;
  const local = f.local;
  if (f.standbySignal) return { action: 'none', level: 'info', reason: `${me} has standby.signal: it starts as a standby` };
  if (local.kind === 'primary' || local.kind === 'standby') {
    return { action: 'none', level: 'info', reason: `${me} is already running (${local.kind}); the periodic check guards a running node` };
  }
  const ours = local.kind === 'stopped' ? local.checkpointTimeline : undefined;
  const oursText = ours === undefined ? 'its own timeline unknown' : `its last checkpoint on timeline ${ours}`;
  const peers = answered(f.peers);
  const primary = peers
    .filter((p) => isWritable(p) && p.timeline >= (ours ?? 0))
    .sort((a, b) => b.timeline - a.timeline)[0];
  if (primary) {
    return {
      action: 'standby-signal',
      level: 'warn',
      peer: primary.id,
      reason: `${me} has no standby.signal (${oursText}) but ${describe(primary)}: writing standby.signal so it starts as a standby`,
    };
  }
  const movedOn = peers.filter((p) => p.timeline > (ours ?? 0)).sort((a, b) => b.timeline - a.timeline)[0];
  if (movedOn) {
    return {
      action: 'standby-signal',
      level: 'warn',
      peer: movedOn.id,
      reason: `${me} has no standby.signal (${oursText}) but ${describe(movedOn)}: the cluster moved on; writing standby.signal so it starts as a standby`,
    };
  }
  const older = peers.filter(isWritable);
  if (older.length) {
    return {
      action: 'none',
      level: 'warn',
      reason: `${me} starts as a primary (${oursText}): ${older.map(describe).join('; ')}, older (its own guard demotes it)`,
    };
  }
  if (peers.length === 0) {
    return {
      action: 'none',
      level: 'warn',
      reason: `${me} starts as a primary (${oursText}): no peer answered (${silent(f.peers).join('; ') || 'no peers configured'}), so this may be a whole-cluster cold start`,
    };
  }
  return {
    action: 'none',
    level: 'info',
    reason: `${me} starts as a primary (${oursText}): no peer is a primary (${peers.map(describe).join('; ')})`,
  };
}
