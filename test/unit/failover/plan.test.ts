import test from 'ava';
import { describeFailoverPlan, planFailover, type Decision, type FailoverFacts, type FenceOrder, type PortProbe } from '../../../lib/failover/plan.ts';
import type { Resume } from '../../../lib/failover/journal.ts';
import type { FencedMarker } from '../../../lib/model/ports.ts';
import { parseLsn } from '../../../lib/model/lsn.ts';
import { judgePrimaries, type NodeObservation, type TimelineSource } from '../../../lib/observe.ts';
import { testConfig } from '../../support/config.ts';

const standby = (id: number, lsn: string, timeline = 1, source: TimelineSource = 'identify'): NodeObservation => ({
  id, reachable: true, inRecovery: true, timeline, timelineSource: source, receiveLsn: parseLsn(lsn), replayLsn: parseLsn(lsn),
  replication: [], synchronousStandbyNames: '',
});
const writable = (id: number, timeline: number, lsn = '0/9000000'): NodeObservation => ({
  id, reachable: true, inRecovery: false, timeline, timelineSource: 'primary', currentLsn: parseLsn(lsn), replication: [], synchronousStandbyNames: '',
});
const down = (id: number): NodeObservation => ({ id, reachable: false, error: 'connection refused', refused: true });
const marker = (node: number): FencedMarker => ({ node, since: '2026-11-30T00:00:00Z', status: 'stopped', reason: 'not-running' });
const resume = (over: Partial<Resume> = {}): Resume => ({ runId: 'r-old', since: '2026-11-30T00:00:00Z', checkpointed: false, ...over });

const facts = (over: Partial<FailoverFacts> & { observations: NodeObservation[]; oldPort?: PortProbe }): FailoverFacts => ({
  config: testConfig(), failedNode: 0, oldPrimary: 0, newMain: 1, oldPort: 'refused', fenced: [], ...over,
});

