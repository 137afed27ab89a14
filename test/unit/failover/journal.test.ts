import test from 'ava';
import { quorumDoubt } from '../../../lib/failover/failover.ts';
import { synchronousSet } from '../../../lib/failover/plan.ts';
import { RESUME_WINDOW_MS, resumeFrom } from '../../../lib/failover/journal.ts';
import { testConfig } from '../../support/config.ts';

const T0 = Date.parse('2026-11-25T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();
const e = (run: string, s: number, step: string, fields: Record<string, unknown> = {}) => ({
  at: at(s),
  run_id: run,
  failed: 0,
  old_primary: 0,
  step,
  ...fields,
});

test('journal: nothing written → nothing to resume', (t) => {
  t.is(resumeFrom([], 0, 0, T0), undefined);
});

test('journal: a run that reached done → a later run starts afresh', (t) => {
  const entries = [e('a', 0, 'started'), e('a', 1, 'fenced', { outcome: 'not-running' }), e('a', 2, 'promoted', { node: 1 }), e('a', 3, 'done', { node: 1 })];
  t.is(resumeFrom(entries, 0, 0, T0 + 5000), undefined);
});

test('journal: a run killed after fencing and choosing → resumed with what it finished', (t) => {
  const entries = [e('a', 0, 'started'), e('a', 1, 'fenced', { node: 0, outcome: 'stopped-immediate' }), e('a', 2, 'chosen', { node: 2 })];
  t.deepEqual(resumeFrom(entries, 0, 0, T0 + 10_000), { runId: 'a', since: at(0), fenced: 'stopped-immediate', chosen: 2, promoted: undefined, checkpointed: false });
});

test('journal: promoted but not checkpointed → the resume says so', (t) => {
  const entries = [e('a', 0, 'started'), e('a', 1, 'fenced', { outcome: 'not-running' }), e('a', 2, 'chosen', { node: 1 }), e('a', 3, 'promoted', { node: 1 })];
  const r = resumeFrom(entries, 0, 0, T0 + 10_000);
  t.is(r?.promoted, 1);
  t.false(r?.checkpointed);
});

test('journal: only the last run counts, and only for the same event (failed node and old primary)', (t) => {
  const entries = [
    e('a', 0, 'started'),
    e('a', 1, 'fenced', { outcome: 'unreachable' }),
    e('b', 10, 'started'),
    e('b', 11, 'fenced', { outcome: 'not-running' }),
    { ...e('c', 12, 'started'), old_primary: 2 },
  ];
  t.is(resumeFrom(entries, 0, 0, T0 + 20_000)?.runId, 'b');
  t.is(resumeFrom(entries, 0, 0, T0 + 20_000)?.fenced, 'not-running');
  t.is(resumeFrom(entries, 0, 2, T0 + 20_000)?.runId, 'c');
  t.is(resumeFrom(entries, 1, 1, T0 + 20_000), undefined);
});

test('journal: an unfinished run older than the window → not resumed (a new failover of that node)', (t) => {
  const entries = [e('a', 0, 'started'), e('a', 1, 'fenced', { outcome: 'not-running' })];
  t.truthy(resumeFrom(entries, 0, 0, T0 + RESUME_WINDOW_MS - 1));
  t.is(resumeFrom(entries, 0, 0, T0 + RESUME_WINDOW_MS + 1), undefined);
});

const sync = (mode: 'any' | 'first', count: number, nodes: number) =>
  testConfig({ replication: { user: 'r', use_slots: true, drop_slot_on_standby_loss: false, synchronous: { mode, count } } }, nodes);

test('quorum: ANY 1 over two standbys, both answered → zero loss provable, no doubt', (t) => {
  const c = sync('any', 1, 3);
  t.is(quorumDoubt(c, 2, synchronousSet(c, 0)), undefined);
});

test('quorum: ANY 1 over two standbys, one answered → doubt says how many were needed', (t) => {
  const c = sync('any', 1, 3);
  t.regex(quorumDoubt(c, 1, synchronousSet(c, 0)) ?? '', /only 1 of 2 synchronous standbys answered \(ANY 1 needs 2/);
});

test('quorum: two nodes (one standby), ANY 1 → the standby alone is enough', (t) => {
  const c = sync('any', 1, 2);
  t.deepEqual(synchronousSet(c, 0), ['pg1']);
  t.is(quorumDoubt(c, 1, synchronousSet(c, 0)), undefined);
});

test('quorum: ANY 2 over three standbys needs two; synchronous off → never a doubt', (t) => {
  const c = sync('any', 2, 4);
  t.is(quorumDoubt(c, 2, synchronousSet(c, 0)), undefined);
  t.truthy(quorumDoubt(c, 1, synchronousSet(c, 0)));
  t.is(quorumDoubt(testConfig(), 0, undefined), undefined);
});
