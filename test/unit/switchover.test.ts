// The switchover's safety checks and its progress lines: pure, from cluster status values.
import test from 'ava';
import type { MaintenanceMark } from '../../lib/model/ports.ts';
import type { ClusterStatus, StatusRow } from '../../lib/status.ts';
import { decideSwitchover, maintenanceRefusal, statusChanges, switchedOver, switchoverRefusal } from '../../lib/switchover.ts';

const row = (id: number, pgRole: StatusRow['pgRole'], over: Partial<StatusRow> = {}): StatusRow => ({
  id,
  name: `pg${id}`,
  address: `10.0.0.1${id}:5432`,
  pgRole,
  pgpoolStatus: 'up',
  pgpoolRole: pgRole === 'unreachable' ? '-' : pgRole,
  timeline: pgRole === 'unreachable' ? null : 1,
  lsn: '0/3000000',
  lagBytes: 0,
  replication: pgRole === 'standby' ? 'streaming from 10.0.0.10 (quorum)' : '2 standbys attached',
  problems: [],
  ...over,
});
const status = (rows: StatusRow[], problems: string[] = [], maintenance: MaintenanceMark[] = []): ClusterStatus => ({
  cluster: 't',
  primary: rows.find((r) => r.pgRole === 'primary')?.id ?? null,
  rows,
  problems: [...problems, ...rows.flatMap((r) => r.problems.map((p) => `node ${r.id}: ${p}`))],
  maintenance,
});
const healthy = () => status([row(0, 'primary'), row(1, 'standby'), row(2, 'standby')]);

test('switchover: a healthy standby of a redundant cluster → allowed', (t) => {
  t.is(switchoverRefusal(healthy(), 1), undefined);
});

const refusals: [string, ClusterStatus, number, RegExp][] = [
  ['the primary itself', healthy(), 0, /node 0 is already the primary/],
  ['a node not configured', healthy(), 7, /node 7 is not in the configuration/],
  ['a standby pgpool has down', status([row(0, 'primary'), row(1, 'standby', { pgpoolStatus: 'down' }), row(2, 'standby')]), 1, /pgpool has node 1 down/],
  ['a standby that does not stream', status([row(0, 'primary'), row(1, 'standby', { problems: ['not streaming'] }), row(2, 'standby')]), 1, /node 1 is not a healthy standby: not streaming/],
  ['an unreachable node', status([row(0, 'primary'), row(1, 'unreachable'), row(2, 'standby')]), 1, /node 1 is unreachable, not a running standby/],
  ['no primary (that is a failover)', status([row(1, 'standby'), row(2, 'standby')]), 1, /no primary to switch over from/],
  ['the cluster in maintenance', status([row(0, 'primary'), row(1, 'standby'), row(2, 'standby')], [], [{ by: 'root@r1', since: '2026-11-30T20:00:00.000Z', reason: 'disks' }]), 1, /cluster is in maintenance .*would promote nobody/],
  ['a target in maintenance', status([row(0, 'primary'), row(1, 'standby'), row(2, 'standby')], [], [{ node: 1, by: 'root@r1', since: '2026-11-30T20:00:00.000Z', reason: '' }]), 1, /node 1 is in maintenance .*maintenance off 1 first/],
  ['another node broken', status([row(0, 'primary'), row(1, 'standby'), row(2, 'unreachable', { problems: ['connect ECONNREFUSED'] })]), 1, /not redundant now \(node 2: connect ECONNREFUSED\).*--force/],
];
for (const [title, s, target, why] of refusals) {
  test(`switchover: ${title} → refused, saying why`, (t) => {
    t.regex(switchoverRefusal(s, target) ?? '', why);
  });
}

test('switchover: maintenance is a refusal --force does not override; another node in maintenance is not', (t) => {
  const mark = (node?: number): MaintenanceMark => ({ ...(node === undefined ? {} : { node }), by: 'root@r1', since: '2026-11-30T20:00:00.000Z', reason: '' });
  const rows = () => [row(0, 'primary'), row(1, 'standby'), row(2, 'standby')];
  t.regex(maintenanceRefusal(status(rows(), [], [mark()]), 1) ?? '', /cluster is in maintenance/);
  t.regex(maintenanceRefusal(status(rows(), [], [mark(1)]), 1) ?? '', /node 1 is in maintenance/);
  t.is(maintenanceRefusal(status(rows(), [], [mark(2)]), 1), undefined);
});

test('switchover: progress lines name only the nodes that changed, done only when fully redundant', (t) => {
  const before = healthy();
  const mid = status([row(0, 'unreachable', { pgpoolStatus: 'down' }), row(1, 'primary', { timeline: 2 }), row(2, 'standby')]);
  t.deepEqual(statusChanges(before, mid), ['node 0: unreachable, pgpool down', 'node 1: primary (timeline 2), pgpool up']);
  t.deepEqual(statusChanges(mid, mid), []);
  t.false(switchedOver(mid, 1));
  const after = status([row(0, 'standby', { timeline: 2 }), row(1, 'primary', { timeline: 2 }), row(2, 'standby', { timeline: 2 })]);
  t.true(switchedOver(after, 1));
  t.false(switchedOver(after, 2));
});

test('switchover decision: a healthy standby → switch, the steps name the old primary, the target and the other standby', (t) => {
  const d = decideSwitchover(healthy(), 1, false);
  if (d.kind !== 'switch') return t.fail(JSON.stringify(d));
  t.is(d.from, 0);
  t.is(d.to, 1);
  t.is(d.despite, undefined);
  t.regex(d.steps[0]!, /pcp_promote_node --switchover -n 1: pgpool detaches node 0/);
  t.regex(d.steps[1]!, /stops node 0 cleanly .*promotes node 1/);
  t.regex(d.steps[2]!, /rewinds node 0 and repoints node 2 to follow node 1/);
});

test('switchover decision: --force goes ahead despite a broken node, saying so; never past maintenance, the primary itself or no primary', (t) => {
  const broken = status([row(0, 'primary'), row(1, 'standby'), row(2, 'unreachable', { problems: ['connect ECONNREFUSED'] })]);
  t.is(decideSwitchover(broken, 1, false).kind, 'refuse');
  const forced = decideSwitchover(broken, 1, true);
  t.is(forced.kind, 'switch');
  t.regex(forced.kind === 'switch' ? (forced.despite ?? '') : '', /not redundant now/);
  const inMaintenance = status([row(0, 'primary'), row(1, 'standby'), row(2, 'standby')], [], [{ by: 'root@r1', since: '2026-11-30T20:00:00.000Z', reason: '' }]);
  t.deepEqual(decideSwitchover(inMaintenance, 1, true).kind, 'refuse');
  t.deepEqual(decideSwitchover(healthy(), 0, true).kind, 'refuse');
  t.deepEqual(decideSwitchover(status([row(1, 'standby'), row(2, 'standby')]), 1, true).kind, 'refuse');
});
