// `maas-ha metrics`: the cluster as numbers for Prometheus, written for node_exporter's textfile collector (a
// systemd timer runs `maas-ha metrics --write FILE`; docs/metrics.md). gatherMetrics observes (every call bounded);
// buildMetrics is pure and table-tested; lib/adapters/prometheus.ts turns the families into the text format.
//
// Names follow Patroni's exporter where they mean the same (patroni_primary, patroni_replica, patroni_postgres_timeline
// as maas_ha_timeline, patroni_xlog_*_location, patroni_postgres_running), prefixed maas_ha_. Every metric is a gauge:
// the journal-derived ones (hook runs, the last failover) shrink when the journals are pruned, which a counter must
// never do. A value maas-ha could not learn is left out, never written as 0: "pgpool did not answer" is not "down".

import type { Config } from './config/types.ts';
import { messageOf } from './errors.ts';
import type { HistoryEvent } from './history.ts';
import type { Deps, FencedMarker, MaintenanceMark, PcpNodeInfo } from './model/ports.ts';
import type { MetricFamily, Sample } from './model/metrics.ts';
import { observeAll, type NodeObservation } from './observe.ts';
import { buildStatus, type ClusterStatus } from './status.ts';
import { observeHost } from './vip/escalate.ts';

export interface MetricFacts {
  config: Config;
  observations: NodeObservation[];
  /** pcp_node_info per configured node, in config order, or why it did not answer. */
  pcp: (PcpNodeInfo | { error: string })[];
  /** The fencing markers; undefined when the state dir could not be read here. */
  fenced?: FencedMarker[];
  /** The maintenance marks (lib/maintenance.ts); undefined when the state dir could not be read here. */
  maintenance?: MaintenanceMark[];
  /** Whether this host holds the VIP; undefined without a vip: section, or when its addresses could not be read. */
  vipHolder?: boolean;
  /** What the journals of this host's state dir say (lib/history.ts). */
  events: HistoryEvent[];
}

/** The pgpool node states of pcp_node_info (status 1 and 2 are both "up": with and without pooled connections). */
const PGPOOL_STATES = ['waiting', 'up', 'down'] as const;
const PGPOOL_STATUS: Record<number, (typeof PGPOOL_STATES)[number]> = { 0: 'waiting', 1: 'up', 2: 'up', 3: 'down' };

/**
 * The hook runs an event's steps record, by hook and outcome: each failover run (a run_id) is done when it journaled
 * `done`; online recovery is two hooks (recovery_1st_stage journals planned → prepared, remote_start journals
 * streaming); each VIP entry is one run of escalation, de_escalation or arping. A run that failed before its first
 * journal entry is not in any journal and not counted.
 */
export function hookRuns(events: readonly HistoryEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (hook: string, outcome: string) => counts.set(`${hook}\0${outcome}`, (counts.get(`${hook}\0${outcome}`) ?? 0) + 1);
  for (const e of events) {
    if (e.kind === 'failover') {
      const runs = [...new Set(e.steps.map((s) => s.run_id))];
      for (const r of runs) add('failover', e.steps.some((s) => s.run_id === r && s.step === 'done') ? 'done' : 'unfinished');
    } else if (e.kind === 'recovery') {
      if (e.steps.some((s) => s.step === 'planned' || s.step === 'prepared')) add('recovery_1st_stage', e.steps.some((s) => s.step === 'prepared') ? 'done' : 'unfinished');
      if (e.steps.some((s) => s.step === 'streaming')) add('remote_start', 'done');
    } else {
      const s = e.steps[0]!;
      add(s.event === 'de-escalated' ? 'de_escalation' : s.via === 'arping' ? 'arping' : 'escalation', e.outcome === 'failed' ? 'failed' : 'done');
    }
  }
  return counts;
}

const lsn = (v: bigint | undefined) => (v === undefined ? undefined : Number(v));

