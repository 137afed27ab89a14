// Which standby to promote when the primary is lost: decided by data, not by pgpool's node id. pgpool's %m is
// merely the lowest live node id (docs/pgpool-hooks.md, "Placeholders"), so promoting it can lose WAL that another
// standby has.
// Pure: table-tested in test/unit/failover/choose.test.ts.

import type { Config } from '../config/types.ts';
import { formatLsn, type Lsn } from '../model/lsn.ts';
import { isWritable, timelineKnown, type NodeObservation } from '../observe.ts';

export interface Candidate {
  id: number;
  timeline: number;
  /** The timeline is what the node replays now (not a stale checkpoint's): only then may it rank. */
  timelineKnown: boolean;
  /** The furthest WAL this node has: what it received, or replayed if that is further. */
  lsn: Lsn;
  replayLsn: Lsn;
}

export type Choice =
  /** `why`: the reason node was chosen, as a phrase without the node (`most advanced, lsn 0/3000148 > 0/3000100`). */
  | { kind: 'promote'; node: Candidate; why: string; reasons: string[]; considered: Candidate[] }
  | { kind: 'none'; reasons: string[] };

export interface ChooseInput {
  config: Config;
  failedNode: number;
  /** pgpool's %m (new main node): only a tie-breaker. */
  newMain?: number;
  observations: NodeObservation[];
  /** Standbys that synchronous replication covered, when maas-ha manages it; undefined: all may be promoted. */
  synchronousNames?: string[];
  /** Nodes in maintenance (lib/maintenance.ts): ranked with the others, never promoted. */
  maintenance?: readonly number[];
}

export function chooseCandidate(input: ChooseInput): Choice {
  const { config, failedNode, newMain, observations } = input;
  const reasons: string[] = [];
  // Writable nodes are judged before a candidate is chosen (./plan.ts: adopt the current primary, fence stale ones).
  const others = observations.filter((o) => o.id !== failedNode && !isWritable(o));
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
    considered.push({ id: o.id, timeline: o.timeline, timelineKnown: timelineKnown(o), lsn: received > replay ? received : replay, replayLsn: replay });
  }
  if (considered.length === 0) {
    return { kind: 'none', reasons: reasons.length ? reasons : ['no standby left to promote'] };
  }
  const priority = (id: number) => config.nodes.find((n) => n.id === id)?.priority ?? 0;
  // A timeline ranks only when every candidate's is known: a standby whose WAL receiver is gone and that could
  // not be asked (IDENTIFY_SYSTEM) reports its last restartpoint's timeline, which can be many timelines old.
  const byTimeline = considered.every((c) => c.timelineKnown);
  if (!byTimeline && considered.length > 1) {
    const unsure = considered.filter((c) => !c.timelineKnown).map((c) => c.id);
    reasons.push(`timeline of node${unsure.length > 1 ? 's' : ''} ${unsure.join(', ')} unknown (no WAL receiver, IDENTIFY_SYSTEM refused): ranked by WAL position only`);
  }
  const ranked = [...considered].sort(
    (a, b) =>
      (byTimeline ? b.timeline - a.timeline : 0) ||
      (b.lsn > a.lsn ? 1 : b.lsn < a.lsn ? -1 : 0) ||
      Number(b.id === newMain) - Number(a.id === newMain) ||
      priority(b.id) - priority(a.id) ||
      a.id - b.id,
  );
  // A node in maintenance takes part in the ranking only to say whether the others hold everything: if it is
  // ahead of all of them (or alone), promoting another would lose what only it has, so nobody is promoted.
  const marked = (id: number) => input.maintenance?.includes(id) ?? false;
  const eligible = ranked.filter((c) => !marked(c.id));
  const top = ranked[0]!;
  const next = eligible[0];
  if (marked(top.id) && (!next || next.lsn !== top.lsn || (byTimeline && next.timeline !== top.timeline))) {
    reasons.unshift(
      `node ${top.id} is in maintenance and ${next ? `holds more WAL (lsn ${formatLsn(top.lsn)}) than node ${next.id} (${formatLsn(next.lsn)})` : 'is the only fit standby'}: promoting ${next ? 'another' : 'it'} is not allowed (maas-ha maintenance off ${top.id})`,
    );
    return { kind: 'none', reasons };
  }
  for (const c of ranked.filter((c) => marked(c.id))) reasons.push(`node ${c.id} is in maintenance`);
  const best = next!;
  const runnerUp = eligible[1];
  const why = !runnerUp
    ? `the only fit standby, lsn ${formatLsn(best.lsn)}`
    : byTimeline && best.timeline > runnerUp.timeline
      ? `on the newest timeline ${best.timeline}`
      : best.lsn > runnerUp.lsn
        ? `most advanced, lsn ${formatLsn(best.lsn)} > ${formatLsn(runnerUp.lsn)} of node ${runnerUp.id}`
        : best.id === newMain
          ? `same lsn ${formatLsn(best.lsn)} as node ${runnerUp.id}, pgpool's main node wins the tie`
          : `same lsn ${formatLsn(best.lsn)} as node ${runnerUp.id}, higher priority or lower id wins the tie`;
  reasons.unshift(`node ${best.id}: ${why}`);
  return { kind: 'promote', node: best, why, reasons, considered: eligible };
}