// [title, facts, fence order, decision kind, node, why pattern]
const table: [string, FailoverFacts, FenceOrder, Decision['kind'], number | undefined, RegExp][] = [
  ['postmaster gone (port refused) → promote first, fence alongside', facts({ observations: [standby(1, '0/3000000'), standby(2, '0/3000100')] }), 'alongside', 'promote', 2, /most advanced/],
  ['old primary answers → fence first', facts({ oldPort: 'open', observations: [standby(1, '0/3000000'), standby(2, '0/3000000')] }), 'first', 'promote', 1, /main node wins the tie/],
  ['old primary silent (host down or partition) → fence first', facts({ oldPort: 'silent', observations: [standby(1, '0/3000000'), standby(2, '0/3000000')] }), 'first', 'promote', 1, /tie/],
  ['an unfinished run of this event stopped it and the port still refuses → fence skipped', facts({ resume: resume({ fenced: 'not-running' }), observations: [standby(1, '0/3000000')] }), 'skip', 'promote', 1, /only fit/],
  ['a journal says fenced, but the old primary answers again → fenced again, first', facts({ oldPort: 'open', resume: resume({ fenced: 'not-running' }), observations: [standby(1, '0/3000000')] }), 'first', 'promote', 1, /only fit/],
  ['a journal says fenced, but the host is silent now → fenced again', facts({ oldPort: 'silent', resume: resume({ fenced: 'stopped-fast' }), observations: [standby(1, '0/3000000')] }), 'first', 'promote', 1, /only fit/],
  ['a node promoted on a newer timeline (another run, another pgpool) → adopted', facts({ observations: [writable(1, 2), standby(2, '0/3000000', 1)] }), 'alongside', 'adopt', 1, /already the primary/],
  ['the re-run of a run that promoted → adopted, named', facts({ resume: resume({ promoted: 1, chosen: 1 }), observations: [writable(1, 2), standby(2, '0/3000000', 2)] }), 'alongside', 'adopt', 1, /promoted by run r-old/],
  // The incident: node 1 restarted writable from its old data directory on timeline 3; the standby followed the
  // real primary to timeline 5. Adopting node 1 lost every write since; now it is fenced, the standby promoted.
  ['a stale writable node on an old timeline is never adopted: fenced, the standby with the newest data promoted', facts({ observations: [writable(1, 3), standby(2, '0/A000000', 5)] }), 'alongside', 'promote', 2, /split brain.*node 1 accepts writes on timeline 3, but node 2 is on timeline 5/],
  ['a writable node maas-ha fenced is never adopted, even on the newest timeline', facts({ fenced: [marker(1)], observations: [writable(1, 5), standby(2, '0/A000000', 5)] }), 'alongside', 'promote', 2, /split brain.*maas-ha fenced it/],
  ['two writable nodes on one timeline → promote nobody, say split brain', facts({ observations: [writable(1, 4), writable(2, 4)] }), 'alongside', 'none', undefined, /split brain/],
  ['no standby left → promote nobody, each reason named', facts({ observations: [down(1), down(2)] }), 'alongside', 'none', undefined, /node 1 unreachable.*node 2 unreachable/],
  // Stale checkpoint timelines (5 while streaming 25) must not outrank WAL only the other standby has.
  ['unsure timelines never rank: the standby with the most WAL is promoted', facts({ observations: [standby(1, '0/A4F00E0', 25, 'checkpoint'), standby(2, '0/A4F0190', 5, 'checkpoint')] }), 'alongside', 'promote', 2, /most advanced/],
  // Maintenance (lib/maintenance.ts): a marked standby is never promoted, and never at the price of its WAL.
  ['a standby in maintenance is not promoted: the other one is', facts({ maintenance: [2], observations: [standby(1, '0/3000000'), standby(2, '0/3000000')] }), 'alongside', 'promote', 1, /only fit standby/],
  ['a standby in maintenance that holds more WAL than the others → promote nobody (its WAL would be lost)', facts({ maintenance: [2], observations: [standby(1, '0/3000000'), standby(2, '0/3000100')] }), 'alongside', 'none', undefined, /node 2 is in maintenance and holds more WAL \(lsn 0\/3000100\) than node 1/],
  ['the only standby is in maintenance → promote nobody', facts({ maintenance: [1], observations: [standby(1, '0/3000000'), down(2)] }), 'alongside', 'none', undefined, /node 1 is in maintenance and is the only fit standby/],
  ['known timelines rank before WAL position', facts({ observations: [standby(1, '0/5000000', 3), standby(2, '0/4000000', 4)] }), 'alongside', 'promote', 2, /newest timeline 4/],
];

for (const [title, f, order, kind, node, why] of table) {
  test(`plan failover: ${title}`, (t) => {
    const p = planFailover(f);
    t.is(p.fence.order, order);
    t.is(p.decision.kind, kind);
    if (p.decision.kind !== 'none') t.is(p.decision.node as number | undefined, node);
    t.regex(p.decision.why, why);
    // The plan reads as one list of steps, the decision among them.
    const text = describeFailoverPlan(p, f.failedNode).join('\n');
    t.regex(text, /^1\. fence old primary node 0/);
    t.true(text.includes(p.decision.why), text);
  });
}

test('plan failover: a stale writable node is listed to be fenced before the promotion', (t) => {
  const p = planFailover(facts({ observations: [writable(1, 3), standby(2, '0/A000000', 5)] }));
  t.deepEqual(p.staleFences.map((s) => s.node), [1]);
  t.regex(describeFailoverPlan(p, 0).join('\n'), /2\. fence node 1 before promoting: node 1 accepts writes on timeline 3/);
});

test('plan failover: after a clean stop, pgpool\'s %m (the switchover target) is promoted when level', (t) => {
  const p = planFailover(facts({ oldPort: 'open', newMain: 2, fenceOutcome: 'stopped-fast', observations: [standby(1, '0/3000100'), standby(2, '0/3000100')] }));
  t.is(p.decision.kind, 'promote');
  if (p.decision.kind === 'promote') t.is(p.decision.node, 2);
});

