// Maintenance: planned work without automatic reactions. `maas-ha maintenance on NODE` marks a node and detaches
// it from pgpool; from then on the hooks neither fence, rebuild, repoint nor promote it. `maas-ha maintenance on`
// (no node) marks the whole cluster: the failover and follow hooks log "in maintenance" and do nothing (pgpool
// still detaches what it finds down), and `status` says the cluster is unprotected. `off` removes the mark and
// brings the node back (attach, or the recover use case when it no longer streams), then checks.
//
// The marks are files in state_dir (lib/adapters/state.ts), like the fencing markers: the hooks read them on the
// pgpool host they run on. With more than one pgpool host, set the mark on each (README.md, "Maintenance").
//
// The rules live here, pure, and every hook asks the same functions:
// - failover: the cluster marked, or the lost primary marked → nothing at all (no fence, no promotion); a lost
//   standby that is marked → only what keeps writes flowing (synchronous replication relaxed when too few
//   standbys remain), its slot kept for its return.
// - a marked standby is never promoted; one that holds more WAL than every unmarked candidate stops the
//   promotion (promoting the others would lose what only it has): lib/failover/choose.ts.
// - follow_primary: the cluster marked → nothing; a marked node → left as it is.

import type { NodeConfig } from './config/types.ts';
import { OperationError } from './errors.ts';
import type { Deps, MaintenanceMark } from './model/ports.ts';
import { judgePrimaries, observeAll, streamsFrom } from './observe.ts';
import { isAttached } from './pgpool/pcp-output.ts';
import { ATTACH_WAIT_MS, attachAndWait, waitPgpoolNode } from './pgpool/wait.ts';

export interface MaintenanceView {
  cluster?: MaintenanceMark;
  nodes: MaintenanceMark[];
}

export function maintenanceView(marks: readonly MaintenanceMark[]): MaintenanceView {
  const cluster = marks.find((m) => m.node === undefined);
  return { ...(cluster ? { cluster } : {}), nodes: marks.filter((m) => m.node !== undefined) };
}

export const markedNodes = (marks: readonly MaintenanceMark[]): number[] => marks.flatMap((m) => (m.node === undefined ? [] : [m.node]));

/** "since 2026-11-30T22:00:00.000Z by root@region1: new disks". */
export function describeMark(m: MaintenanceMark): string {
  return `since ${m.since} by ${m.by}${m.reason ? `: ${m.reason}` : ''}`;
}

/** The status problem a cluster mark is: automatic failover is off. */
export const clusterMarkProblem = (m: MaintenanceMark) =>
  `CLUSTER IN MAINTENANCE (${describeMark(m)}): automatic failover is off, a lost primary stays lost until maas-ha maintenance off`;

/** The status problem of a marked node. */
export const nodeMarkProblem = (m: MaintenanceMark) => `in maintenance (${describeMark(m)}): the hooks leave it alone until maas-ha maintenance off ${m.node}`;

export type FailoverGate =
  | { kind: 'go' }
  /** Do nothing at all. */
  | { kind: 'nothing'; why: string }
  /** A marked standby was lost: keep writes flowing, touch nothing of the node. */
  | { kind: 'standby-in-maintenance'; why: string };

/** Pure: what the failover hook may do about the lost node, given the marks. */
export function failoverGate(marks: readonly MaintenanceMark[], failed: number, primaryLost: boolean): FailoverGate {
  const v = maintenanceView(marks);
  if (v.cluster) return { kind: 'nothing', why: `the cluster is in maintenance (${describeMark(v.cluster)}): failover does nothing; pgpool has detached node ${failed}` };
  const mark = v.nodes.find((m) => m.node === failed);
  if (!mark) return { kind: 'go' };
  if (primaryLost) {
    return {
      kind: 'nothing',
      why: `node ${failed}, the primary, is in maintenance (${describeMark(mark)}): fencing nothing, promoting nobody; maas-ha maintenance off ${failed} when the work is done`,
    };
  }
  return { kind: 'standby-in-maintenance', why: `node ${failed} is in maintenance (${describeMark(mark)})` };
}

