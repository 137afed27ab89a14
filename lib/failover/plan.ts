// The failover decision, whole and pure: from what was observed (the old primary's port, every other node, this
// event's journal, maas-ha's fencing markers) to what the failover hook does, in order. The hook executes it
// (./failover.ts) and `maas-ha plan failover` prints it, so the operator sees the very decision a failover
// would take now. Table-tested in test/unit/failover/plan.test.ts.
//
// What it decides, and from what:
// - fence order: promote first only when the old primary's port *refused* a TCP connect (the host answered and no
//   postmaster listens: it takes no writes). An open port or a silent host (down, or a partition hiding a running
//   primary) is fenced before anything is promoted. A refused connect is answered in microseconds on any host, so
//   this does not depend on how fast the machine is.
// - a fence an unfinished run of this same event already did is skipped only if the port refuses now: a primary
//   started again since then is fenced again.
// - a writable node other than the failed one is adopted as the new primary only if it is the current primary by
//   the one rule (lib/observe.ts judgePrimaries); a stale one (fenced, or on a timeline the cluster left) is
//   fenced before the promotion, and the standbys are compared as usual.
// - the candidate: by data (./choose.ts); after a clean stop of a running old primary (a switchover, or a
//   primary pgpool gave up on while it ran) every standby that streamed has all its WAL, so pgpool's %m — the
//   node `pcp_promote_node -s N` names and pgpool will record as the primary — is promoted once it holds as much
//   as any other, or nobody is.
// - a node in maintenance is never promoted, and one holding more WAL than every other candidate stops the
//   promotion (./choose.ts): its planned work must not cost acknowledged writes.

import type { Config } from '../config/types.ts';
import type { FencedMarker } from '../model/ports.ts';
import { formatLsn, type Lsn } from '../model/lsn.ts';
import { judgePrimaries, type NodeObservation } from '../observe.ts';
import type { StopResult } from '../pgctl.ts';
import { chooseCandidate, type Candidate, type Choice } from './choose.ts';
import type { Resume } from './journal.ts';

/** The old primary's PostgreSQL port, probed with one bounded TCP connect. */
export type PortProbe = 'refused' | 'open' | 'silent';

export interface FailoverFacts {
  config: Config;
  failedNode: number;
  oldPrimary?: number;
  /** pgpool's %m. */
  newMain?: number;
  /** Every node but the failed one. */
  observations: NodeObservation[];
  oldPort: PortProbe;
  /** What an unfinished earlier run of this same event did. */
  resume?: Resume;
  fenced: readonly FencedMarker[];
  /** Nodes in maintenance (lib/maintenance.ts): never promoted, never repointed. */
  maintenance?: readonly number[];
  /** Second pass: how the old primary's fence ended in this run. */
  fenceOutcome?: StopResult['outcome'];
}

export type FenceOrder =
  /** Stop it (over ssh) before anything is promoted. */
  | 'first'
  /** Its postmaster is gone: promote, and fence alongside (standby.signal, so it can never start writable). */
  | 'alongside'
  /** An unfinished run of this event stopped it, and its port still refuses. */
  | 'skip';

export type Decision =
  | { kind: 'adopt'; node: number; why: string }
  | { kind: 'promote'; node: number; why: string; candidate: Candidate; considered: Candidate[]; reasons: string[] }
  /** Promote %m once it has caught up with `lsn` (bounded), else nobody. */
  | { kind: 'await-target'; node: number; lsn: Lsn; why: string; candidate: Candidate }
  /** why: the log line; summary: the same, as the closing line's phrase. */
  | { kind: 'none'; why: string; summary?: string; reasons: string[] };

export interface FailoverPlan {
  fence: { order: FenceOrder; why: string };
  /** Writable nodes to fence before promoting: a split brain. */
  staleFences: { node: number; why: string }[];
  decision: Decision;
  /** Look at the standbys again after the fence: a cleanly stopped primary's last WAL reaches them only then. */
  reobserveAfterFence: boolean;
  /** The new primary needs a CHECKPOINT (pg_rewind of the others needs its timeline in one). */
  checkpoint: { skip: boolean; why: string };
  /** Synchronous replication covered these standbys; undefined: off. */
  synchronousNames?: string[];
  /** What follows the promotion (or the adoption): undefined when nobody becomes primary. */
  followers?: Followers;
  /**
   * pgpool passed no new main node (%m = -1): it has no backend up (its follow_primary had detached the standbys
   * when the new primary died too), so it would look for a primary among none and set none. The hook queues a
   * pcp_attach_node of the node it promoted, which pgpool carries out once this failover ends.
   */
  attachInPgpool?: { node: number; why: string };
}

