import test from 'ava';
import { planCheck, planStartCheck, type GuardFacts, type GuardPlan, type LocalState } from '../../../lib/guard/plan.ts';
import { parseCheckpointTimeline } from '../../../lib/guard/guard.ts';
import type { NodeObservation } from '../../../lib/observe.ts';

const primary = (id: number, timeline: number): NodeObservation => ({ id, reachable: true, inRecovery: false, timeline, replication: [], synchronousStandbyNames: '' });
const standby = (id: number, timeline: number): NodeObservation => ({ id, reachable: true, inRecovery: true, timeline, replication: [], synchronousStandbyNames: '' });
const silent = (id: number): NodeObservation => ({ id, reachable: false, error: 'no answer within 2000 ms' });
const refused = (id: number): NodeObservation => ({ id, reachable: false, error: 'connect ECONNREFUSED', refused: true });

const facts = (local: LocalState, peers: NodeObservation[], standbySignal = false): GuardFacts => ({ node: 0, local, standbySignal, peers });
const P = (timeline: number): LocalState => ({ kind: 'primary', timeline });

type Row = [title: string, f: GuardFacts, action: GuardPlan['action'], level: 'info' | 'warn', reason: RegExp];

const checks: Row[] = [
  ['primary, a peer is a primary on a newer timeline → demote', facts(P(1), [primary(1, 2), standby(2, 1)]), 'demote', 'warn', /node 0 is a primary on timeline 1 but node 1 is a primary on timeline 2: the cluster moved on/],
  ['primary, a peer is a standby on a newer timeline (its primary is out of sight) → demote', facts(P(1), [standby(1, 2), silent(2)]), 'demote', 'warn', /node 1 is a standby on timeline 2/],
  ['primary, newer primary and newer standby → demote, naming the newest primary', facts(P(2), [standby(1, 3), primary(2, 3)]), 'demote', 'warn', /node 2 is a primary on timeline 3/],
  ['primary, newer peer answers while another is silent → demote (what answered is proof enough)', facts(P(1), [silent(1), primary(2, 2)]), 'demote', 'warn', /node 2 is a primary on timeline 2/],
  ['primary, every peer unreachable → no demotion, warn', facts(P(1), [silent(1), silent(2)]), 'none', 'warn', /no peer answered .*never demoting on missing information/],
  ['primary, peers refuse connections → no demotion, warn', facts(P(1), [refused(1), refused(2)]), 'none', 'warn', /no peer answered .*ECONNREFUSED/],
  ['two primaries on the same timeline → warn only', facts(P(2), [primary(1, 2), standby(2, 2)]), 'none', 'warn', /node 0 and node 1 are all primaries on timeline 2: cannot tell which/],
  ['primary, a peer is a primary on an older timeline → keep going, warn (its guard demotes it)', facts(P(2), [primary(1, 1), standby(2, 2)]), 'none', 'warn', /node 0 is the primary on timeline 2; .*node 1 is a primary on timeline 1 \(older/],
  ['primary, standbys on its timeline → healthy, info', facts(P(2), [standby(1, 2), standby(2, 2)]), 'none', 'info', /node 0 is the primary on timeline 2; node 1 is a standby on timeline 2; node 2 is a standby on timeline 2/],
  ['primary, one standby on its timeline, one silent → info, names the silent one', facts(P(2), [standby(1, 2), silent(2)]), 'none', 'info', /node 2: no answer.*\(no answer\)/],
  ['standby, even with a newer primary around → nothing', facts({ kind: 'standby', timeline: 1 }, [primary(1, 2)]), 'none', 'info', /node 0 is a standby on timeline 1/],
  ['not running → nothing (start-check guards its start)', facts({ kind: 'stopped' }, [primary(1, 2)], true), 'none', 'info', /not running \(standby.signal present/],
  ['running but silent locally → nothing, warn', facts({ kind: 'unknown', why: 'running but does not answer over libpq' }, [primary(1, 2)]), 'none', 'warn', /cannot tell its state/],
];

for (const [title, f, action, level, reason] of checks) {
  test(`guard check: ${title}`, (t) => {
    const p = planCheck(f);
    t.is(p.action, action, p.reason);
    t.is(p.level, level, p.reason);
    t.regex(p.reason, reason);
  });
}

const S = (checkpointTimeline?: number): LocalState => ({ kind: 'stopped', ...(checkpointTimeline === undefined ? {} : { checkpointTimeline }) });

const starts: Row[] = [
  ['standby.signal present → start as a standby, nothing to do', facts(S(1), [primary(1, 2)], true), 'none', 'info', /has standby.signal: it starts as a standby/],
  ['no standby.signal, a peer is the primary on a newer timeline → standby.signal', facts(S(1), [primary(1, 2), standby(2, 2)]), 'standby-signal', 'warn', /node 1 is a primary on timeline 2: writing standby.signal/],
  ['no standby.signal, a peer is a primary on the same timeline → standby.signal', facts(S(2), [primary(1, 2)]), 'standby-signal', 'warn', /last checkpoint on timeline 2\) but node 1 is a primary on timeline 2/],
  ['no standby.signal, own timeline unreadable, a peer is a primary → standby.signal', facts(S(), [primary(1, 1)]), 'standby-signal', 'warn', /its own timeline unknown/],
  ['no standby.signal, no primary but a standby on a newer timeline → standby.signal (the cluster moved on)', facts(S(1), [standby(1, 2), silent(2)]), 'standby-signal', 'warn', /node 1 is a standby on timeline 2: the cluster moved on/],
  ['no standby.signal, only an older primary → start as primary, warn', facts(S(3), [primary(1, 2), standby(2, 3)]), 'none', 'warn', /starts as a primary .*node 1 is a primary on timeline 2, older/],
  ['no standby.signal, no peer answers → start (whole-cluster cold start), warn', facts(S(2), [silent(1), refused(2)]), 'none', 'warn', /no peer answered .*cold start/],
  ['no standby.signal, peers are standbys on its timeline, no primary → start, info', facts(S(2), [standby(1, 2), standby(2, 1)]), 'none', 'info', /no peer is a primary/],
  ['already running → nothing (the periodic check guards it)', facts({ kind: 'primary', timeline: 1 }, [primary(1, 2)]), 'none', 'info', /already running/],
];

for (const [title, f, action, level, reason] of starts) {
  test(`guard start-check: ${title}`, (t) => {
    const p = planStartCheck(f);
    t.is(p.action, action, p.reason);
    t.is(p.level, level, p.reason);
    t.regex(p.reason, reason);
  });
}

test('guard: the peer a demotion or standby.signal names is the one that proved the cluster moved on', (t) => {
  const d = planCheck(facts(P(1), [standby(1, 1), primary(2, 2)]));
  t.like(d, { action: 'demote', peer: 2 });
  const s = planStartCheck(facts(S(1), [standby(1, 1), primary(2, 3)]));
  t.like(s, { action: 'standby-signal', peer: 2 });
});

test("guard: pg_controldata's checkpoint timeline is parsed; anything else is unknown", (t) => {
  const out = "pg_control version number:            1300\nLatest checkpoint's REDO WAL file:    000000020000000000000005\nLatest checkpoint's TimeLineID:       2\nLatest checkpoint's PrevTimeLineID:   1\n";
  t.is(parseCheckpointTimeline(out), 2);
  t.is(parseCheckpointTimeline("Latest checkpoint's PrevTimeLineID:   1\n"), undefined);
  t.is(parseCheckpointTimeline(''), undefined);
});
