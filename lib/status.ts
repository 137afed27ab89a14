// `maas-ha status`: the cluster as PostgreSQL and pgpool each see it, side by side, so a disagreement (pgpool
// says "primary" where pg_is_in_recovery() says standby, a node "up" in pgpool that streams nothing) is visible
// at a glance. gatherStatus does the I/O; buildStatus and renderStatus are pure and table-tested.

import type { Config } from './config/types.ts';
import { messageOf } from './errors.ts';
import type { Deps, MaintenanceMark, PcpNodeInfo } from './model/ports.ts';
import { clusterMarkProblem, maintenanceView, nodeMarkProblem } from './maintenance.ts';
import { formatBytes, formatLsn } from './model/lsn.ts';
import { isWritable, judgePrimaries, observeAll, type NodeObservation } from './observe.ts';

export interface StatusRow {
  id: number;
  name: string;
  address: string;
  /** From pg_is_in_recovery(): primary | standby | unreachable. */
  pgRole: 'primary' | 'standby' | 'unreachable';
  /** From pcp_node_info: up | down | waiting | unknown, and pgpool's idea of the role. */
  pgpoolStatus: string;
  pgpoolRole: string;
  timeline: number | null;
  lsn: string | null;
  /** Bytes the node's replay is behind the primary's current position. */
  lagBytes: number | null;
  replication: string;
  problems: string[];
}

export interface ClusterStatus {
  cluster: string;
  primary: number | null;
  rows: StatusRow[];
  problems: string[];
  /** Maintenance marks in this host's state_dir (lib/maintenance.ts); the cluster's has no node. */
  maintenance: MaintenanceMark[];
}

const PCP_STATUS = ['waiting', 'up', 'up', 'down'];

export function buildStatus(
  config: Config,
  obs: NodeObservation[],
  pcp: (PcpNodeInfo | { error: string })[],
  fenced: readonly (number | { node: number; timeline?: number })[] = [],
  maintenance: readonly MaintenanceMark[] = [],
): ClusterStatus {
  // The primary is the current one by the rule failover uses (lib/observe.ts), never a stale writable node.
  const judged = judgePrimaries(obs, { fenced });
  const primaryObs = judged.current !== undefined ? obs.find((o) => o.id === judged.current) : undefined;
  const primaryLsn = primaryObs?.reachable ? primaryObs.currentLsn : undefined;
  const problems: string[] = [];
  const marks = maintenanceView(maintenance);
  if (marks.cluster) problems.push(clusterMarkProblem(marks.cluster));
  if (!obs.some(isWritable)) problems.push('no reachable primary');
  else if (judged.current === undefined && judged.ambiguous.length) problems.push(judged.why);
  else if (judged.current === undefined) problems.push(`no current primary: ${judged.why}`);
  for (const s of judged.stale) problems.push(`split brain: ${s.why}; it must not take writes: maas-ha recover ${s.node} rebuilds it as a standby`);

  const rows = config.nodes.map((node, i): StatusRow => {
    const o = obs[i]!;
    const info = pcp[i];
    const mark = marks.nodes.find((m) => m.node === node.id);
    const rowProblems: string[] = mark ? [nodeMarkProblem(mark)] : [];
    const pgpoolStatus = !info ? 'unknown' : 'error' in info ? 'unknown' : (PCP_STATUS[info.status] ?? String(info.status));
    const pgpoolRole = !info || 'error' in info ? '-' : info.role;
    if (!o.reachable) {
      if (pgpoolStatus === 'up') rowProblems.push('pgpool has it up but PostgreSQL does not answer');
      return {
        id: node.id, name: node.name, address: `${node.hostname}:${node.port}`, pgRole: 'unreachable',
        pgpoolStatus, pgpoolRole, timeline: null, lsn: null, lagBytes: null, replication: '-',
        problems: [...rowProblems, o.error],
      };
    }
    const pgRole = o.inRecovery ? 'standby' : 'primary';
    if (pgpoolRole !== '-' && pgpoolStatus === 'up' && pgpoolRole !== pgRole) rowProblems.push(`pgpool calls it ${pgpoolRole}`);
    let replication = '-';
    let lagBytes: number | null = null;
    if (o.inRecovery) {
      const wr = o.walReceiver;
      replication = wr ? `${wr.status} from ${wr.senderHost ?? '?'}` : 'not streaming';
      if (!wr || wr.status !== 'streaming') rowProblems.push('not streaming');
      if (primaryObs?.reachable && wr?.receivedTli != null && wr.receivedTli !== primaryObs.timeline) {
        rowProblems.push(`receives timeline ${wr.receivedTli}, primary is on ${primaryObs.timeline}`);
      }
      const peer = primaryObs?.reachable ? primaryObs.replication.find((r) => r.applicationName === node.name) : undefined;
      if (peer) replication += ` (${peer.syncState})`;
      if (primaryLsn !== undefined && o.replayLsn !== undefined) {
        lagBytes = Number(primaryLsn > o.replayLsn ? primaryLsn - o.replayLsn : 0n);
      }
      if (pgpoolStatus === 'down') rowProblems.push('detached in pgpool');
    } else {
      const sync = o.replication.filter((r) => r.syncState === 'sync' || r.syncState === 'quorum').length;
      replication = `${o.replication.length} standby${o.replication.length === 1 ? '' : 's'} attached${sync ? `, ${sync} synchronous` : ''}`;
      if (pgpoolStatus === 'down') rowProblems.push('primary is detached in pgpool');
    }
    const lsn = o.inRecovery
      ? `${o.receiveLsn ? formatLsn(o.receiveLsn) : '-'} / ${o.replayLsn ? formatLsn(o.replayLsn) : '-'}`
      : o.currentLsn
        ? formatLsn(o.currentLsn)
        : '-';
    return {
      id: node.id, name: node.name, address: `${node.hostname}:${node.port}`, pgRole, pgpoolStatus, pgpoolRole,
      timeline: o.timeline, lsn, lagBytes, replication, problems: rowProblems,
    };
  });
  for (const r of rows) for (const p of r.problems) problems.push(`node ${r.id}: ${p}`);
  return { cluster: config.cluster_name, primary: primaryObs?.id ?? null, rows, problems, maintenance: [...maintenance] };
}

