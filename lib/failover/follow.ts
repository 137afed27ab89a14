// The follow_primary_command use case. pgpool's follow child runs it on the leader, as postgres, once per node
// other than the new primary, one after another, the dead old primary included; it ignores the exit code, and
// nothing re-attaches a node unless the hook does (docs/pgpool-hooks.md, "follow_primary_command"). For each node:
// decide from what the node says (planFollow, pure), then act, then prove it streams the new timeline before
// attaching it.

import type { Config, NodeConfig } from '../config/types.ts';
import { messageOf, OperationError } from '../errors.ts';
import type { Deps } from '../model/ports.ts';
import { isWritable, observeNode, streamsFrom, type NodeObservation } from '../observe.ts';
import { controlDataText, stopNode } from '../pgctl.ts';
import { attachAndWait } from '../pgpool/wait.ts';
import { formatBytes, formatLsn, parseLsnOrUndefined, type Lsn } from '../model/lsn.ts';
import { describeMethod, parseControlData, type ControlData, type RebuildOptions } from '../recovery/plan.ts';
import { rebuildAsStandby, waitStreaming } from '../recovery/rebuild.ts';
import { repointStandby } from './followers.ts';
import { followGate } from '../maintenance.ts';

export type FollowAction =
  | { kind: 'skip'; why: string }
  | { kind: 'attach'; why: string }
  | { kind: 'repoint'; why: string }
  | { kind: 'rewind'; why: string }
  /** ok: false when leaving it detached is a failure to report (a second primary), true when it is the plan. */
  | { kind: 'leave-detached'; why: string; ok: boolean };

export interface FollowFacts {
  node: NodeConfig;
  newPrimary: NodeConfig;
  primaryTimeline: number;
  observation: NodeObservation;
  /** pg_controldata's state when the node is not running ("shut down", "in production", ...); undefined: unknown. */
  stoppedState?: string;
  sshReachable: boolean;
}

/** Pure: what to do with one node. */
export function planFollow(f: FollowFacts): FollowAction {
  const { node, newPrimary, observation: o } = f;
  if (node.id === newPrimary.id) return { kind: 'skip', why: `node ${node.id} is the new primary` };
  if (isWritable(o)) return { kind: 'leave-detached', ok: false, why: `node ${node.id} is running as a primary: refusing to touch a second primary (fence it, then recover it)` };
  if (o.reachable) {
    if (streamsFrom(o, newPrimary, f.primaryTimeline)) {
      return { kind: 'attach', why: `node ${node.id} already streams timeline ${f.primaryTimeline} from node ${newPrimary.id}` };
    }
    const wr = o.walReceiver;
    return { kind: 'repoint', why: `node ${node.id} is a running standby ${wr ? `of ${wr.senderHost}` : 'not streaming'}: repoint it to node ${newPrimary.id}` };
  }
  if (!f.sshReachable) return { kind: 'leave-detached', ok: true, why: `node ${node.id} is down and its host does not answer ssh: leave it for maas-ha recover` };
  if (f.stoppedState === 'shut down' || f.stoppedState === 'shut down in recovery') {
    return { kind: 'rewind', why: `node ${node.id} was shut down cleanly (${f.stoppedState}): rewind it onto node ${newPrimary.id}` };
  }
  return {
    kind: 'leave-detached',
    ok: true,
    why: `node ${node.id} is down${f.stoppedState ? ` (cluster state "${f.stoppedState}")` : ''}: a crashed node is left for maas-ha recover`,
  };
}

async function attach(deps: Deps, node: NodeConfig): Promise<void> {
  if ((await attachAndWait(deps, node.id, 10_000)) !== undefined) {
    throw new OperationError(`pcp_attach_node ${node.id} said "Command Successful" but pcp_node_info does not show it up`);
  }
}

export interface FollowInput {
  node: number;
  newPrimary: number;
}

