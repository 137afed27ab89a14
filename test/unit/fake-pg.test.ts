// The fake PostgreSQL server of the fake pgpool environment, checked with the very client code the hooks use
// (lib/adapters/pg.ts over node-postgres, lib/observe.ts): if the fake spoke the protocol wrongly, or its model
// answered OBSERVE_SQL with the wrong shape, every hook test built on it would be testing nothing.
import test from 'ava';
import pg from 'pg';
import { createPg } from '../../lib/adapters/pg.ts';
import type { NodeConfig } from '../../lib/config/types.ts';
import { OperationError } from '../../lib/errors.ts';
import { formatLsn } from '../../lib/model/lsn.ts';
import { observeNode } from '../../lib/observe.ts';
import { FAKE_SERVER_VERSION, FakeCluster, primary, slotFor, standby, syncState } from '../support/fake-pg.ts';
import { testNode } from '../support/config.ts';

// Roomy: a loaded test machine must not turn a slow answer into a failed test (the timeout tests set their own).
const access = { database: 'postgres', user: 'postgres', connect_timeout_ms: 5000, statement_timeout_ms: 5000 };
const adapter = createPg(access);

async function cluster(t: import('ava').ExecutionContext, ...specs: Parameters<typeof FakeCluster.start>[0]): Promise<FakeCluster> {
  const c = await FakeCluster.start(specs);
  t.teardown(() => c.stop());
  return c;
}

const cfgNode = (c: FakeCluster, id: number): NodeConfig => testNode(id, { hostname: c.node(id).host, port: c.node(id).port, name: `node${id}` });

test('fake-pg: OBSERVE_SQL through the hooks\' adapter → the primary and its streaming standby as modelled', async (t) => {
  const c = await cluster(t, primary({ lsn: '0/3000148', timeline: 3 }), standby({ receive: '0/3000100', replay: '0/30000F0', timeline: 3 }));
  const p = await observeNode({ pg: adapter }, cfgNode(c, 0));
  const s = await observeNode({ pg: adapter }, cfgNode(c, 1));
  if (!p.reachable || !s.reachable) return t.fail('both nodes answer');
  t.false(p.inRecovery);
  t.is(p.timeline, 3);
  t.is(formatLsn(p.currentLsn!), '0/3000148');
  t.deepEqual(p.replication.map((r) => [r.applicationName, r.state, r.syncState]), [['node1', 'streaming', 'async']]);
  t.true(s.inRecovery);
  t.is(formatLsn(s.receiveLsn!), '0/3000100');
  t.is(formatLsn(s.replayLsn!), '0/30000F0');
  t.deepEqual(s.walReceiver, { status: 'streaming', senderHost: c.node(0).host, senderPort: c.node(0).port, receivedTli: 3, slotName: slotFor(1) });
});

test('fake-pg: a parameterised query (extended protocol) → params recorded, pg_promote changes the node', async (t) => {
  const c = await cluster(t, primary({ reach: 'down' }), standby({ receive: '0/5000000' }));
  const rows = await adapter.query(c.node(1), 'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted', [7]);
  t.deepEqual(rows, [{ promoted: true }]);
  const st = c.node(1).statements.at(-1)!;
  t.is(st.protocol, 'extended');
  t.deepEqual(st.params, ['7']);
  t.is(st.session.application_name, 'maas-ha');
  t.is(st.session.statement_timeout, '5000');
  t.deepEqual(c.promoted(), [1]);
  const o = await observeNode({ pg: adapter }, cfgNode(c, 1));
  t.true(o.reachable && !o.inRecovery && o.timeline === 2 && formatLsn(o.currentLsn!) === '0/5000000');
});

test('fake-pg: pg_promote on a primary → PostgreSQL\'s error, and the session still works after Sync', async (t) => {
  const c = await cluster(t, primary());
  const client = new pg.Client({ host: c.node(0).host, port: c.node(0).port, user: 'postgres', database: 'postgres' });
  await client.connect();
  t.teardown(() => client.end());
  const err = await t.throwsAsync(client.query('SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted', [5]));
  t.is(err?.message, 'recovery is not in progress');
  t.is((err as { code?: string }).code, '55000');
  t.deepEqual((await client.query('SELECT pg_is_in_recovery()')).rows, [{ pg_is_in_recovery: false }]);
  t.is(client.connection.stream.readable, true);
});

test('fake-pg: a statement the model does not know → an ERROR naming it, recorded', async (t) => {
  const c = await cluster(t, primary());
  const err = await t.throwsAsync(adapter.query(c.node(0), 'DROP DATABASE maas'), { instanceOf: OperationError });
  t.regex(err?.message ?? '', /no scripted answer for: DROP DATABASE maas/);
  t.deepEqual(c.statements.map((s) => s.sql), ['DROP DATABASE maas']);
});