/** Pure: why follow_primary leaves `node` as it is, or undefined to go on. */
export function followGate(marks: readonly MaintenanceMark[], node: number): string | undefined {
  const v = maintenanceView(marks);
  if (v.cluster) return `the cluster is in maintenance (${describeMark(v.cluster)}): follow does nothing; node ${node} is left as it is`;
  const mark = v.nodes.find((m) => m.node === node);
  return mark ? `node ${node} is in maintenance (${describeMark(mark)}): left as it is, detached` : undefined;
}

/** Who sets a mark: the user and host the CLI runs as. */
export function markBy(): string {
  return `${process.env.SUDO_USER ? `${process.env.SUDO_USER} (sudo)` : (process.env.USER ?? 'unknown')}@${process.env.HOSTNAME ?? 'localhost'}`;
}

export interface MaintenanceResult {
  ok: boolean;
  /** What was done (or would be, with dryRun), one line each. */
  lines: string[];
  marks: MaintenanceMark[];
}

/** How long `on NODE` waits for pgpool to show the node down after pcp_detach_node. */
export const DETACH_WAIT_MS = 15_000;

/**
 * `maintenance on [NODE]`. A node: refused for the current primary (switch over first), marked first (so the
 * failover hook pgpool runs for the detach finds the mark), then detached gracefully and waited for.
 */
export async function maintenanceOn(deps: Deps, node: NodeConfig | undefined, reason: string, dryRun: boolean): Promise<MaintenanceResult> {
  const now = new Date(deps.clock.now()).toISOString();
  const marks = deps.state.maintenance();
  const mark: MaintenanceMark = { ...(node ? { node: node.id } : {}), by: markBy(), since: now, reason };
  const existing = marks.find((m) => m.node === node?.id);
  if (existing) return { ok: true, lines: [`${node ? `node ${node.id}` : 'the cluster'} is already in maintenance (${describeMark(existing)}): nothing changed`], marks };
  if (!node) {
    const lines = [`${dryRun ? 'would mark' : 'marked'} the cluster in maintenance: failover and follow_primary do nothing until maas-ha maintenance off; the cluster is unprotected`];
    if (!dryRun) deps.state.setMaintenance(mark);
    return { ok: true, lines, marks: dryRun ? marks : deps.state.maintenance() };
  }
  const obs = await observeAll(deps, 3000);
  const judged = judgePrimaries(obs, { fenced: deps.state.fenced() });
  if (judged.current === node.id) {
    throw new OperationError(
      `node ${node.id} is the primary: switch over first (maas-ha switchover NODE), or mark the whole cluster (maas-ha maintenance on) to keep failover away while it is down`,
    );
  }
  const info = await deps.pcp.nodeInfo(node.id).catch(() => undefined);
  const attached = info !== undefined && isAttached(info);
  const lines = [
    `${dryRun ? 'would mark' : 'marked'} node ${node.id} in maintenance: the hooks neither fence, rebuild, repoint nor promote it until maas-ha maintenance off ${node.id}`,
    attached ? `${dryRun ? 'would detach' : 'detached'} node ${node.id} from pgpool (pcp_detach_node -g)` : `pgpool has node ${node.id} ${info ? info.statusName : 'unknown (pcp did not answer)'}: nothing to detach`,
  ];
  if (dryRun) return { ok: true, lines, marks };
  deps.state.setMaintenance(mark);
  if (attached) {
    await deps.pcp.detach(node.id, { gracefully: true });
    if ((await waitPgpoolNode(deps, node.id, (i) => !isAttached(i), DETACH_WAIT_MS)) !== undefined) {
      throw new OperationError(`node ${node.id} is marked, but pgpool does not show it down ${DETACH_WAIT_MS / 1000} s after pcp_detach_node: check maas-ha status`);
    }
  }
  return { ok: true, lines, marks: deps.state.maintenance() };
}


/** pcp_attach_node, then the wait; the line that says how it went. */
async function attachNode(deps: Deps, id: number, why: string): Promise<string> {
  if ((await attachAndWait(deps, id)) === undefined) return `then: ${why}: attached`;
  return `then: ${why}: pgpool has the request queued but does not show node ${id} up after ${ATTACH_WAIT_MS / 1000} s (it carries it out once its search for a primary ends, search_primary_node_timeout): check with maas-ha status`;
}

