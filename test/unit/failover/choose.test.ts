import test from 'ava';
import { chooseCandidate } from '../../../lib/failover/choose.ts';
import { parseLsn } from '../../../lib/model/lsn.ts';
import type { NodeObservation } from '../../../lib/observe.ts';
import { testConfig, testNode } from '../../support/config.ts';

const standby = (id: number, received: string, replayed = received, timeline = 1): NodeObservation => ({
  id, reachable: true, inRecovery: true, timeline, receiveLsn: parseLsn(received), replayLsn: parseLsn(replayed),
  replication: [], synchronousStandbyNames: '',
});
const down = (id: number): NodeObservation => ({ id, reachable: false, error: 'connection refused' });
/** A standby whose WAL receiver is gone and that IDENTIFY_SYSTEM could not ask: its timeline is a stale checkpoint's. */
const unsure = (id: number, received: string, timeline: number): NodeObservation => ({
  ...standby(id, received, received, timeline), timelineSource: 'checkpoint',
} as NodeObservation);

// [title, failed, newMain (%m), observations, expected kind, expected node, reason pattern]
const table: [string, number, number | undefined, NodeObservation[], 'promote' | 'none', number | undefined, RegExp][] = [
  ['most advanced standby wins over pgpool\'s %m', 0, 1, [standby(1, '0/3000000'), standby(2, '0/3000148')], 'promote', 2, /most advanced/],
  ['received WAL counts, not only replayed', 0, 1, [standby(1, '0/3000100', '0/3000100'), standby(2, '0/3000200', '0/3000000')], 'promote', 2, /most advanced/],
  ['equal LSNs: %m breaks the tie', 0, 2, [standby(1, '0/3000000'), standby(2, '0/3000000')], 'promote', 2, /main node wins the tie/],
  ['equal LSNs, no %m: lowest id', 0, undefined, [standby(1, '0/3000000'), standby(2, '0/3000000')], 'promote', 1, /lower id/],
  ['newer timeline wins even with a lower LSN', 0, 1, [standby(1, '0/5000000'), standby(2, '0/4000000', '0/4000000', 2)], 'promote', 2, /newest timeline/],
  ['unreachable standbys are skipped', 0, 1, [down(1), standby(2, '0/3000000')], 'promote', 2, /only fit standby/],
  ['all standbys unreachable: promote nobody, say why', 0, 1, [down(1), down(2)], 'none', undefined, /node 1 unreachable.*node 2 unreachable/],
  // A stale checkpoint timeline (timeline 5 while streaming 25) must not outrank WAL that only the other has.
  ['a timeline read from a stale checkpoint never ranks: the most WAL wins', 0, 1, [unsure(1, '0/A4F00E0', 25), unsure(2, '0/A4F0190', 5)], 'promote', 2, /most advanced.*ranked by WAL position only|ranked by WAL position only/],
  ['one unsure timeline is enough to rank by WAL position only', 0, 1, [standby(1, '0/5000000', '0/5000000', 3), unsure(2, '0/6000000', 2)], 'promote', 2, /unknown.*ranked by WAL position only/],
];

for (const [title, failed, newMain, observations, kind, node, reason] of table) {
  test(`choose: ${title}`, (t) => {
    const c = chooseCandidate({ config: testConfig(), failedNode: failed, newMain, observations });
    t.is(c.kind, kind);
    if (c.kind === 'promote') t.is(c.node.id as number | undefined, node);
    t.regex(c.reasons.join('; '), reason);
  });
}

test('choose: candidate: false is never promoted, even when most advanced', (t) => {
  const config = testConfig({ nodes: [testNode(0), testNode(1), testNode(2, { candidate: false })] });
  const c = chooseCandidate({ config, failedNode: 0, newMain: 1, observations: [standby(1, '0/3000000'), standby(2, '0/4000000')] });
  t.is(c.kind, 'promote');
  if (c.kind === 'promote') t.is(c.node.id, 1);
  t.regex(c.reasons.join('; '), /node 2 has candidate: false/);
});

test('choose: priority breaks a tie when %m is not among the tied', (t) => {
  const config = testConfig({ nodes: [testNode(0), testNode(1, { priority: 10 }), testNode(2, { priority: 50 }), testNode(3)] }, 4);
  const c = chooseCandidate({ config, failedNode: 0, newMain: 3, observations: [standby(1, '0/3000000'), standby(2, '0/3000000'), standby(3, '0/2000000')] });
  t.is(c.kind === 'promote' ? c.node.id : -1, 2);
});

test('choose: with synchronous names, only a synchronous standby may be promoted', (t) => {
  const c = chooseCandidate({
    config: testConfig(), failedNode: 0, newMain: 1,
    observations: [standby(1, '0/3000000'), standby(2, '0/4000000')], synchronousNames: ['pg1'],
  });
  t.is(c.kind === 'promote' ? c.node.id : -1, 1);
  t.regex(c.reasons.join('; '), /node 2 is not a synchronous standby/);
});

test('choose: the failed node itself is never a candidate', (t) => {
  const c = chooseCandidate({ config: testConfig(), failedNode: 1, newMain: 1, observations: [standby(1, '0/9000000'), standby(2, '0/3000000')] });
  t.is(c.kind === 'promote' ? c.node.id : -1, 2);
});
