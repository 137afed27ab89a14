// `maas-ha metrics`: what was observed becomes Prometheus gauges named after Patroni's where they mean the same;
// what could not be learnt is left out, never written as 0. The text is checked by the Prometheus project's own
// parser (prometheus_client, Debian's python3-prometheus-client, which install.sh installs), not by a regex.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { renderExposition } from '../../lib/adapters/prometheus.ts';
import { metricsFile } from '../../lib/cli/metrics.ts';
import { UsageError } from '../../lib/errors.ts';
import { buildHistory } from '../../lib/history.ts';
import { buildMetrics, gatherMetrics, hookRuns, type MetricFacts } from '../../lib/metrics.ts';
import type { PcpNodeInfo } from '../../lib/model/ports.ts';
import { parseLsn } from '../../lib/model/lsn.ts';
import type { NodeObservation } from '../../lib/observe.ts';
import { testConfig, testVip } from '../support/config.ts';

const primary = (id: number, lsn: string, sync: string[] = []): NodeObservation => ({
  id, reachable: true, inRecovery: false, timeline: 3, timelineSource: 'primary', currentLsn: parseLsn(lsn),
  replication: sync.map((s, i) => ({ applicationName: `pg${i + 1}`, clientAddr: null, state: 'streaming', syncState: s })), synchronousStandbyNames: '',
});
const standby = (id: number, received: string, replayed: string): NodeObservation => ({
  id, reachable: true, inRecovery: true, timeline: 3, timelineSource: 'receiver', receiveLsn: parseLsn(received), replayLsn: parseLsn(replayed),
  walReceiver: { status: 'streaming', senderHost: '10.0.0.11', senderPort: 5432, receivedTli: 3, slotName: null }, replication: [], synchronousStandbyNames: '',
});
const pcp = (id: number, status: number, role: string): PcpNodeInfo => ({
  id, host: `10.0.0.${11 + id}`, port: 5432, status, statusName: '', weight: 0.5, actualStatus: '', role, actualRole: role,
  replicationDelay: '0', replicationState: '', replicationSyncState: '', lastStatusChange: '',
});

const T = Date.parse('2025-03-01T10:15:02.000Z');
const events = buildHistory([
  {
    name: 'failover-node2',
    entries: [
      { at: new Date(T).toISOString(), run_id: 'r1', failed: 2, old_primary: 2, step: 'started' },
      { at: new Date(T + 60_000).toISOString(), run_id: 'r2', failed: 2, old_primary: 2, step: 'started' },
      { at: new Date(T + 60_410).toISOString(), run_id: 'r2', failed: 2, old_primary: 2, step: 'done', node: 0 },
    ],
  },
  { name: 'vip', entries: [{ at: new Date(T).toISOString(), event: 'escalated', ok: true }, { at: new Date(T + 1).toISOString(), event: 'de-escalated', ok: false }] },
  { name: 'recovery', entries: [{ at: new Date(T + 5).toISOString(), step: 'planned', node: 2, primary: 0 }, { at: new Date(T + 9).toISOString(), step: 'streaming', node: 2, primary: 0, timeline: 3 }] },
]);

const healthy: MetricFacts = {
  config: testConfig({ cluster_name: 'region "a"', vip: testVip() }),
  observations: [primary(0, '0/3000148', ['quorum', 'async']), standby(1, '0/3000148', '0/3000100'), { id: 2, reachable: false, error: 'connection refused', refused: true }],
  pcp: [pcp(0, 2, 'primary'), pcp(1, 1, 'standby'), pcp(2, 3, 'standby')],
  fenced: [{ node: 2, since: '2025-03-01T10:16:00Z', status: 'stopped', reason: 'x' }],
  maintenance: [{ node: 1, by: 'root@r1', since: '2025-03-01T11:00:00Z', reason: 'disks' }],
  vipHolder: true,
  events,
};

/** The text as the Prometheus project's Python parser reads it: family → type and samples (name{labels} → value). */
function parse(text: string): Record<string, { type: string; help: string; samples: Record<string, number> }> {
  const script = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "help": f.documentation, "samples": {s.name + "{" + ",".join(k + "=" + v for k, v in sorted(s.labels.items()) if k != "cluster") + "}": s.value for s in f.samples}}
