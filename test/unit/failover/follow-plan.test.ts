import test from 'ava';
import { checkpointLsnOf, describeDiscard, forkFromHistory, followRebuildOptions, planFollow, type FollowAction, type FollowFacts } from '../../../lib/failover/follow.ts';
import { conninfo, standbyLines } from '../../../lib/recovery/standby-conf.ts';
import { planRebuild, type RebuildFacts } from '../../../lib/recovery/plan.ts';
import { parseLsn } from '../../../lib/model/lsn.ts';
import type { NodeObservation } from '../../../lib/observe.ts';
import { testConfig, testNode } from '../../support/config.ts';

const config = testConfig();
const node = testNode(2);
const newPrimary = testNode(1);
const standbyOf = (host: string, tli: number, status = 'streaming'): NodeObservation => ({
  id: 2, reachable: true, inRecovery: true, timeline: tli, receiveLsn: parseLsn('0/3000000'), replayLsn: parseLsn('0/3000000'),
  walReceiver: { status, senderHost: host, senderPort: 5432, receivedTli: tli, slotName: 'maas_ha_node_2' },
  replication: [], synchronousStandbyNames: '',
});
const facts = (over: Partial<FollowFacts>): FollowFacts => ({
  node, newPrimary, primaryTimeline: 2, observation: standbyOf(newPrimary.hostname, 2), sshReachable: true, ...over,
});

const table: [string, Partial<FollowFacts>, FollowAction['kind']][] = [
  ['already streaming the new timeline from the new primary → attach', {}, 'attach'],
  ['running standby of the old primary → repoint', { observation: standbyOf('10.0.0.11', 1) }, 'repoint'],
  ['streaming from the new primary but on the old timeline → repoint', { observation: standbyOf(newPrimary.hostname, 1) }, 'repoint'],
  ['down and host unreachable → leave detached', { observation: { id: 2, reachable: false, error: 'refused' }, sshReachable: false }, 'leave-detached'],
  ['down after a clean shutdown → rewind', { observation: { id: 2, reachable: false, error: 'refused' }, stoppedState: 'shut down' }, 'rewind'],
  ['down, shut down in recovery → rewind', { observation: { id: 2, reachable: false, error: 'refused' }, stoppedState: 'shut down in recovery' }, 'rewind'],
  ['down after a crash → leave for recovery', { observation: { id: 2, reachable: false, error: 'refused' }, stoppedState: 'in production' }, 'leave-detached'],
  ['the new primary itself → skip', { node: newPrimary }, 'skip'],
  ['a running second primary → never touched', { observation: { ...(standbyOf('x', 2) as Extract<NodeObservation, { reachable: true }>), inRecovery: false } }, 'leave-detached'],
];

for (const [title, over, kind] of table) {
  test(`follow plan: ${title}`, (t) => {
    const a = planFollow(facts(over));
    t.is(a.kind, kind, a.why);
    t.regex(a.why, /node \d/);
  });
}

test('follow: primary_conninfo names the new primary exactly as backend_hostname, with the passfile, no password', (t) => {
  const c = conninfo({ config: testConfig({ replication: { ...config.replication, password_file: '/etc/maas-ha/repl.pgpass' } }) }, newPrimary, node);
  t.regex(c, /^host=10\.0\.0\.12 port=5432 user=replicator application_name=pg2 /);
  t.regex(c, /passfile=\/etc\/maas-ha\/repl\.pgpass/);
  t.notRegex(c, /password=/);
});

test('follow: standby lines quote values for postgresql.conf and name the slot', (t) => {
  const lines = standbyLines({ config }, newPrimary, node);
  t.true(lines.some((l) => /^primary_conninfo = 'host=10\.0\.0\.12 .*'$/.test(l)));
  t.true(lines.includes("primary_slot_name = 'maas_ha_node_2'"));
  t.true(lines.includes("recovery_target_timeline = 'latest'"));
});

test('follow: a diverged node is rewound; a base backup only when recovery.follow_basebackup allows it, old directory moved aside', (t) => {
  const sysid = '7312345678901234567';
  const facts = (systemIdentifier: string): RebuildFacts => ({
    node, primary: newPrimary,
    primaryFacts: { id: 1, systemIdentifier: sysid, major: '15', timeline: 2, sizeBytes: 1024 ** 2, tablespaces: [] },
    disk: {
      datadirExists: true, empty: false, pgVersion: '15', running: false, standbySignal: false, newExists: false, newComplete: false,
      parentExists: true, parentWritable: true, datadirWritable: true, freeBytes: 1024 ** 3, oldDirs: [],
      control: { systemIdentifier, state: 'shut down', timeline: 1, walLogHints: true, checksums: false },
    },
    observation: { id: 2, reachable: false, error: 'down' },
  });
  const now = new Date('2026-01-01T00:00:00Z');
  const off = { ...followRebuildOptions(config), now };
  const on = { ...followRebuildOptions(testConfig({ recovery: { ...config.recovery, follow_basebackup: true } })), now };
  t.like(planRebuild(facts(sysid), off), { kind: 'rebuild', method: 'rewind', fallback: false });
  t.like(planRebuild(facts(sysid), on), { kind: 'rebuild', method: 'rewind', fallback: true });
  const refused = planRebuild(facts('42'), off);
  t.is(refused.kind, 'refuse');
  t.regex(refused.kind === 'refuse' ? refused.why : '', /needs a base backup .*recovery\.follow_basebackup is off/);
  t.like(planRebuild(facts('42'), on), { kind: 'rebuild', method: 'basebackup', oldDir: '/var/lib/postgresql/15/main.maas-ha-old-20260101T000000Z' });
});

test('follow: what a rewind of a former primary discards is measured from the fork point to its last checkpoint', (t) => {
  const history = '1\t0/3000148\tno recovery target specified\n2\t0/5000000\tno recovery target specified\n';
  t.deepEqual(forkFromHistory(history, 2), { lsn: parseLsn('0/5000000') });
  t.regex(forkFromHistory(history, 7).why ?? '', /timeline 7 is not in the new primary's history/);
  const control = { checkpointLsn: checkpointLsnOf("Database cluster state:               shut down\nLatest checkpoint location:           0/3000A28\nLatest checkpoint's TimeLineID:       1\n") };
  const d = describeDiscard(0, control, { lsn: parseLsn('0/3000148') });
  t.regex(d.sentence, /pg_rewind discards at least 2.2 kB of WAL that node 0 wrote after the fork point \(0\/3000148 to 0\/3000A28\)/);
  t.is(d.fields.discarded_bytes, 0xa28 - 0x148);
  t.regex(describeDiscard(0, control, { lsn: parseLsn('0/3000A28') }).sentence, /wrote nothing after the fork point/);
  t.regex(describeDiscard(0, control, { why: 'its timeline history could not be read (x)' }).sentence, /not measured: its timeline history could not be read/);
});