export async function runFollow(deps: Deps, input: FollowInput, remainingMs: () => number): Promise<{ ok: boolean; summary: string }> {
  const { config, log } = deps;
  const node = config.nodes.find((n) => n.id === input.node);
  const primary = config.nodes.find((n) => n.id === input.newPrimary);
  if (!node || !primary) return { ok: false, summary: `node ${!node ? input.node : input.newPrimary} is not in ${config.source}` };
  const held = followGate(deps.state.maintenance(), node.id);
  if (held) {
    log.warn({ step: 'maintenance', node_id: node.id, outcome: 'skipped' }, held);
    return { ok: true, summary: `in maintenance: ${held}` };
  }
  const p = await observeNode(deps, primary, 3000);
  if (!isWritable(p)) {
    return { ok: false, summary: `node ${primary.id} is not an answering primary (${p.reachable ? 'in recovery' : p.error}): node ${node.id} left as it is` };
  }
  const observation = await observeNode(deps, node, 2000);
  let sshReachable = true;
  let control: (ControlData & { checkpointLsn?: Lsn }) | undefined;
  if (!observation.reachable) {
    try {
      const text = await controlDataText(deps, node, config.ssh.connect_timeout_s * 1000 + 3000);
      control = text === undefined ? undefined : { ...parseControlData(text), checkpointLsn: checkpointLsnOf(text) };
      sshReachable = text !== undefined;
    } catch {
      sshReachable = false;
    }
  }
  const stoppedState = control?.state;
  const action = planFollow({ node, newPrimary: primary, primaryTimeline: p.timeline, observation, stoppedState, sshReachable });
  log.info({ step: 'plan', node_id: node.id, action: action.kind }, action.why);
  const streamBudget = () => Math.max(2000, Math.min(30_000, remainingMs() - 5000));
  // pg_rewind (or the allowed base backup), start and streaming: whatever the hook's budget leaves.
  const rejoinBudget = () => Math.max(10_000, remainingMs() - 5000);
  try {
    switch (action.kind) {
      case 'skip':
        return { ok: true, summary: action.why };
      case 'leave-detached':
        return { ok: action.ok, summary: `${action.why}; node ${node.id} stays detached` };
      case 'attach':
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} already followed node ${primary.id}: attached` };
      case 'repoint': {
        await repointStandby(deps, node, primary);
        try {
          await waitStreaming(deps, node, primary, Math.min(streamBudget(), 15_000));
        } catch (err) {
          // A standby that replayed past the fork point cannot follow: stop it cleanly and rewind it.
          log.warn({ step: 'repoint', node_id: node.id, outcome: 'failed' }, `${messageOf(err)}: stopping it for pg_rewind`);
          const stop = await stopNode(deps, node, 30_000);
          if (stop.outcome === 'still-running' || stop.outcome === 'unreachable') throw new OperationError(`node ${node.id} could not be stopped for rewind: ${stop.detail}`);
          const how = await rejoin(deps, node, primary, rejoinBudget());
          await attach(deps, node);
          return { ok: true, summary: `node ${node.id} could not follow in place; ${how}, streaming, attached` };
        }
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} repointed to node ${primary.id}, streaming timeline ${p.timeline}, attached` };
      }
      case 'rewind': {
        // A cleanly stopped former primary may hold WAL the new primary never received: say what the rewind
        // discards before it does (the operator may want those transactions from the old data directory).
        const discard = describeDiscard(node.id, control, await forkPoint(deps, primary, control?.timeline));
        log.warn({ step: 'discard', node_id: node.id, outcome: 'started', ...discard.fields }, discard.sentence);
        const how = await rejoin(deps, node, primary, rejoinBudget());
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} ${how}, streaming timeline ${p.timeline}, attached; ${discard.sentence}` };
      }
    }
  } catch (err) {
    return { ok: false, summary: `node ${node.id} could not follow node ${primary.id}: ${messageOf(err)}; it stays detached (run: maas-ha recover ${node.id})` };
  }
}

/** Pure: how follow-primary may rebuild a node: pg_rewind, and a base backup only if the config allows it. */
export function followRebuildOptions(config: Pick<Config, 'recovery'>): Omit<RebuildOptions, 'now'> {
  return {
    method: 'auto',
    force: false,
    initial: false,
    basebackup: config.recovery.follow_basebackup,
    basebackupOffBecause: 'recovery.follow_basebackup is off; run maas-ha recover, or turn it on',
  };
}

/**
 * Rejoins a stopped node to the new primary with the rebuild primitives (lib/recovery/rebuild.ts): pg_rewind in
 * place; a base backup only when recovery.follow_basebackup allows it, and then beside the old data directory,
 * which is renamed, never deleted. Throws with the reason when the node cannot rejoin.
 */
async function rejoin(deps: Deps, node: NodeConfig, primary: NodeConfig, budgetMs: number): Promise<string> {
  const run = await rebuildAsStandby(deps, node, primary, followRebuildOptions(deps.config), budgetMs);
  if (run.plan.kind === 'refuse') throw new OperationError(run.plan.why);
  const how = run.prepared?.method === 'rewind' ? 'rewound' : `rejoined by ${describeMethod(run.prepared?.method ?? 'rewind', run.prepared?.rewindFailure)}`;
  const kept = run.prepared?.oldDir ? `; its previous data directory is kept at ${run.prepared.oldDir}` : '';
  return `${how} onto node ${primary.id}${kept}`;
}

/**
 * Where the old node's timeline ends in the new primary's history: the LSN at which the cluster switched away
 * from it (TIMELINE_HISTORY on a replication connection). Everything the old node wrote past it is not on the
 * new primary. undefined with the reason when the history cannot be read.
 */
async function forkPoint(deps: Deps, primary: NodeConfig, oldTimeline: number | undefined): Promise<{ lsn?: Lsn; why?: string }> {
  if (oldTimeline === undefined) return { why: 'the old node\'s timeline is unknown' };
  const p = await observeNode(deps, primary, 2000);
  if (!p.reachable) return { why: `node ${primary.id} does not answer` };
  if (p.timeline <= oldTimeline) return { why: `the new primary is on timeline ${p.timeline}, not after ${oldTimeline}` };
  try {
    const rows = await deps.pg.query<{ content: string | Buffer }>({ host: primary.hostname, port: primary.port, replicationConnection: true }, `TIMELINE_HISTORY ${p.timeline}`, [], { timeoutMs: 2000 });
    return forkFromHistory(String(rows[0]?.content ?? ''), oldTimeline);
  } catch (err) {
    return { why: `its timeline history could not be read (${messageOf(err)})` };
  }
}

/** Pure: the switch point away from `timeline` in a timeline history file (`<tli>\t<lsn>\t<reason>` lines). */
export function forkFromHistory(history: string, timeline: number): { lsn?: Lsn; why?: string } {
  for (const line of history.split('\n')) {
    const [tli, lsn] = line.trim().split(/\s+/);
    if (Number(tli) === timeline) {
      const at = parseLsnOrUndefined(lsn);
      if (at !== undefined) return { lsn: at };
    }
  }
  return { why: `timeline ${timeline} is not in the new primary's history` };
}