test('plan failover: after a clean stop, a %m behind another standby is awaited, never replaced by it', (t) => {
  const p = planFailover(facts({ oldPort: 'open', newMain: 2, fenceOutcome: 'stopped-fast', observations: [standby(1, '0/3000200'), standby(2, '0/3000100')] }));
  t.is(p.decision.kind, 'await-target');
  if (p.decision.kind === 'await-target') {
    t.is(p.decision.node, 2);
    t.is(p.decision.lsn, parseLsn('0/3000200'));
  }
});

test('plan failover: after a clean stop, a %m that cannot be promoted → nobody, never another node', (t) => {
  const p = planFailover(facts({ oldPort: 'open', newMain: 2, fenceOutcome: 'stopped-fast', observations: [standby(1, '0/3000200'), down(2)] }));
  t.is(p.decision.kind, 'none');
  t.regex(p.decision.why, /pgpool expects node 2/);
});

test('plan failover: a crash (not a clean stop) still promotes by data, %m only breaks ties', (t) => {
  const p = planFailover(facts({ oldPort: 'silent', newMain: 1, fenceOutcome: 'unreachable', observations: [standby(1, '0/3000100'), standby(2, '0/3000200')] }));
  t.is(p.decision.kind === 'promote' ? p.decision.node : -1, 2);
});

test('plan failover: the first pass with a fence to come first asks to look again after it', (t) => {
  t.true(planFailover(facts({ oldPort: 'open', observations: [standby(1, '0/3000000')] })).reobserveAfterFence);
  t.false(planFailover(facts({ oldPort: 'refused', observations: [standby(1, '0/3000000')] })).reobserveAfterFence);
});

test('plan failover: a resumed run that already checkpointed its promoted node skips the checkpoint', (t) => {
  const p = planFailover(facts({ resume: resume({ promoted: 1, checkpointed: true }), observations: [writable(1, 2), standby(2, '0/3000000', 2)] }));
  t.true(p.checkpoint.skip);
  t.regex(p.checkpoint.why, /already checkpointed/);
});

// The one rule for "who is the current primary", as status and recovery use it.
const judged: [string, NodeObservation[], number[], number | undefined, number[], RegExp][] = [
  ['one writable node, standbys on its timeline → current', [writable(0, 2), standby(1, '0/1', 2)], [], 0, [], /only writable node on the newest timeline 2/],
  ['a writable node behind a standby\'s timeline → stale, nobody current', [writable(0, 3), standby(1, '0/1', 5)], [], undefined, [0], /every writable node is stale/],
  ['the real primary and a stale one → the real one, the stale one named', [writable(0, 5), writable(1, 3), standby(2, '0/1', 5)], [], 0, [1], /newest timeline 5/],
  ['a fenced writable node → stale', [writable(0, 5), standby(1, '0/1', 5)], [0], undefined, [0], /every writable node is stale/],
  ['a stale checkpoint timeline can still prove a writable node stale (it only lags)', [writable(0, 3), standby(1, '0/1', 4, 'checkpoint')], [], undefined, [0], /stale/],
  ['nobody writable', [standby(0, '0/1', 2), down(1)], [], undefined, [], /no node accepts writes/],
];
for (const [title, obs, fenced, current, stale, why] of judged) {
  test(`current primary: ${title}`, (t) => {
    const j = judgePrimaries(obs, { fenced });
    t.is(j.current, current);
    t.deepEqual(j.stale.map((s) => s.node), stale);
    t.regex(j.why, why);
  });
}

test('current primary: a fencing marker stops applying once the node is on a newer timeline than it records (promoted since)', (t) => {
  const marker = { node: 0, timeline: 3 };
  t.deepEqual(judgePrimaries([writable(0, 3), standby(1, '0/1', 3)], { fenced: [marker] }).stale.map((s) => s.node), [0], 'restarted on the fenced timeline: stale');
  t.is(judgePrimaries([writable(0, 5), standby(1, '0/1', 5)], { fenced: [marker] }).current, 0, 'promoted later, on timeline 5: the primary');
});