test('fake-pg: startup → ParameterStatus (server_version 15.x, UTF8, standard_conforming_strings) and BackendKeyData', async (t) => {
  const c = await cluster(t, primary());
  const client = new pg.Client({ host: c.node(0).host, port: c.node(0).port, user: 'postgres', database: 'postgres' });
  const status: Record<string, string> = {};
  const con = (client as unknown as { connection: import('node:events').EventEmitter }).connection;
  con.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => (status[m.parameterName] = m.parameterValue));
  await client.connect();
  t.teardown(() => client.end());
  t.regex(status.server_version ?? '', /^15\.\d+ /);
  t.is(status.server_version, FAKE_SERVER_VERSION);
  t.like(status, { client_encoding: 'UTF8', server_encoding: 'UTF8', standard_conforming_strings: 'on' });
  t.is((client as unknown as { processID: number }).processID, 1000);
});

test('fake-pg: a down node refuses connections (ECONNREFUSED), fast', async (t) => {
  const c = await cluster(t, primary({ reach: 'down' }));
  const err = await t.throwsAsync(adapter.query(c.node(0), 'SELECT 1'), { instanceOf: OperationError });
  t.regex(err?.message ?? '', /ECONNREFUSED/);
});

test('fake-pg: a black-holed node → the adapter gives up at its deadline, not later', async (t) => {
  const c = await cluster(t, primary({ reach: 'blackhole' }));
  const started = Date.now();
  const err = await t.throwsAsync(adapter.query(c.node(0), 'SELECT 1', [], { timeoutMs: 300 }), { instanceOf: OperationError });
  t.regex(err?.message ?? '', /timeout|no answer within 300 ms/i);
  t.true(Date.now() - started < 2000, 'bounded by the 300 ms deadline (plus scheduling), not by a TCP timeout');
  t.is(c.statements.length, 0, 'a black hole hears nothing it could record as a statement');
});

test('fake-pg: rules → hang makes the query time out; close drops the connection; delayMs delays', async (t) => {
  const c = await cluster(t, primary());
  c.node(0).on('CHECKPOINT', { hang: true }, 1).on('pg_reload_conf', { close: true }, 1).on(/^SELECT 1$/, { rows: [{ x: 'late' }], delayMs: 50 }, 1);
  await t.throwsAsync(adapter.query(c.node(0), 'CHECKPOINT', [], { timeoutMs: 300 }), { message: /no answer within 300 ms|timeout/i });
  await t.throwsAsync(adapter.query(c.node(0), 'SELECT pg_reload_conf()'), { message: /terminated|closed|ECONNRESET|Connection/i });
  t.deepEqual(await adapter.query(c.node(0), 'SELECT 1'), [{ x: 'late' }]);
  t.deepEqual(await adapter.query(c.node(0), 'CHECKPOINT'), [], 'a rule with times: 1 is used once; then the model answers');
});

test('fake-pg: ALTER SYSTEM + pg_reload_conf repoints a standby → it streams from the new primary, which lists it', async (t) => {
  const c = await cluster(t, primary({ reach: 'down' }), primary({ timeline: 2 }), standby({ upstream: 0 }));
  t.is(c.node(2).walReceiver(), null, 'its upstream is down: no wal receiver');
  await adapter.query(c.node(2), `ALTER SYSTEM SET primary_conninfo = 'host=${c.node(1).host} port=${c.node(1).port} user=replicator application_name=node2'`);
  t.is(c.node(2).walReceiver(), null, 'ALTER SYSTEM alone changes nothing until a reload');
  await adapter.query(c.node(2), 'SELECT pg_reload_conf()');
  t.like(c.node(2).walReceiver(), { status: 'streaming', sender_port: c.node(1).port, received_tli: 2 });
  t.deepEqual(c.node(1).replication().map((r) => r.application_name), ['node2']);
});

test('fake-pg: a standby that cannot follow shows a waiting wal receiver, never streaming', async (t) => {
  const c = await cluster(t, primary({ timeline: 2 }), standby({ canFollow: false }));
  t.like(c.node(1).walReceiver(), { status: 'waiting' });
  t.deepEqual(c.node(0).replication(), []);
});

const SYNC: [string, string[], string, string][] = [
  ['', ['a'], 'a', 'async'],
  ['ANY 1 ("a", "b")', ['a', 'b'], 'b', 'quorum'],
  ['ANY 1 (a)', ['a', 'b'], 'b', 'async'],
  ['FIRST 1 (b, a)', ['a', 'b'], 'b', 'sync'],
  ['FIRST 1 (b, a)', ['a', 'b'], 'a', 'potential'],
  ['2 (a, b, c)', ['c', 'b'], 'c', 'sync'],
  ['a, b', ['b'], 'b', 'sync'],
  ['*', ['x', 'y'], 'y', 'potential'],
];
for (const [ssn, streaming, name, expected] of SYNC) {
  test(`fake-pg syncState: ${JSON.stringify(ssn)} with ${streaming.join(',')} streaming → ${name} is ${expected}`, (t) => {
    t.is(syncState(ssn, streaming, name), expected);
  });
}