/** pg_controldata's "Latest checkpoint location": for a cleanly stopped node, its shutdown checkpoint, the end of its WAL. */
export const checkpointLsnOf = (controlData: string): Lsn | undefined => parseLsnOrUndefined(/^Latest checkpoint location:\s*(\S+)/m.exec(controlData)?.[1]);

/** Pure: the sentence (and log fields) for what a rewind of a former primary discards. */
export function describeDiscard(id: number, control: { checkpointLsn?: Lsn } | undefined, fork: { lsn?: Lsn; why?: string }): { sentence: string; fields: Record<string, unknown> } {
  const end = control?.checkpointLsn;
  if (fork.lsn === undefined || end === undefined) {
    return { sentence: `pg_rewind discards whatever node ${id} wrote after the fork point (not measured: ${fork.why ?? 'its last checkpoint is unknown'})`, fields: {} };
  }
  if (end <= fork.lsn) {
    return { sentence: `node ${id} wrote nothing after the fork point ${formatLsn(fork.lsn)}: the rewind discards no WAL`, fields: { fork_lsn: formatLsn(fork.lsn), end_lsn: formatLsn(end), discarded_bytes: 0 } };
  }
  const bytes = Number(end - fork.lsn);
  return {
    sentence: `pg_rewind discards at least ${formatBytes(bytes)} of WAL that node ${id} wrote after the fork point (${formatLsn(fork.lsn)} to ${formatLsn(end)}), which the new primary never received`,
    fields: { fork_lsn: formatLsn(fork.lsn), end_lsn: formatLsn(end), discarded_bytes: bytes },
  };
}
