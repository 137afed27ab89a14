// `maas-ha switchover NODE`: a planned move of the primary, for maintenance. pgpool does the orchestration
// (pcp_promote_node --switchover, 4.3+): it detaches the primary and runs failover_command with %m = NODE; the
// failover hook stops the old primary cleanly before promoting (so every streaming standby has its last WAL),
// follow_primary rewinds the old primary and repoints the others, failback restores synchronous replication.
// This command checks first that the move is safe, asks pgpool, and watches until the cluster is redundant
// again, printing each change as it happens. pcp_promote_node returns before any of it has happened (it only
// queues the request; pgpool/pgpool2#147): the watching is what tells the operator it worked.

import type { Deps } from './model/ports.ts';
import { describeMark, maintenanceView } from './maintenance.ts';
import { gatherStatus, type ClusterStatus, type StatusRow } from './status.ts';

/** Pure: why a switchover to `target` must not start now, or nothing. */
export function switchoverRefusal(s: ClusterStatus, target: number): string | undefined {
  const row = s.rows.find((r) => r.id === target);
  if (!row) return `node ${target} is not in the configuration`;
  if (s.primary === null) return 'there is no primary to switch over from (this is a failover: see maas-ha status)';
  if (s.primary === target) return `node ${target} is already the primary`;
  const held = maintenanceRefusal(s, target);
  if (held) return held;
  if (row.pgRole !== 'standby') return `node ${target} is ${row.pgRole}, not a running standby`;
  if (row.pgpoolStatus !== 'up') return `pgpool has node ${target} ${row.pgpoolStatus}: attach or recover it first`;
  if (row.problems.length) return `node ${target} is not a healthy standby: ${row.problems.join('; ')}`;
  const others = s.problems.filter((p) => !p.startsWith(`node ${target}:`));
  if (others.length) return `the cluster is not redundant now (${others.join('; ')}): a switchover would leave it worse; use --force to go ahead`;
  return undefined;
}

/**
 * Pure: the refusal --force does not override. The failover hook does nothing while the cluster (or the target)
 * is in maintenance, so pgpool's switchover would stop the primary and promote nobody.
 */
export function maintenanceRefusal(s: ClusterStatus, target: number): string | undefined {
  const marks = maintenanceView(s.maintenance);
  if (marks.cluster) return `the cluster is in maintenance (${describeMark(marks.cluster)}): the failover hook would promote nobody; maas-ha maintenance off first`;
  const mark = marks.nodes.find((m) => m.node === target);
  return mark ? `node ${target} is in maintenance (${describeMark(mark)}): maas-ha maintenance off ${target} first` : undefined;
}

/** Pure: what changed between two looks, one line per node that changed. */
export function statusChanges(before: ClusterStatus | undefined, now: ClusterStatus): string[] {
  const line = (r: StatusRow) => `${r.pgRole}${r.timeline !== null ? ` (timeline ${r.timeline})` : ''}, pgpool ${r.pgpoolStatus}${r.pgRole === 'standby' ? `, ${r.replication}` : ''}`;
  return now.rows.flatMap((r) => {
    const was = before?.rows.find((x) => x.id === r.id);
    return was && line(was) === line(r) ? [] : [`node ${r.id}: ${line(r)}`];
  });
}

/** Done when the target is primary and every node is up and healthy in pgpool and PostgreSQL. */
export function switchedOver(s: ClusterStatus, target: number): boolean {
  return s.primary === target && s.problems.length === 0 && s.rows.every((r) => r.pgpoolStatus === 'up');
}

/** What a switchover to `target` would do, decided from one look at the cluster before anything is asked. */
export type SwitchoverDecision =
  | { kind: 'refuse'; why: string }
  | { kind: 'switch'; from: number; to: number; despite?: string; steps: string[] };

/**
 * Pure: refuse, or switch with the steps as the operator will see them happen. --force overrides a refusal only
 * when there is a primary to move away from, the target is not it, and nothing is in maintenance.
 */
export function decideSwitchover(s: ClusterStatus, target: number, force: boolean): SwitchoverDecision {
  const refusal = switchoverRefusal(s, target);
  if (refusal && !(force && s.primary !== target && s.primary !== null && !maintenanceRefusal(s, target))) return { kind: 'refuse', why: refusal };
  const from = s.primary!;
  const others = s.rows.filter((r) => r.id !== from && r.id !== target).map((r) => r.id);
  const steps = [
    `pcp_promote_node --switchover -n ${target}: pgpool detaches node ${from} and runs the failover hook for it`,
    `the failover hook stops node ${from} cleanly (every streaming standby gets its last WAL), then promotes node ${target} once it has replayed it`,
    `follow_primary rewinds node ${from}${others.length ? ` and repoints node${others.length === 1 ? '' : 's'} ${others.join(', ')}` : ''} to follow node ${target}; failback restores synchronous replication`,
    `watch until node ${target} is the primary and every node is up and healthy`,
  ];
  return { kind: 'switch', from, to: target, ...(refusal ? { despite: refusal } : {}), steps };
}

export interface SwitchoverResult {
  ok: boolean;
  seconds: number;
  status: ClusterStatus;
}

/** Look once and decide (`maas-ha switchover --dry-run` stops here). */
export async function planSwitchover(deps: Deps, target: number, force: boolean): Promise<{ status: ClusterStatus; decision: SwitchoverDecision }> {
  const status = await gatherStatus(deps);
  return { status, decision: decideSwitchover(status, target, force) };
}

export async function runSwitchover(
  deps: Deps,
  target: number,
  opts: { timeoutMs: number; force: boolean },
  say: (line: string) => void,
): Promise<SwitchoverResult> {
  const started = deps.clock.now();
  const t = () => ((deps.clock.now() - started) / 1000).toFixed(1).padStart(5);
  const planned = await planSwitchover(deps, target, opts.force);
  let last = planned.status;
  const d = planned.decision;
  if (d.kind === 'refuse') throw new Error(d.why);
  if (d.despite) say(`going ahead despite: ${d.despite}`);
  say(`[${t()} s] asking pgpool to switch the primary from node ${d.from} to node ${target} (pcp_promote_node --switchover)`);
  await deps.pcp.promote(target, { switchover: true });
  while (deps.clock.now() - started < opts.timeoutMs) {
    await deps.clock.sleep(250);
    const now = await gatherStatus(deps);
    for (const c of statusChanges(last, now)) say(`[${t()} s] ${c}`);
    last = now;
    if (switchedOver(now, target)) return { ok: true, seconds: (deps.clock.now() - started) / 1000, status: now };
  }
  return { ok: false, seconds: (deps.clock.now() - started) / 1000, status: last };
}
