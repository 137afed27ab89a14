// The domain rules of lib/observe.ts that every use case shares: "runs as a primary" and "streams from".
import test from 'ava';
import { planFollow } from '../../lib/failover/follow.ts';
import { isWritable, streamsFrom, type NodeObservation } from '../../lib/observe.ts';
import { planRebuild, type RebuildFacts } from '../../lib/recovery/plan.ts';
import { testNode } from '../support/config.ts';

// Two PostgreSQL servers on one host: nodes 1 and 2 share 10.0.0.12, on different ports.
const primary = testNode(1);
const twin = testNode(3, { hostname: primary.hostname, port: 5433 });
const node = testNode(2);
const standby = (from: { hostname: string; port: number }, tli: number, status = 'streaming'): NodeObservation => ({
  id: 2, reachable: true, inRecovery: true, timeline: tli, replication: [], synchronousStandbyNames: '',
  walReceiver: { status, senderHost: from.hostname, senderPort: from.port, receivedTli: tli, slotName: null },
});

test('streamsFrom: streaming, from that host and port, on that timeline; anything else is not', (t) => {
  t.true(streamsFrom(standby(primary, 2), primary, 2));
  t.false(streamsFrom(standby(twin, 2), primary, 2), 'same host, another port');
  t.false(streamsFrom(standby(primary, 1), primary, 2), 'old timeline');
  t.false(streamsFrom(standby(primary, 2, 'starting'), primary, 2), 'not streaming yet');
  t.false(streamsFrom({ id: 2, reachable: false, error: 'refused' }, primary, 2));
});

test('isWritable: answers and is not in recovery', (t) => {
  t.true(isWritable({ ...(standby(primary, 2) as Extract<NodeObservation, { reachable: true }>), inRecovery: false }));
  t.false(isWritable(standby(primary, 2)));
  t.false(isWritable({ id: 2, reachable: false, error: 'refused' }));
});

test('follow and recovery agree: a standby of another server on the primary\'s host does not follow the primary', (t) => {
  const o = standby(twin, 2);
  t.is(planFollow({ node, newPrimary: primary, primaryTimeline: 2, observation: o, sshReachable: true }).kind, 'repoint');
  const facts: RebuildFacts = {
    node, primary, observation: o,
    primaryFacts: { id: 1, systemIdentifier: '1', major: '15', timeline: 2, sizeBytes: 0, tablespaces: [] },
    disk: {
      datadirExists: true, empty: false, pgVersion: '15', running: true, standbySignal: true, newExists: false, newComplete: false,
      parentExists: true, parentWritable: true, datadirWritable: true, oldDirs: [],
      control: { systemIdentifier: '1', state: 'in archive recovery', timeline: 2, walLogHints: true, checksums: false },
    },
  };
  const plan = planRebuild(facts, { method: 'auto', force: false, initial: false, basebackup: true, now: new Date(0) });
  t.is(plan.kind, 'rebuild', plan.kind === 'refuse' ? plan.why : '');
  const healthy = planRebuild({ ...facts, observation: standby(primary, 2) }, { method: 'auto', force: false, initial: false, basebackup: true, now: new Date(0) });
  t.regex(healthy.kind === 'refuse' ? healthy.why : '', /is a healthy standby/);
});