/**
 * The standbys the new primary keeps, and what its commits wait for. `hold`: commits wait for `count` of the
 * standbys that follow it (the hook repoints the running ones right away), so no write is acknowledged that only
 * the new primary holds, and a second failure before pgpool's follow_primary runs loses nothing; if they do not
 * stream within the hook's budget the setting is relaxed after all. `relax`: fewer running standbys than
 * required, so commits would wait forever: relax now (the failback hook restores it when one is back).
 */
export interface Followers {
  primary: number;
  repoint: number[];
  synchronous: 'hold' | 'relax' | 'off';
  why: string;
}

/** Pure: which standbys follow `primary` straight away, and whether its commits may wait for them. */
export function planFollowers(config: Config, primary: number, observations: readonly NodeObservation[], exclude: readonly number[] = []): Followers {
  const repoint = observations.filter((o) => o.reachable && o.inRecovery && o.id !== primary && !exclude.includes(o.id)).map((o) => o.id);
  const { mode, count } = config.replication.synchronous;
  const list = repoint.length ? `node${repoint.length > 1 ? 's' : ''} ${repoint.join(', ')}` : 'no standby';
  if (mode === 'off') return { primary, repoint, synchronous: 'off', why: `repoint ${list} to node ${primary}; synchronous replication is off` };
  if (repoint.length >= count) {
    return {
      primary,
      repoint,
      synchronous: 'hold',
      why: `repoint ${list} to node ${primary} now; its commits wait for ${mode.toUpperCase()} ${count} of them, so nothing is acknowledged that only node ${primary} holds (relaxed if none streams in time)`,
    };
  }
  return {
    primary,
    repoint,
    synchronous: 'relax',
    why: `${list} running to follow node ${primary}, ${count} required: relax synchronous replication, writes continue without a synchronous copy until a standby is back`,
  };
}

const STOPPED: readonly string[] = ['not-running', 'stopped-fast', 'stopped-immediate'];

export function fenceOrder(oldPort: PortProbe, failed: number, resume: Resume | undefined): { order: FenceOrder; why: string } {
  if (oldPort === 'refused' && resume?.fenced && STOPPED.includes(resume.fenced)) {
    return { order: 'skip', why: `old primary node ${failed} was fenced (${resume.fenced}) by unfinished run ${resume.runId} of this event, and its port still refuses` };
  }
  if (oldPort === 'refused') return { order: 'alongside', why: `old primary node ${failed} refuses connections (postmaster gone): promote first, fence alongside` };
  if (oldPort === 'open') return { order: 'first', why: `old primary node ${failed} still accepts connections: stop it before promoting` };
  return { order: 'first', why: `old primary node ${failed} does not answer (host down, or a partition that may hide a running primary): fence it before promoting` };
}

/** The standbys that synchronous replication covered on `primary`: the names maas-ha puts in the setting. */
export function synchronousSet(config: Config, primary: number): string[] {
  return config.nodes.filter((n) => n.id !== primary).map((n) => n.name);
}

