// The rebuild decision: pg_rewind or a base backup beside the old data directory, or a refusal that says why.
// Pure: facts in, plan out; no PostgreSQL, no ssh.
import test from 'ava';
import {
  describePlan,
  oldDirOf,
  oldDirsToPrune,
  parseControlData,
  parseRecoveryPosition,
  parseTargetDisk,
  planRebuild,
  primaryCandidates,
  resolveRemoteStart,
  resolveTarget,
  utcStamp,
  type PrimaryFacts,
  type RefusalReason,
  type RebuildFacts,
  type RebuildMethod,
  type RebuildOptions,
  type TargetDisk,
} from '../../../lib/recovery/plan.ts';
import type { NodeObservation } from '../../../lib/observe.ts';
import { parseLsn } from '../../../lib/model/lsn.ts';
import { testConfig, testNode } from '../../support/config.ts';

const DATA = '/var/lib/postgresql/15/main';
const node = testNode(2);
const primary = testNode(1);
const SYSID = '7312345678901234567';

const primaryFacts: PrimaryFacts = { id: 1, systemIdentifier: SYSID, major: '15', timeline: 3, sizeBytes: 1024 ** 3, tablespaces: [] };

/** A former member, stopped after a crash: the usual case after a failover. */
const formerMember: TargetDisk = {
  datadirExists: true,
  empty: false,
  pgVersion: '15',
  running: false,
  standbySignal: false,
  newExists: false,
  newComplete: false,
  parentExists: true,
  parentWritable: true,
  datadirWritable: true,
  freeBytes: 50 * 1024 ** 3,
  sizeBytes: 1100 * 1024 ** 2,
  oldDirs: [],
  control: { systemIdentifier: SYSID, state: 'in production', timeline: 2, walLogHints: true, checksums: false },
};
const down: NodeObservation = { id: 2, reachable: false, error: 'connect ECONNREFUSED' };
const runningStandby = (host: string, tli: number, status = 'streaming'): NodeObservation => ({
  id: 2, reachable: true, inRecovery: true, timeline: tli, receiveLsn: parseLsn('0/3000000'), replayLsn: parseLsn('0/3000000'),
  walReceiver: { status, senderHost: host, senderPort: 5432, receivedTli: tli, slotName: 'maas_ha_node_2' },
  replication: [], synchronousStandbyNames: '',
});
const runningPrimary: NodeObservation = { ...(runningStandby('x', 2) as Extract<NodeObservation, { reachable: true }>), inRecovery: false, walReceiver: undefined };

const facts = (disk: Partial<TargetDisk> = {}, observation: NodeObservation = down): RebuildFacts => ({
  node, primary, primaryFacts, disk: { ...formerMember, ...disk }, observation,
});
const NOW = new Date('2026-01-02T03:04:05.678Z');
const opts = (o: Partial<RebuildOptions> = {}): RebuildOptions => ({ method: 'auto', force: false, initial: false, basebackup: true, now: NOW, ...o });

type Expect = { kind: 'refuse'; why: RegExp; reason?: RefusalReason } | { kind: 'rebuild'; method: 'rewind' | 'basebackup' | 'resume'; stop?: boolean; fallback?: boolean; oldDir?: string | undefined; removeStaleNew?: boolean };

