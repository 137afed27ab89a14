// The fault campaign's wait before it stops (lib/lab/campaign.ts, probePastGrace): a scenario that allows an
// isolated primary is judged by a probe of that node after the 5 s grace, so the campaign must not stop before
// the probe has asked it once past the grace. Against a campaign of plain arrays.

import test from 'ava';
import { ISOLATED_GRACE_MS, probePastGrace, type Campaign, type ProbeSample } from '../../../lib/lab/campaign.ts';

function campaign(samples: ProbeSample[]): Campaign {
  return {
    startedAt: Date.now(),
    acks: [],
    samples,
    acksAfter: () => [],
    lastSample: (node, after = 0) => samples.findLast((s) => s.node === node && s.sentAt > after),
    stop: () => Promise.reject(new Error('not in this test')),
  };
}

const sample = (node: number, sentAt: number): ProbeSample => ({ tick: 0, node, sentAt, t: sentAt, state: 'read-only' });

test('probePastGrace: no isolated primary allowed → returns at once', async (t) => {
  const t0 = Date.now();
  await probePastGrace(campaign([]), {});
  t.true(Date.now() - t0 < 50);
});

test('probePastGrace: waits until the isolated node is probed after the grace, not before', async (t) => {
  const samples: ProbeSample[] = [];
  const healedAt = Date.now() - ISOLATED_GRACE_MS + 300; // the grace ends 300 ms from now
  const c = campaign(samples);
  let done = false;
  const waiting = probePastGrace(c, { allowIsolatedPrimary: { node: 2, healedAt } }).then(() => (done = true));
  // Samples inside the grace, and of another node after it, do not end the wait.
  samples.push(sample(2, healedAt + 100), sample(1, healedAt + ISOLATED_GRACE_MS + 50));
  await new Promise((r) => setTimeout(r, 600));
  t.false(done, 'still waiting: node 2 has not been probed after the grace');
  samples.push(sample(2, Date.now()));
  await waiting;
  t.true(done);
});

test('probePastGrace: a node never probed again → gives up 10 s after the grace (the verdict then says so)', async (t) => {
  const healedAt = Date.now() - ISOLATED_GRACE_MS - 9_800; // 200 ms of the bound left
  const t0 = Date.now();
  await probePastGrace(campaign([]), { allowIsolatedPrimary: { node: 0, healedAt } });
  const took = Date.now() - t0;
  t.true(took >= 150 && took < 2000, `took ${took} ms`);
});