/** The metric families of what was observed; families without a sample are left out. */
export function buildMetrics(f: MetricFacts): MetricFamily[] {
  const status: ClusterStatus = buildStatus(f.config, f.observations, f.pcp, f.fenced ?? [], f.maintenance ?? []);
  const families: MetricFamily[] = [];
  const family = (name: string, help: string, samples: (Sample | undefined)[]) => {
    const present = samples.filter((s): s is Sample => s !== undefined && Number.isFinite(s.value));
    if (present.length) families.push({ name: `maas_ha_${name}`, help, samples: present });
  };
  const perNode = (value: (o: NodeObservation, i: number) => number | undefined) =>
    f.config.nodes.map((n, i) => {
      const v = value(f.observations[i]!, i);
      return v === undefined ? undefined : { labels: { node: String(n.id), name: n.name }, value: v };
    });
  const reachable = (o: NodeObservation) => (o.reachable ? o : undefined);

  family('postgres_running', 'PostgreSQL on the node answered the status query (1) or not (0)', perNode((o) => (o.reachable ? 1 : 0)));
  family('primary', 'The node is the current primary by the rule failover uses (1) or not (0)', perNode((o) => (o.id === status.primary ? 1 : 0)));
  family('replica', 'The node answers as a standby (in recovery)', perNode((o) => (o.reachable ? (o.inRecovery ? 1 : 0) : undefined)));
  family('timeline', 'The timeline the node writes or replays', perNode((o) => reachable(o)?.timeline));
  family('xlog_location', "A primary's current WAL position (pg_current_wal_lsn), in bytes", perNode((o) => lsn(reachable(o)?.currentLsn)));
  family('xlog_received_location', "A standby's WAL received and flushed (pg_last_wal_receive_lsn), in bytes", perNode((o) => lsn(reachable(o)?.receiveLsn)));
  family('xlog_replayed_location', "A standby's WAL replayed (pg_last_wal_replay_lsn), in bytes", perNode((o) => lsn(reachable(o)?.replayLsn)));
  family('replication_lag_bytes', "How far a standby's replay is behind the current primary's WAL position, in bytes", perNode((_, i) => status.rows[i]?.lagBytes ?? undefined));
  const primary = f.observations.find((o) => o.id === status.primary);
  family('sync_standbys', 'Standbys the current primary replicates to synchronously (sync or quorum)', [
    primary?.reachable ? { labels: {}, value: primary.replication.filter((r) => r.syncState === 'sync' || r.syncState === 'quorum').length } : undefined,
  ]);
  family(
    'pgpool_node_status',
    "pgpool's status of the node (pcp_node_info): 1 for the state it is in, 0 for the others",
    f.config.nodes.flatMap((n, i) => {
      const info = f.pcp[i];
      if (!info || 'error' in info || PGPOOL_STATUS[info.status] === undefined) return [];
      return PGPOOL_STATES.map((state) => ({ labels: { node: String(n.id), name: n.name, status: state }, value: PGPOOL_STATUS[info.status] === state ? 1 : 0 }));
    }),
  );
  family('pgpool_reachable', 'pgpool answered pcp_node_info for every node (1) or not (0)', [{ labels: {}, value: f.pcp.some((p) => 'error' in p) ? 0 : 1 }]);
  if (f.config.vip) family('vip_holder', 'This host holds the region VIP (1) or not (0)', [f.vipHolder === undefined ? undefined : { labels: { address: f.config.vip.address }, value: f.vipHolder ? 1 : 0 }]);
  family(
    'fenced',
    "maas-ha fenced the node (a marker in state_dir: it must not run as a primary until recovered)",
    f.fenced === undefined ? [] : f.config.nodes.map((n) => ({ labels: { node: String(n.id), name: n.name }, value: f.fenced!.some((m) => m.node === n.id) ? 1 : 0 })),
  );
  family(
    'maintenance',
    'In maintenance (maas-ha maintenance on): the hooks leave the node alone; node="cluster": failover and follow do nothing',
    f.maintenance === undefined
      ? []
      : [
          { labels: { node: 'cluster', name: f.config.cluster_name }, value: f.maintenance.some((m) => m.node === undefined) ? 1 : 0 },
          ...f.config.nodes.map((n) => ({ labels: { node: String(n.id), name: n.name }, value: f.maintenance!.some((m) => m.node === n.id) ? 1 : 0 })),
        ],
  );
  family('problems', 'Problems maas-ha status finds (no primary, split brain, a standby not streaming, ...)', [{ labels: {}, value: status.problems.length }]);
  const last = f.events.filter((e) => e.kind === 'failover').at(-1);
  family('last_failover_timestamp_seconds', "When the newest failover in this host's journals started (Unix time)", [last ? { labels: {}, value: Date.parse(last.started) / 1000 } : undefined]);
  family('last_failover_duration_seconds', "How long the newest failover in this host's journals took, first to last step", [
    last && last.outcome === 'done' && last.durationMs !== null ? { labels: {}, value: last.durationMs / 1000 } : undefined,
  ]);
  family(
    'hook_runs',
    "Hook runs this host's journals record (pruned by age and count: a gauge), by hook and outcome",
    [...hookRuns(f.events)].sort(([a], [b]) => a.localeCompare(b)).map(([key, value]) => {
      const [hook, outcome] = key.split('\0') as [string, string];
      return { labels: { hook, outcome }, value };
    }),
  );
  return families;
}

/**
 * Observes what buildMetrics needs, each part bounded and independent: a node that does not answer, pgpool that
 * does not, an unreadable state dir or `ip` failing leave out their metrics, never the others.
 */
export async function gatherMetrics(deps: Pick<Deps, 'pg' | 'pcp' | 'config' | 'state' | 'shell'>, events: () => HistoryEvent[]): Promise<MetricFacts> {
  const { config } = deps;
  const [observations, pcp, vipHolder] = await Promise.all([
    observeAll(deps, 3000),
    Promise.all(config.nodes.map((n) => deps.pcp.nodeInfo(n.id).catch((err: unknown) => ({ error: messageOf(err) })))),
    config.vip ? observeHost(deps, config.vip).then((v) => v.holdsVip, () => undefined) : Promise.resolve(undefined),
  ]);
  // The state dir of another host, or one this user cannot read: those metrics are left out.
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch {
      return undefined;
    }
  };
  const fenced = attempt(() => deps.state.fenced());
  const maintenance = attempt(() => deps.state.maintenance());
  const history = attempt(events) ?? [];
  return { config, observations, pcp, events: history, ...(fenced ? { fenced } : {}), ...(maintenance ? { maintenance } : {}), ...(vipHolder === undefined ? {} : { vipHolder }) };
}
