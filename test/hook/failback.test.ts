// maas-ha-failback as pgpool runs it (failback_command of pgpool/hooks.conf) when a node is attached again. Its one
// job: give synchronous replication back once enough standbys stream, after failover relaxed it so writes would
// not freeze. The argument shape is the one docs/pgpool-hooks.md, "Placeholders", gives for a failback after
// recovering node 0 while node 1 is the primary:
// %d=0 %m=0 %M=1 %P=1 — %m is the recovered standby, because it has the lowest id.
import test from 'ava';
import { primary, standby } from '../support/fake-pg.ts';
import { closingLine, pgpoolEnv } from '../support/pgpool-env.ts';

const NODE_0_BACK = { node: 0, newMain: 0, oldMain: 1, oldPrimary: 1 };
const SYNC_ANY_1 = { replication: { synchronous: { mode: 'any', count: 1 } } };

test('failback: a standby streams again → synchronous replication restored on the primary (ANY 1 over the standbys)', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [standby({ upstream: 1, timeline: 2 }), primary({ timeline: 2, synchronousStandbyNames: '' }), standby({ upstream: 1, timeline: 2 })],
    config: SYNC_ANY_1,
  });
  const run = await env.run('failback_command', NODE_0_BACK);
  t.is(run.exitCode, 0, run.stderr);
  t.is(env.node(1).settings.get('synchronous_standby_names'), 'ANY 1 ("node0", "node2")');
  t.deepEqual(
    run.statements.filter((s) => s.node === 1 && /ALTER SYSTEM|pg_reload_conf/.test(s.sql)).map((s) => s.sql),
    [`ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("node0", "node2")'`, 'SELECT pg_reload_conf()'],
  );
  t.deepEqual(env.node(1).replication().map((r) => r.sync_state), ['quorum', 'quorum']);
  t.false(run.statements.some((s) => s.node !== 1 && /ALTER SYSTEM/.test(s.sql)), 'standbys are not reconfigured');
  t.regex(closingLine(run)?.msg ?? '', /node 0 attached; synchronous replication restored on node 1: ANY 1 \("node0", "node2"\) \(node0, node2 streaming\)$/);
});

test('failback: synchronous mode off → nothing done (no statement, no command), exit 0', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [standby({ upstream: 1 }), primary(), standby({ upstream: 1 })] });
  const run = await env.run('failback_command', NODE_0_BACK);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(run.statements, []);
  t.deepEqual(run.calls, []);
  t.regex(closingLine(run)?.msg ?? '', /node 0 attached; synchronous replication is off$/);
});

test('failback: the attached node does not stream yet and no other standby does → synchronous setting left relaxed', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [standby({ upstream: 1, canFollow: false }), primary({ timeline: 2 }), standby({ upstream: 1, reach: 'down' })],
    config: SYNC_ANY_1,
  });
  const run = await env.run('failback_command', NODE_0_BACK);
  t.is(run.exitCode, 0, run.stderr);
  t.is(env.node(1).settings.get('synchronous_standby_names'), '');
  t.false(run.statements.some((s) => /ALTER SYSTEM/.test(s.sql)), 'a synchronous setting with nobody to confirm would freeze every write');
});

test('failback: the setting is already as wanted → not written again', async (t) => {
  const ssn = 'ANY 1 ("node0", "node2")';
  const env = await pgpoolEnv(t, {
    nodes: [standby({ upstream: 1 }), primary({ synchronousStandbyNames: ssn }), standby({ upstream: 1 })],
    config: SYNC_ANY_1,
  });
  const run = await env.run('failback_command', NODE_0_BACK);
  t.is(run.exitCode, 0, run.stderr);
  t.false(run.statements.some((s) => /ALTER SYSTEM|pg_reload_conf/.test(s.sql)));
  t.is(env.node(1).settings.get('synchronous_standby_names'), ssn);
});

test('failback: two nodes answer as primary → synchronous setting left alone, exit 1 (split brain is not for this hook to settle)', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [primary({ synchronousStandbyNames: '' }), primary({ timeline: 2, synchronousStandbyNames: '' }), standby({ upstream: 1 })],
    config: SYNC_ANY_1,
  });
  const run = await env.run('failback_command', NODE_0_BACK);
  t.is(run.exitCode, 1);
  t.false(run.statements.some((s) => /ALTER SYSTEM/.test(s.sql)));
  t.regex(closingLine(run)?.msg ?? '', /2 primaries answer: synchronous setting left as it is/);
});