export function planFailover(f: FailoverFacts): FailoverPlan {
  const { config, failedNode, resume } = f;
  const fence = fenceOrder(f.oldPort, failedNode, resume);
  const synchronousNames = config.replication.synchronous.mode === 'off' ? undefined : synchronousSet(config, failedNode);
  const judged = judgePrimaries(f.observations, { fenced: f.fenced, promotedByUs: resume?.promoted });
  const staleFences = judged.stale;
  const reobserveAfterFence = fence.order === 'first' && f.fenceOutcome === undefined;
  const checkpointFor = (node: number) =>
    resume?.promoted === node && resume.checkpointed
      ? { skip: true, why: `run ${resume.runId} already checkpointed node ${node}` }
      : { skip: false, why: `pg_rewind of the other nodes needs node ${node}'s new timeline in a checkpoint` };
  const base = { fence, staleFences, reobserveAfterFence, synchronousNames };
  const followersOf = (node: number) => ({
    followers: planFollowers(config, node, f.observations, [...staleFences.map((x) => x.node), ...(f.maintenance ?? [])]),
    ...(f.newMain === undefined
      ? { attachInPgpool: { node, why: `pgpool has no backend up (its new main node is -1): ask it to attach node ${node}, which it does once this failover ends` } }
      : {}),
  });

  if (judged.current !== undefined) {
    const by = resume?.promoted === judged.current ? ` (promoted by run ${resume.runId})` : '';
    return {
      ...base,
      decision: { kind: 'adopt', node: judged.current, why: `node ${judged.current} is already the primary${by}: ${judged.why}` },
      checkpoint: checkpointFor(judged.current),
      ...followersOf(judged.current),
    };
  }
  if (judged.ambiguous.length) {
    return { ...base, decision: { kind: 'none', why: `refusing to promote another: ${judged.why}`, reasons: [judged.why] }, checkpoint: { skip: true, why: 'nothing promoted' } };
  }
  // Stale writable nodes are fenced first and take no part in the choice (they are not standbys).
  const choice: Choice = chooseCandidate({
    config,
    failedNode,
    newMain: f.newMain,
    observations: f.observations.filter((o) => !staleFences.some((s) => s.node === o.id)),
    synchronousNames,
    maintenance: f.maintenance,
  });
  if (choice.kind !== 'promote') {
    const reasons = choice.reasons;
    return { ...base, decision: { kind: 'none', why: `no standby fit for promotion: ${reasons.join('; ')}`, summary: `no standby fit for promotion (${reasons.join('; ')})`, reasons }, checkpoint: { skip: true, why: 'nothing promoted' } };
  }
  const splitNote = staleFences.length ? ` (split brain: ${staleFences.map((s) => s.why).join('; ')}; fenced first)` : '';
  // After a clean stop of a running primary every standby that streamed holds its last WAL: pgpool's %m (the
  // switchover target, which pgpool records as the primary) must be the one promoted, once it holds as much.
  if (f.fenceOutcome === 'stopped-fast' && f.newMain !== undefined && f.newMain !== choice.node.id) {
    const target = choice.considered.find((c) => c.id === f.newMain);
    if (!target) {
      const reasons = [`pgpool's new main node ${f.newMain} cannot be promoted (${choice.reasons.filter((r) => r.startsWith(`node ${f.newMain} `)).join('; ') || 'not a fit standby'})`, ...choice.reasons];
      return {
        ...base,
        decision: { kind: 'none', why: `old primary node ${failedNode} stopped cleanly and pgpool expects node ${f.newMain} as the new primary, which cannot be promoted: promoting nobody rather than a node pgpool would not use; ${reasons[0]}`, reasons },
        checkpoint: { skip: true, why: 'nothing promoted' },
      };
    }
    if (target.lsn < choice.node.lsn) {
      return {
        ...base,
        decision: {
          kind: 'await-target',
          node: target.id,
          lsn: choice.node.lsn,
          candidate: target,
          why: `old primary node ${failedNode} stopped cleanly; pgpool's new main node ${target.id} is at ${formatLsn(target.lsn)}, behind node ${choice.node.id} at ${formatLsn(choice.node.lsn)}: promote it once it has caught up, else nobody`,
        },
        checkpoint: checkpointFor(target.id),
        ...followersOf(target.id),
      };
    }
    return {
      ...base,
      decision: { kind: 'promote', node: target.id, candidate: target, considered: choice.considered, reasons: choice.reasons, why: `pgpool's new main node after a clean stop, as advanced as any (lsn ${formatLsn(target.lsn)})${splitNote}` },
      checkpoint: checkpointFor(target.id),
      ...followersOf(target.id),
    };
  }
  return {
    ...base,
    decision: { kind: 'promote', node: choice.node.id, candidate: choice.node, considered: choice.considered, reasons: choice.reasons, why: `${choice.why}${splitNote}` },
    checkpoint: checkpointFor(choice.node.id),
    ...followersOf(choice.node.id),
  };
}

/** The plan as the lines `maas-ha plan failover` prints: fence order, split-brain fences, decision, checkpoint. */
export function describeFailoverPlan(p: FailoverPlan, failed: number): string[] {
  const lines = [`1. fence old primary node ${failed}: ${p.fence.order === 'skip' ? 'skipped' : p.fence.order === 'first' ? 'before promoting' : 'alongside the promotion'} (${p.fence.why})`];
  for (const s of p.staleFences) lines.push(`${lines.length + 1}. fence node ${s.node} before promoting: ${s.why}`);
  const d = p.decision;
  const n = () => lines.length + 1;
  switch (d.kind) {
    case 'adopt':
      lines.push(`${n()}. promote nobody: ${d.why}`);
      break;
    case 'promote':
      lines.push(`${n()}. promote node ${d.node}: ${d.why}`);
      for (const r of d.reasons.slice(1)) lines.push(`   not node ${r.replace(/^node /, '')}`);
      break;
    case 'await-target':
      lines.push(`${n()}. wait for node ${d.node} to reach ${formatLsn(d.lsn)}, then promote it: ${d.why}`);
      break;
    case 'none':
      lines.push(`${n()}. promote nobody: ${d.why}`);
      break;
  }
  if (d.kind !== 'none') lines.push(`${n()}. checkpoint: ${p.checkpoint.skip ? `skipped (${p.checkpoint.why})` : p.checkpoint.why}`);
  if (p.followers) lines.push(`${n()}. standbys: ${p.followers.why}`);
  if (p.attachInPgpool) lines.push(`${n()}. pgpool: ${p.attachInPgpool.why}`);
  if (p.reobserveAfterFence) lines.push(`   (the standbys are compared again after the fence: a cleanly stopped primary's last WAL reaches them only then)`);
  return lines;
}