print(json.dumps(out))`;
  // Debian's python3 (python3-prometheus-client), not whatever python3 comes first on PATH.
  const r = spawnSync('/usr/bin/python3', ['-c', script], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`the Prometheus parser refused the text (or is missing: apt-get install python3-prometheus-client): ${r.stderr || r.error?.message}`);
  return JSON.parse(r.stdout) as ReturnType<typeof parse>;
}

test('metrics: a healthy cluster → the Patroni-like gauges, parsed by the Prometheus text parser', async (t) => {
  const text = await renderExposition(buildMetrics(healthy), { cluster: healthy.config.cluster_name });
  const m = parse(text);
  t.true(Object.values(m).every((f) => f.type === 'gauge'), 'every family is a gauge');
  t.deepEqual(m.maas_ha_primary!.samples, { 'maas_ha_primary{name=pg0,node=0}': 1, 'maas_ha_primary{name=pg1,node=1}': 0, 'maas_ha_primary{name=pg2,node=2}': 0 });
  t.deepEqual(m.maas_ha_postgres_running!.samples, { 'maas_ha_postgres_running{name=pg0,node=0}': 1, 'maas_ha_postgres_running{name=pg1,node=1}': 1, 'maas_ha_postgres_running{name=pg2,node=2}': 0 });
  t.deepEqual(m.maas_ha_replica!.samples, { 'maas_ha_replica{name=pg0,node=0}': 0, 'maas_ha_replica{name=pg1,node=1}': 1 }, 'unreachable: left out');
  t.deepEqual(m.maas_ha_timeline!.samples, { 'maas_ha_timeline{name=pg0,node=0}': 3, 'maas_ha_timeline{name=pg1,node=1}': 3 });
  t.deepEqual(m.maas_ha_xlog_location!.samples, { 'maas_ha_xlog_location{name=pg0,node=0}': 0x3000148 });
  t.deepEqual(m.maas_ha_xlog_received_location!.samples, { 'maas_ha_xlog_received_location{name=pg1,node=1}': 0x3000148 });
  t.deepEqual(m.maas_ha_xlog_replayed_location!.samples, { 'maas_ha_xlog_replayed_location{name=pg1,node=1}': 0x3000100 });
  t.deepEqual(m.maas_ha_replication_lag_bytes!.samples, { 'maas_ha_replication_lag_bytes{name=pg1,node=1}': 0x48 });
  t.deepEqual(m.maas_ha_sync_standbys!.samples, { 'maas_ha_sync_standbys{}': 1 });
  t.is(m.maas_ha_pgpool_node_status!.samples['maas_ha_pgpool_node_status{name=pg0,node=0,status=up}'], 1);
  t.is(m.maas_ha_pgpool_node_status!.samples['maas_ha_pgpool_node_status{name=pg2,node=2,status=down}'], 1);
  t.is(m.maas_ha_pgpool_node_status!.samples['maas_ha_pgpool_node_status{name=pg2,node=2,status=up}'], 0);
  t.is(Object.keys(m.maas_ha_pgpool_node_status!.samples).length, 9, 'three states per node');
  t.deepEqual(m.maas_ha_pgpool_reachable!.samples, { 'maas_ha_pgpool_reachable{}': 1 });
  t.deepEqual(m.maas_ha_vip_holder!.samples, { 'maas_ha_vip_holder{address=10.0.0.100}': 1 });
  t.deepEqual(m.maas_ha_fenced!.samples, { 'maas_ha_fenced{name=pg0,node=0}': 0, 'maas_ha_fenced{name=pg1,node=1}': 0, 'maas_ha_fenced{name=pg2,node=2}': 1 });
  t.deepEqual(m.maas_ha_last_failover_timestamp_seconds!.samples, { 'maas_ha_last_failover_timestamp_seconds{}': T / 1000 });
  t.deepEqual(m.maas_ha_last_failover_duration_seconds!.samples, { 'maas_ha_last_failover_duration_seconds{}': 60.41 });
  t.deepEqual(m.maas_ha_hook_runs!.samples, {
    'maas_ha_hook_runs{hook=de_escalation,outcome=failed}': 1,
    'maas_ha_hook_runs{hook=escalation,outcome=done}': 1,
    'maas_ha_hook_runs{hook=failover,outcome=done}': 1,
    'maas_ha_hook_runs{hook=failover,outcome=unfinished}': 1,
    'maas_ha_hook_runs{hook=recovery_1st_stage,outcome=unfinished}': 1,
    'maas_ha_hook_runs{hook=remote_start,outcome=done}': 1,
  });
  t.true(m.maas_ha_problems!.samples['maas_ha_problems{}']! >= 1, 'node 2 unreachable is a problem');
  t.deepEqual(m.maas_ha_maintenance!.samples, {
    'maas_ha_maintenance{name=region "a",node=cluster}': 0,
    'maas_ha_maintenance{name=pg0,node=0}': 0,
    'maas_ha_maintenance{name=pg1,node=1}': 1,
    'maas_ha_maintenance{name=pg2,node=2}': 0,
  });
  t.true(text.includes('cluster="region \\"a\\""'), 'the cluster label on every sample, its quote escaped');
});

test('metrics: what could not be learnt is left out, not 0 (pgpool silent, state dir unreadable, VIP addresses unknown, no primary)', async (t) => {
  const facts: MetricFacts = {
    config: testConfig({ vip: testVip() }),
    observations: [standby(0, '0/5', '0/5'), { id: 1, reachable: false, error: 'timeout' }, { id: 2, reachable: false, error: 'timeout' }],
    pcp: [{ error: 'pcp: no answer' }, { error: 'pcp: no answer' }, { error: 'pcp: no answer' }],
    events: [],
  };
  const m = parse(await renderExposition(buildMetrics(facts)));
  for (const gone of ['maas_ha_pgpool_node_status', 'maas_ha_fenced', 'maas_ha_maintenance', 'maas_ha_vip_holder', 'maas_ha_sync_standbys', 'maas_ha_replication_lag_bytes', 'maas_ha_last_failover_timestamp_seconds', 'maas_ha_hook_runs']) {
    t.false(gone in m, gone);
  }
  t.deepEqual(m.maas_ha_pgpool_reachable!.samples, { 'maas_ha_pgpool_reachable{}': 0 });
  t.deepEqual(m.maas_ha_primary!.samples['maas_ha_primary{name=pg0,node=0}'], 0);
});

test('metrics: an unfinished last failover has a time but no duration', (t) => {
  const unfinished = buildHistory([{ name: 'failover-node0', entries: [{ at: new Date(T).toISOString(), run_id: 'r', failed: 0, old_primary: 0, step: 'started' }] }]);
  const names = buildMetrics({ ...healthy, events: unfinished }).map((f) => f.name);
  t.true(names.includes('maas_ha_last_failover_timestamp_seconds'));
  t.false(names.includes('maas_ha_last_failover_duration_seconds'));
});

test('metrics: hook runs count each failover run, both recovery hooks and each VIP entry by its hook', (t) => {
  t.deepEqual(Object.fromEntries([...hookRuns(events)].map(([k, v]) => [k.replace('\0', ' '), v])), {
    'failover unfinished': 1,
    'failover done': 1,
    'escalation done': 1,
    'de_escalation failed': 1,
    'recovery_1st_stage unfinished': 1,
    'remote_start done': 1,
  });
});

test('metrics gather: pcp failing, the state dir unreadable and `ip` failing each leave out their part only', async (t) => {
  const config = testConfig({ vip: testVip() });
  const deps = {
    config,
    pg: { query: async () => Promise.reject(new Error('connect ECONNREFUSED')) },
    pcp: { nodeInfo: async () => Promise.reject(new Error('pcp timed out')) },
    state: { fenced: () => { throw new Error('EACCES'); }, maintenance: () => { throw new Error('EACCES'); } },
    shell: { run: async (argv: readonly string[]) => ({ argv: [...argv], exitCode: 1, signal: null, stdout: '', stderr: 'no', durationMs: 1, timedOut: false }) },
  } as unknown as Parameters<typeof gatherMetrics>[0];
  const facts = await gatherMetrics(deps, () => events);
  t.is(facts.fenced, undefined);
  t.is(facts.maintenance, undefined);
  t.is(facts.vipHolder, undefined);
  t.is(facts.events.length, events.length, 'the journals were still read');
  t.true(facts.pcp.every((p) => 'error' in p));
  t.true(facts.observations.every((o) => !o.reachable));
});

const FILES: [string, string | RegExp][] = [
  ['/var/lib/prometheus/node-exporter/maas_ha.prom', '/var/lib/prometheus/node-exporter/maas_ha.prom'],
  ['/tmp/maas_ha.txt', /reads only files named \*\.prom, got "\/tmp\/maas_ha.txt"/],
  ['/tmp/.prom', /reads only files named \*\.prom/],
  ['', /^--write: expected a file name/],
];
for (const [raw, want] of FILES) {
  test(`metrics --write ${JSON.stringify(raw)} → ${want}`, (t) => {
    if (typeof want === 'string') t.is(metricsFile(raw), want);
    else t.throws(() => metricsFile(raw), { instanceOf: UsageError, message: want });
  });
}

test('metrics: the parser the tests trust refuses text that is not the exposition format', (t) => {
  t.throws(() => parse('maas_ha_primary{node="0" 1\n'), { message: /refused/ });
});

test('metrics --json --write F → a usage error naming --json, before any configuration is read', async (t) => {
  const { metricsCommand } = await import('../../lib/cli/metrics.ts');
  await t.throwsAsync(metricsCommand(['--json', '--write', 'x.prom', '--config', '/nonexistent/maas-ha.yaml'], { out: () => {}, err: () => {} }), { instanceOf: UsageError, message: /^--json: .*does not go with --write/ });
});