export function renderStatus(s: ClusterStatus): string {
  const head = ['NODE', 'ADDRESS', 'POSTGRES', 'PGPOOL', 'TL', 'LSN (received / replayed)', 'LAG', 'REPLICATION'];
  const body = s.rows.map((r) => [
    `${r.id} ${r.name}`,
    r.address,
    r.pgRole,
    r.pgpoolStatus === 'unknown' ? 'unknown' : `${r.pgpoolStatus} ${r.pgpoolRole}`,
    r.timeline === null ? '-' : String(r.timeline),
    r.lsn ?? '-',
    r.lagBytes === null ? '-' : formatBytes(r.lagBytes),
    r.replication,
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...body.map((row) => row[c]!.length)));
  const line = (cells: string[]) => cells.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd();
  const out = [`cluster ${s.cluster}: ${s.primary === null ? 'NO PRIMARY' : `primary is node ${s.primary}`}`, line(head), ...body.map(line)];
  out.push(s.problems.length ? `problems:\n${s.problems.map((p) => `  - ${p}`).join('\n')}` : 'no problems found');
  return out.join('\n');
}

export async function gatherStatus(deps: Pick<Deps, 'pg' | 'pcp' | 'config'> & { state?: Pick<Deps['state'], 'fenced' | 'maintenance'> }): Promise<ClusterStatus> {
  const [obs, pcp] = await Promise.all([
    observeAll(deps),
    Promise.all(deps.config.nodes.map((n) => deps.pcp.nodeInfo(n.id).catch((err: unknown) => ({ error: messageOf(err) })))),
  ]);
  let fenced: { node: number; timeline?: number }[] = [];
  try {
    fenced = deps.state?.fenced() ?? [];
  } catch {
    // The state dir of another host, or unreadable: judge by timelines alone.
  }
  let maintenance: MaintenanceMark[] = [];
  let unreadable: string | undefined;
  try {
    maintenance = deps.state?.maintenance() ?? [];
  } catch (err) {
    unreadable = messageOf(err);
  }
  const status = buildStatus(deps.config, obs, pcp, fenced, maintenance);
  // The hooks would fail on the same state_dir: say so rather than show no mark.
  if (unreadable) status.problems.push(`maintenance marks cannot be read: ${unreadable}`);
  const pcpError = pcp.find((p): p is { error: string } => 'error' in p);
  if (pcpError) status.problems.push(`pgpool (pcp) not reachable: ${pcpError.error}`);
  return status;
}

/** JSON-safe form (bigints are already formatted in rows). */
export const statusJson = (s: ClusterStatus) => JSON.stringify(s, null, 2);