// What follows the promotion: the running standbys are repointed by the hook, and the new primary's commits wait
// for them (hold) unless fewer of them run than synchronous replication requires (relax: writes would wait forever).
const syncConfig = (mode: 'any' | 'first' | 'off', count = 1, nodes = 3) =>
  testConfig({ replication: { user: 'r', use_slots: true, drop_slot_on_standby_loss: false, synchronous: { mode, count } } }, nodes);
const followerTable: [string, FailoverFacts, number[], 'hold' | 'relax' | 'off'][] = [
  ['the other standby runs → repointed, commits held synchronous', facts({ config: syncConfig('any'), observations: [standby(1, '0/3000000'), standby(2, '0/3000100')] }), [1], 'hold'],
  ['the other standby is down too → nobody to wait for: relaxed', facts({ config: syncConfig('any'), observations: [down(1), standby(2, '0/3000100')] }), [], 'relax'],
  ['two nodes: the only standby is promoted → relaxed', facts({ config: syncConfig('any', 1, 2), observations: [standby(1, '0/3000000')] }), [], 'relax'],
  ['ANY 2 with one standby left running → relaxed, it is still repointed', facts({ config: syncConfig('any', 2, 4), observations: [standby(1, '0/3000000'), standby(2, '0/3000100'), down(3)] }), [1], 'relax'],
  ['a stale writable node is fenced, never a follower', facts({ config: syncConfig('any'), observations: [writable(1, 3), standby(2, '0/A000000', 5)] }), [], 'relax'],
  ['synchronous replication off → repointed, nothing held', facts({ config: syncConfig('off'), observations: [standby(1, '0/3000000'), standby(2, '0/3000100')] }), [1], 'off'],
  ['adopting a primary an earlier run promoted → its standbys are settled the same way', facts({ config: syncConfig('any'), resume: resume({ promoted: 1, chosen: 1 }), observations: [writable(1, 2), standby(2, '0/3000000', 2)] }), [2], 'hold'],
];
for (const [title, f, repoint, synchronous] of followerTable) {
  test(`plan failover, followers: ${title}`, (t) => {
    const p = planFailover(f);
    t.truthy(p.followers, 'someone becomes primary');
    t.deepEqual(p.followers!.repoint, repoint);
    t.is(p.followers!.synchronous, synchronous);
    t.is(p.followers!.primary, p.decision.kind === 'none' ? -1 : p.decision.node);
    t.regex(describeFailoverPlan(p, 0).join('\n'), new RegExp(`\\d\\. standbys: ${synchronous === 'relax' ? '.*relax synchronous replication' : `repoint node`}`));
  });
}

test('plan failover, followers: nobody promoted → nothing to settle', (t) => {
  t.is(planFailover(facts({ config: syncConfig('any'), observations: [down(1), down(2)] })).followers, undefined);
});

test('plan failover: pgpool passed no new main node (-1: every backend down in pgpool) → the promoted node is attached through pcp after the failover', (t) => {
  const p = planFailover(facts({ newMain: undefined, observations: [standby(1, '0/3000000'), down(2)] }));
  t.is(p.decision.kind, 'promote');
  t.like(p.attachInPgpool, { node: 1 });
  t.regex(describeFailoverPlan(p, 0).join('\n'), /\d\. pgpool: pgpool has no backend up \(its new main node is -1\): ask it to attach node 1/);
  t.is(planFailover(facts({ observations: [standby(1, '0/3000000'), down(2)] })).attachInPgpool, undefined, 'with a main node pgpool finds the primary itself');
});

test('plan failover: a running standby in maintenance is not repointed, and does not count for synchronous replication', (t) => {
  const p = planFailover(facts({ config: syncConfig('any'), maintenance: [2], observations: [standby(1, '0/3000000'), standby(2, '0/3000000')] }));
  t.deepEqual(p.followers?.repoint, []);
  t.is(p.followers?.synchronous, 'relax', 'ANY 1 with no standby to follow: relaxed, not waited for');
});