const table: [string, RebuildFacts, RebuildOptions, Expect][] = [
  ['crashed former primary of this cluster → rewind, base backup as the fallback', facts(), opts(), { kind: 'rebuild', method: 'rewind', stop: false, fallback: true, oldDir: undefined }],
  ['cleanly stopped standby that got ahead → rewind', facts({ control: { ...formerMember.control!, state: 'shut down in recovery' } }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['data checksums instead of wal_log_hints → rewind', facts({ control: { ...formerMember.control!, walLogHints: false, checksums: true } }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['neither wal_log_hints nor checksums → base backup, old directory moved aside', facts({ control: { ...formerMember.control!, walLogHints: false, checksums: false } }), opts(), { kind: 'rebuild', method: 'basebackup', oldDir: `${DATA}.maas-ha-old-20260102T030405Z` }],
  ['data directory wiped (empty) → base backup, nothing to move aside', facts({ empty: true, pgVersion: undefined, control: undefined, sizeBytes: 0 }), opts(), { kind: 'rebuild', method: 'basebackup', oldDir: undefined }],
  ['no data directory at all → base backup', facts({ datadirExists: false, empty: false, pgVersion: undefined, control: undefined, datadirWritable: false }), opts(), { kind: 'rebuild', method: 'basebackup', oldDir: undefined }],
  ['another cluster (different system identifier) → base backup, kept aside', facts({ control: { ...formerMember.control!, systemIdentifier: '42' } }), opts(), { kind: 'rebuild', method: 'basebackup', oldDir: `${DATA}.maas-ha-old-20260102T030405Z` }],
  ['another major version → base backup', facts({ pgVersion: '14' }), opts(), { kind: 'rebuild', method: 'basebackup' }],
  ['pg_controldata unreadable → base backup', facts({ control: undefined, controlError: 'could not open file' }), opts(), { kind: 'rebuild', method: 'basebackup' }],
  ['--method basebackup on a rewindable directory → base backup', facts(), opts({ method: 'basebackup' }), { kind: 'rebuild', method: 'basebackup' }],
  ['--method rewind on another cluster → refused with the reason', facts({ control: { ...formerMember.control!, systemIdentifier: '42' } }), opts({ method: 'rewind' }), { kind: 'refuse', why: /pg_rewind cannot rejoin node 2: it holds another cluster/ }],
  ['rewind needed, base backup not allowed (follow) → rewind without fallback', facts(), opts({ basebackup: false }), { kind: 'rebuild', method: 'rewind', fallback: false }],
  ['base backup needed but not allowed → refused, naming the setting', facts({ empty: true, pgVersion: undefined, control: undefined }), opts({ basebackup: false, basebackupOffBecause: 'recovery.follow_basebackup is off' }), { kind: 'refuse', why: /needs a base backup .*recovery\.follow_basebackup is off/ }],
  ['running postmaster (not answering) → stopped first', facts({ running: true }), opts(), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['the primary itself → refused', { ...facts(), node: primary }, opts({ force: true }), { kind: 'refuse', why: /node 1 is the primary/, reason: 'is-primary' }],
  ['healthy streaming standby → refused, pointing at pcp_attach_node', facts({}, runningStandby(primary.hostname, 3)), opts(), { kind: 'refuse', why: /healthy standby.*pcp_attach_node -n 2.*--force/, reason: 'healthy-standby' }],
  ['healthy standby with --force → rebuilt, stopped first', facts({ running: true }, runningStandby(primary.hostname, 3)), opts({ force: true }), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['standby on the old timeline → not healthy: rebuilt', facts({ running: true }, runningStandby(primary.hostname, 2)), opts(), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['standby of another host → not healthy: rebuilt', facts({ running: true }, runningStandby('10.9.9.9', 3)), opts(), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['running second primary → refused without --force', facts({ running: true }, runningPrimary), opts(), { kind: 'refuse', why: /runs as a second primary.*--force/, reason: 'second-primary' }],
  ['running second primary with --force → stopped, rewound', facts({ running: true }, runningPrimary), opts({ force: true }), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['--initial on a member of this cluster → refused', facts(), opts({ initial: true }), { kind: 'refuse', why: /--initial: .*already holds this cluster/, reason: 'already-initialised' }],
  ['--initial on a fresh Debian cluster (foreign) → base backup, foreign cluster kept', facts({ control: { ...formerMember.control!, systemIdentifier: '99', state: 'shut down' } }), opts({ initial: true }), { kind: 'rebuild', method: 'basebackup', oldDir: `${DATA}.maas-ha-old-20260102T030405Z` }],
  ['complete copy left beside a missing data directory → resume the swap', facts({ datadirExists: false, pgVersion: undefined, control: undefined, newExists: true, newComplete: true }), opts(), { kind: 'rebuild', method: 'resume' }],
  ['unfinished copy of an earlier attempt → removed first', facts({ newExists: true }), opts({ method: 'basebackup' }), { kind: 'rebuild', method: 'basebackup', removeStaleNew: true }],
  ['read-only data directory, rewind → refused before anything changes', facts({ datadirWritable: false }), opts(), { kind: 'refuse', why: /not writable .*nothing was changed/ }],
  ['read-only parent, base backup → refused before anything changes', facts({ parentWritable: false }), opts({ method: 'basebackup' }), { kind: 'refuse', why: /cannot build the copy beside .*not writable.*nothing was changed/ }],
  ['parent directory missing → refused', facts({ datadirExists: false, parentExists: false, pgVersion: undefined, control: undefined }), opts(), { kind: 'refuse', why: /does not exist on node 2's host/ }],
  ['not enough free space for the copy → refused, listing the kept copies', facts({ freeBytes: 512 * 1024 ** 2, oldDirs: [`${DATA}.maas-ha-old-20250101T000000Z`] }), opts({ method: 'basebackup' }), { kind: 'refuse', why: /needs about 1\.1 GB free .* only 512 MB .*maas-ha-old-20250101T000000Z/ }],
  ['tablespaces on the primary → base backup refused', { ...facts(), primaryFacts: { ...primaryFacts, tablespaces: ['/srv/ts1'] } }, opts({ method: 'basebackup' }), { kind: 'refuse', why: /tablespaces \(\/srv\/ts1\)/ }],
];

for (const [title, f, o, want] of table) {
  test(`rebuild plan: ${title}`, (t) => {
    const plan = planRebuild(f, o);
    t.is(plan.kind, want.kind, plan.kind === 'refuse' ? plan.why : plan.why);
    if (plan.kind === 'refuse' && want.kind === 'refuse') {
      t.regex(plan.why, want.why);
      // What callers act on: a typed reason, never the prose (disk, method and layout refusals: not-possible).
      t.is(plan.reason, want.reason ?? 'not-possible', title);
    }
    if (plan.kind === 'rebuild' && want.kind === 'rebuild') {
      t.is(plan.method, want.method, plan.why);
      for (const k of ['stop', 'fallback', 'oldDir', 'removeStaleNew'] as const) if (k in want) t.is(plan[k], want[k], k);
      t.is(plan.newDir, `${DATA}.maas-ha-new`);
    }
  });
}

test('rebuild plan: every plan says where the old data goes, never that it is deleted before the node streams', (t) => {
  const f = facts({ control: { ...formerMember.control!, systemIdentifier: '42' } });
  const plan = planRebuild(f, opts());
  const steps = describePlan(f, plan, 2);
  t.true(steps.some((s) => s.includes(`${DATA} → ${DATA}.maas-ha-old-20260102T030405Z`)), steps.join('\n'));
  t.true(steps.some((s) => /keep the 2 newest replaced data directories/.test(s)));
  const order = steps.findIndex((s) => /swap:/.test(s)) < steps.findIndex((s) => /^ *\d+\. start node 2/.test(s));
  t.true(order, 'the swap comes before the start, the pruning after it');
  t.deepEqual(steps.filter((s) => /^\s+\d+\. /.test(s)).map((s) => Number(/(\d+)\./.exec(s)![1])), [1, 2, 3, 4, 5, 6]);
  t.deepEqual(describePlan(f, { kind: 'refuse', why: 'because', reason: 'not-possible' }, 1), ['refused: because']);
});

test('old data directories: named by UTC time so they sort; pruning keeps the newest N and only ours', (t) => {
  t.is(utcStamp(NOW), '20260102T030405Z');
  t.is(oldDirOf(DATA, NOW), `${DATA}.maas-ha-old-20260102T030405Z`);
  const dirs = ['20260301T000000Z', '20250101T000000Z', '20260102T030405Z'].map((s) => `${DATA}.maas-ha-old-${s}`);
  t.deepEqual(oldDirsToPrune(DATA, dirs, 1), [`${DATA}.maas-ha-old-20250101T000000Z`, `${DATA}.maas-ha-old-20260102T030405Z`]);
  t.deepEqual(oldDirsToPrune(DATA, dirs, 3), []);
  t.deepEqual(oldDirsToPrune(DATA, dirs, 0).length, 3);
  t.deepEqual(oldDirsToPrune(DATA, ['/elsewhere.maas-ha-old-1', `${DATA}2.maas-ha-old-1`], 0), [], 'another directory is never pruned');
});

const CONTROLDATA = `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7312345678901234567
Database cluster state:               shut down in recovery
pg_control last modified:             Tue 25 Nov 2026 04:10:44 AM UTC
Latest checkpoint location:           0/4000060
Latest checkpoint's TimeLineID:       2
wal_log_hints setting:                on
Data page checksum version:           0
`;

test('pg_controldata (C locale) → system identifier, state, timeline, wal_log_hints, checksums', (t) => {
  t.deepEqual(parseControlData(CONTROLDATA), { systemIdentifier: SYSID, state: 'shut down in recovery', timeline: 2, walLogHints: true, checksums: false });
  t.deepEqual(parseControlData(''), { systemIdentifier: undefined, state: undefined, timeline: undefined, walLogHints: undefined, checksums: undefined });
});

test('facts script output → the disk as the planner sees it', (t) => {
  const out = [
    'datadir=1', 'empty=0', 'writable=1', 'pg_version=15', 'running=0', 'standby_signal=1', 'new=1', 'parent=1', 'parent_writable=0', 'free_kb=2048',
    `old=${DATA}.maas-ha-old-20260301T000000Z`, `old=${DATA}.maas-ha-old-20250101T000000Z`, 'size_kb=100',
    ...CONTROLDATA.trim().split('\n').map((l) => `control: ${l}`),
  ].join('\n');
  const d = parseTargetDisk(out);
  t.like(d, { datadirExists: true, empty: false, datadirWritable: true, pgVersion: '15', running: false, standbySignal: true, newExists: true, newComplete: false, parentWritable: false, freeBytes: 2048 * 1024, sizeBytes: 100 * 1024 });
  t.deepEqual(d.oldDirs, [`${DATA}.maas-ha-old-20250101T000000Z`, `${DATA}.maas-ha-old-20260301T000000Z`]);
  t.is(d.control?.systemIdentifier, SYSID);
  const broken = parseTargetDisk('datadir=1\npg_version=15\ncontrol: pg_controldata: fatal: could not open file "global/pg_control"');
  t.is(broken.control, undefined);
  t.regex(broken.controlError ?? '', /could not open file/);
  t.like(parseTargetDisk('datadir=0\nrunning=0'), { datadirExists: false, pgVersion: undefined, parentExists: false, oldDirs: [] });
});

const config = testConfig();

test('recovery arguments → the node pgpool means, checked against maas-ha.yaml', (t) => {
  const n2 = config.nodes[2]!;
  const args = { primaryDataDir: DATA, targetHost: n2.hostname, targetDataDir: DATA, primaryPort: 5432 };
  t.is(resolveTarget(config.nodes, { ...args, targetNodeId: 2, targetPort: 5432, primaryHost: '10.0.0.11' }).id, 2);
  t.is(resolveTarget(config.nodes, args).id, 2, 'pgpool 3.4-3.7: found by host and data directory');
  t.throws(() => resolveTarget(config.nodes, { ...args, targetNodeId: 7 }), { message: /node 7, which is not in maas-ha's configuration/ });
  t.throws(() => resolveTarget(config.nodes, { ...args, targetNodeId: 2, targetDataDir: '/srv/other' }), {
    message: /backend settings for node 2 differ from maas-ha's: data directory \/srv\/other \(maas-ha: \/var\/lib\/postgresql\/15\/main\)/,
  });
  t.throws(() => resolveTarget(config.nodes, { ...args, targetHost: '10.9.9.9' }), { message: /no node in maas-ha's configuration has host 10\.9\.9\.9/ });
  t.deepEqual(primaryCandidates(config.nodes, { ...args, primaryHost: '10.0.0.11' }, n2).map((n) => n.id), [0]);
  t.deepEqual(primaryCandidates(config.nodes, args, n2).map((n) => n.id), [0, 1], 'before 4.3 every node with that port and directory is a candidate');
});

test('pgpool_remote_start host datadir → the node, or a message naming what does not match', (t) => {
  t.is(resolveRemoteStart(config.nodes, '10.0.0.12', DATA).id, 1);
  t.throws(() => resolveRemoteStart(config.nodes, '10.0.0.12', '/srv/x'), { message: /no node .* host 10\.0\.0\.12 and data directory \/srv\/x/ });
});

// ---- a stopped standby that only needs a start; the parent a rewind saves into

const primaryAt = { ...primaryFacts, lsn: parseLsn('0/9000000') };
const crashedStandby = (over: Partial<TargetDisk> = {}): RebuildFacts => ({
  ...facts({
    standbySignal: true,
    control: { ...formerMember.control!, state: 'in archive recovery', timeline: 3 },
    position: { lsn: parseLsn('0/8000028'), timeline: 3 },
    ...over,
  }),
  primaryFacts: primaryAt,
});

type StartExpect = { kind: 'refuse'; why: RegExp; reason?: RefusalReason } | { kind: 'rebuild'; method: RebuildMethod; stop?: boolean; fallback?: boolean };

const startTable: [string, RebuildFacts, RebuildOptions, StartExpect][] = [
  ['crashed standby on the primary\'s timeline, behind it → only a start, no pg_rewind, no copy', crashedStandby(), opts(), { kind: 'rebuild', method: 'start', stop: false, fallback: false }],
  ['standby shut down cleanly on the primary\'s timeline → only a start', crashedStandby({ control: { ...formerMember.control!, state: 'shut down in recovery', timeline: 3 } }), opts(), { kind: 'rebuild', method: 'start' }],
  ['crashed standby exactly at the primary\'s position → only a start', crashedStandby({ position: { lsn: parseLsn('0/9000000'), timeline: 3 } }), opts(), { kind: 'rebuild', method: 'start' }],
  ['crashed standby without wal_log_hints or checksums → still only a start (no pg_rewind involved)', crashedStandby({ control: { ...formerMember.control!, state: 'in archive recovery', timeline: 3, walLogHints: false, checksums: false } }), opts(), { kind: 'rebuild', method: 'start' }],
  ['crashed standby on an older timeline → pg_rewind (it may have gone past the fork)', crashedStandby({ position: { lsn: parseLsn('0/8000028'), timeline: 2 } }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['crashed standby ahead of the primary on its timeline → pg_rewind', crashedStandby({ position: { lsn: parseLsn('0/A000000'), timeline: 3 } }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['a crashed former primary (in production) on the same timeline → pg_rewind', crashedStandby({ standbySignal: false, control: { ...formerMember.control!, state: 'in production', timeline: 3 } }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['no standby.signal → pg_rewind, never a start of a possible primary', crashedStandby({ standbySignal: false }), opts(), { kind: 'rebuild', method: 'rewind' }],
  ['its postmaster still runs → stopped and rewound, not started', crashedStandby({ running: true }), opts(), { kind: 'rebuild', method: 'rewind', stop: true }],
  ['primary position unknown → pg_rewind (conservative)', { ...crashedStandby(), primaryFacts: primaryFacts }, opts(), { kind: 'rebuild', method: 'rewind' }],
  ['another cluster with standby.signal → base backup', crashedStandby({ control: { ...formerMember.control!, state: 'in archive recovery', timeline: 3, systemIdentifier: '42' } }), opts(), { kind: 'rebuild', method: 'basebackup' }],
  ['--method rewind on a startable standby → pg_rewind, as asked', crashedStandby(), opts({ method: 'rewind' }), { kind: 'rebuild', method: 'rewind' }],
  ['startable standby on a read-only disk → refused before anything changes', crashedStandby({ datadirWritable: false }), opts(), { kind: 'refuse', why: /data directory .* is not writable \(read-only filesystem or wrong owner\): nothing was changed/ }],
  ['rewind with the parent not writable → refused: its configuration cannot be saved beside it', facts({ parentWritable: false }), opts(), { kind: 'refuse', why: /cannot save node 2's own configuration files beside \/var\/lib\/postgresql\/15\/main before pg_rewind: \/var\/lib\/postgresql\/15 is not writable .*nothing was changed/ }],
  ['rewind with the parent missing → refused', facts({ parentExists: false, parentWritable: false }), opts({ method: 'rewind' }), { kind: 'refuse', why: /\/var\/lib\/postgresql\/15 does not exist on node 2's host/ }],
];

for (const [title, f, o, want] of startTable) {
  test(`rebuild plan: ${title}`, (t) => {
    const plan = planRebuild(f, o);
    t.is(plan.kind, want.kind, plan.why);
    if (plan.kind === 'refuse' && want.kind === 'refuse') {
      t.regex(plan.why, want.why);
      // What callers act on: a typed reason, never the prose (disk, method and layout refusals: not-possible).
      t.is(plan.reason, want.reason ?? 'not-possible', title);
    }
    if (plan.kind === 'rebuild' && want.kind === 'rebuild') {
      t.is(plan.method, want.method, plan.why);
      for (const k of ['stop', 'fallback'] as const) if (want[k] !== undefined) t.is(plan[k], want[k] as boolean, k);
    }
  });
}

test('rebuild plan: a start says why, and its steps rebuild nothing', (t) => {
  const f = crashedStandby();
  const plan = planRebuild(f, opts());
  t.regex(plan.why, /stopped without a clean shutdown, on the primary's timeline 3 at 0\/8000028 \(the primary is at 0\/9000000\)/);
  const steps = describePlan(f, plan, 1).join('\n');
  t.notRegex(steps, /pg_rewind |base backup|rename/);
  t.regex(steps, /1\. nothing to rebuild[\s\S]*2\. write the standby settings[\s\S]*3\. start node 2/);
});

test('pg_controldata → the position a stopped standby replayed to, on that position\'s own timeline', (t) => {
  const standby = `${CONTROLDATA}Minimum recovery ending location:     0/5000100\nMin recovery ending loc's timeline:   3\n`;
  t.deepEqual(parseRecoveryPosition(standby), { lsn: parseLsn('0/5000100'), timeline: 3 }, 'replayed into timeline 3 after its last restartpoint on 2');
  const primaryLike = `${CONTROLDATA}Minimum recovery ending location:     0/0\nMin recovery ending loc's timeline:   0\n`;
  t.deepEqual(parseRecoveryPosition(primaryLike), { lsn: parseLsn('0/4000060'), timeline: 2 });
  t.is(parseRecoveryPosition('Database cluster state: shut down'), undefined);
  const disk = parseTargetDisk(['datadir=1', 'pg_version=15', ...standby.trim().split('\n').map((l) => `control: ${l}`)].join('\n'));
  t.deepEqual(disk.position, { lsn: parseLsn('0/5000100'), timeline: 3 });
});

test('facts script output: include lines → the node\'s own configuration files, listed in the plan', (t) => {
  const out = [
    'datadir=1', 'pg_version=15', 'writable=1', 'parent=1', 'parent_writable=1',
    `include: ${DATA}/postgresql.conf\tinclude_if_exists = 'node.conf'   # this node's port`,
    `include: ${DATA}/postgresql.conf\tinclude_dir 'conf.d'`,
    `include: /etc/elsewhere.conf\tinclude 'x.conf'`,
    ...CONTROLDATA.trim().split('\n').map((l) => `control: ${l}`),
  ].join('\n');
  const d = parseTargetDisk(out);
  t.is(d.confIncludes?.length, 3);
  const f: RebuildFacts = { ...facts(), disk: d };
  const steps = describePlan(f, planRebuild(f, opts()), 1).join('\n');
  t.regex(steps, /restore the node's own configuration files \(pg_rewind copies the primary's\), and the files its configuration includes: node\.conf, conf\.d\/\*\.conf/);
});