/** How `maintenance off NODE` brings the node back, decided from what it says now. */
export type ReturnPlan = { kind: 'attach'; why: string } | { kind: 'nothing'; why: string } | { kind: 'recover'; why: string };

/**
 * `maintenance off [NODE]`: the mark goes first (the recover use case refuses a marked node, and the hooks must
 * take care of the node again from here on). A node that streams from the primary is attached; anything else
 * is left to `recover` (the caller runs that use case, which starts, rewinds or copies it and attaches it).
 */
export async function maintenanceOff(deps: Deps, node: NodeConfig | undefined, dryRun: boolean): Promise<MaintenanceResult & { next?: ReturnPlan }> {
  const marks = deps.state.maintenance();
  const existing = marks.find((m) => m.node === node?.id);
  const what = node ? `node ${node.id}` : 'the cluster';
  const lines = [existing ? `${dryRun ? 'would remove' : 'removed'} the maintenance mark of ${what} (${describeMark(existing)})` : `${what} was not in maintenance`];
  if (existing && !dryRun) deps.state.clearMaintenance(node?.id);
  if (!node) {
    // Nodes pgpool detached meanwhile that are healthy again (the primary answering, a standby streaming from it)
    // are attached, the primary first; anything else is left, and the caller shows what is (lib/cli/maintenance.ts).
    const plans = await returnPlans(deps);
    for (const { node: id, plan } of plans) {
      if (plan.kind === 'nothing' || markedNodes(marks).includes(id)) continue;
      if (plan.kind === 'attach' && !dryRun) lines.push(await attachNode(deps, id, plan.why));
      else lines.push(`${dryRun ? 'next' : 'then'}: ${plan.kind === 'recover' ? `${plan.why.replace(/: bring it back.*/, '')}: maas-ha recover ${id}` : plan.why}`);
    }
    return { ok: true, lines, marks: dryRun ? marks : deps.state.maintenance() };
  }
  const next = (await returnPlans(deps)).find((x) => x.node === node.id)!.plan;
  lines.push(next.kind === 'attach' && !dryRun ? await attachNode(deps, node.id, next.why) : `${dryRun ? 'next' : 'then'}: ${next.why}`);
  return { ok: true, lines, marks: dryRun ? marks : deps.state.maintenance(), next };
}

/** For every node: how it comes back, from what it and pgpool say now; the current primary first. */
async function returnPlans(deps: Deps): Promise<{ node: number; plan: ReturnPlan }[]> {
  const [obs, infos] = await Promise.all([observeAll(deps, 3000), Promise.all(deps.config.nodes.map((n) => deps.pcp.nodeInfo(n.id).catch(() => undefined)))]);
  const judged = judgePrimaries(obs, { fenced: deps.state.fenced() });
  const primary = deps.config.nodes.find((n) => n.id === judged.current);
  const p = obs.find((x) => x.id === primary?.id);
  const plans = deps.config.nodes.map((node, i): { node: number; plan: ReturnPlan } => {
    const info = infos[i];
    const up = info !== undefined && isAttached(info);
    const o = obs[i]!;
    if (primary && node.id === primary.id) {
      return { node: node.id, plan: up ? { kind: 'nothing', why: `node ${node.id} is the primary and pgpool has it up` } : { kind: 'attach', why: `node ${node.id} is the primary: attach it in pgpool (pcp_attach_node)` } };
    }
    if (primary && p?.reachable && streamsFrom(o, primary, p.timeline)) {
      return {
        node: node.id,
        plan: up ? { kind: 'nothing', why: `node ${node.id} streams from node ${primary.id} and pgpool has it up: nothing to do` } : { kind: 'attach', why: `node ${node.id} streams from node ${primary.id}: attach it in pgpool (pcp_attach_node)` },
      };
    }
    return { node: node.id, plan: { kind: 'recover', why: `node ${node.id} does not stream from ${primary ? `the primary, node ${primary.id}` : 'a primary (there is none now)'}: bring it back with the recover use case (start, rewind or copy, then attach)` } };
  });
  return plans.sort((a, b) => Number(b.node === primary?.id) - Number(a.node === primary?.id));
}
