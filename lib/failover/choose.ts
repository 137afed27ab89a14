// Which standby to promote when the primary is lost: decided by data, not by pgpool's node id. pgpool's %m is
// merely the lowest live node id (pgpool-hooks.md §2.1), so promoting it can lose WAL that another standby has.
// Pure: table-tested in test/unit/choose.test.ts.

import type { Config } from '../config/types.ts';
import { formatLsn, type Lsn } from '../model/lsn.ts';
import type { NodeObservation } from '../observe.ts';

export interface Candidate {
  id: number;
  timeline: number;
  /** The furthest WAL this node has: what it received, or replayed if that is further. */
  lsn: Lsn;
  replayLsn: Lsn;
}

export type Choice =
  /** `why`: the reason node was chosen, as a phrase without the node (`most advanced, lsn 0/3000148 > 0/3000100`). */
  | { kind: 'promote'; node: Candidate; why: string; reasons: string[]; considered: Candidate[] }
  | { kind: 'already-promoted'; node: number; reasons: string[] }
  | { kind: 'none'; reasons: string[] };

export interface ChooseInput {
  config: Config;
  failedNode: number;
  /** pgpool's %m (new main node): only a tie-breaker. */
  newMain?: number;
  observations: NodeObservation[];
  /** Standbys that synchronous replication covered, when maas-ha manages it; undefined: all may be promoted. */
  synchronousNames?: string[];
}

export function chooseCandidate(input: ChooseInput): Choice {
  const { config, failedNode, newMain, observations } = input;
  const reasons: string[] = [];
  const others = observations.filter((o) => o.id !== failedNode);
  const primaries = others.filter((o) => o.reachable && !o.inRecovery);
  if (primaries.length === 1) {
    return { kind: 'already-promoted', node: primaries[0]!.id, reasons: [`node ${primaries[0]!.id} is already a primary`] };
  }
  if (primaries.length > 1) {
    return { kind: 'none', reasons: [`nodes ${primaries.map((p) => p.id).join(' and ')} are all primaries: refusing to add another`] };
  }
  const considered: Candidate[] = [];
  for (const o of others) {
    const node = config.nodes.find((n) => n.id === o.id);
    if (!node) continue;
    if (!o.reachable) {
      reasons.push(`node ${o.id} unreachable (${o.error})`);
      continue;
    }
    if (!node.candidate) {
      reasons.push(`node ${o.id} has candidate: false`);
      continue;
    }
    if (input.synchronousNames && !input.synchronousNames.includes(node.name)) {
      reasons.push(`node ${o.id} is not a synchronous standby`);
      continue;
    }
    const replay = o.replayLsn ?? 0n;
    const received = o.receiveLsn ?? 0n;
    if (received === 0n && replay === 0n) {
      reasons.push(`node ${o.id} reports no WAL position`);
      continue;
    }
    considered.push({ id: o.id, timeline: o.timeline, lsn: received > replay ? received : replay, replayLsn: replay });
  }
  if (considered.length === 0) {
    return { kind: 'none', reasons: reasons.length ? reasons : ['no standby left to promote'] };
  }
  const priority = (id: number) => config.nodes.find((n) => n.id === id)?.priority ?? 0;
  const ranked = [...considered].sort(
    (a, b) =>
      b.timeline - a.timeline ||
      (b.lsn > a.lsn ? 1 : b.lsn < a.lsn ? -1 : 0) ||
      Number(b.id === newMain) - Number(a.id === newMain) ||
      priority(b.id) - priority(a.id) ||
      a.id - b.id,
  );
  const best = ranked[0]!;
  const runnerUp = ranked[1];
  const why = !runnerUp
    ? `the only fit standby, lsn ${formatLsn(best.lsn)}`
    : best.timeline > runnerUp.timeline
      ? `on the newest timeline ${best.timeline}`
      : best.lsn > runnerUp.lsn
        ? `most advanced, lsn ${formatLsn(best.lsn)} > ${formatLsn(runnerUp.lsn)} of node ${runnerUp.id}`
        : best.id === newMain
          ? `same lsn ${formatLsn(best.lsn)} as node ${runnerUp.id}, pgpool's main node wins the tie`
          : `same lsn ${formatLsn(best.lsn)} as node ${runnerUp.id}, higher priority or lower id wins the tie`;
  reasons.unshift(`node ${best.id}: ${why}`);
  return { kind: 'promote', node: best, why, reasons, considered: ranked };
}
