// waitStreaming (lib/recovery/rebuild.ts) when a failover happens while a node is being rebuilt: the primary it
// was rebuilt from is gone, pgpool's follow_primary repoints the node at the new primary, and `maas-ha recover`
// must wait for that and name the new primary, not fail after its timeout while the node in fact streams.
// Against fake PostgreSQL nodes spoken to through the hooks' own pg adapter.
import test from 'ava';
import { createPg } from '../../../lib/adapters/pg.ts';
import { systemClock } from '../../../lib/adapters/clock.ts';
import type { NodeConfig } from '../../../lib/config/types.ts';
import type { Deps, Log } from '../../../lib/model/ports.ts';
import { waitStreaming } from '../../../lib/recovery/rebuild.ts';
import { FakeCluster, primary, standby } from '../../support/fake-pg.ts';
import { testConfig, testNode } from '../../support/config.ts';

const pg = createPg({ database: 'postgres', user: 'postgres', connect_timeout_ms: 5000, statement_timeout_ms: 5000 });

function world(c: FakeCluster) {
  const nodes: NodeConfig[] = c.nodes.map((n) => testNode(n.id, { hostname: n.host, port: n.port, name: `node${n.id}` }));
  const warnings: string[] = [];
  const log: Log = { debug: () => {}, info: () => {}, warn: (_f, m) => void warnings.push(m), error: () => {}, child: () => log };
  const deps = { pg, clock: systemClock, log, config: testConfig({ nodes }) } as unknown as Deps;
  return { deps, nodes, warnings };
}

test('recovery: a failover while a node is rebuilt → waits for it to stream from the new primary and names that one', async (t) => {
  // Node 0 (the primary node 2 was rebuilt from) is gone; node 1 was promoted; node 2 already follows node 1.
  const c = await FakeCluster.start([primary({ reach: 'down' }), primary({ timeline: 2 }), standby({ upstream: 1, timeline: 2 })]);
  t.teardown(() => c.stop());
  const { deps, nodes, warnings } = world(c);
  const r = await waitStreaming(deps, nodes[2]!, nodes[0]!, 10_000);
  t.is(r.primary.id, 1);
  t.is(r.timeline, 2);
  t.true(warnings.some((w) => /a failover made node 1 the primary while node 2 was being rebuilt/.test(w)), warnings.join('\n'));
});

test('recovery: the primary it was rebuilt from still leads → streams from it, nothing else looked at', async (t) => {
  const c = await FakeCluster.start([primary(), standby({ upstream: 0 })]);
  t.teardown(() => c.stop());
  const { deps, nodes, warnings } = world(c);
  const r = await waitStreaming(deps, nodes[1]!, nodes[0]!, 10_000);
  t.is(r.primary.id, 0);
  t.deepEqual(warnings, []);
});

test('recovery: a failover, and nobody repoints the node → the error names the new primary and what happened', async (t) => {
  // Node 2 still points at the dead node 0: its receiver has nobody to stream from.
  const c = await FakeCluster.start([primary({ reach: 'down' }), primary({ timeline: 2 }), standby({ upstream: 0 })]);
  t.teardown(() => c.stop());
  const { deps, nodes } = world(c);
  const err = await t.throwsAsync(waitStreaming(deps, nodes[2]!, nodes[0]!, 1500));
  t.regex(err?.message ?? '', /node 2 runs but does not stream from node 1 after 1500 ms .*a failover made node 1 the primary while node 2 was being rebuilt from node 0/);
});
