// Relaxing and restoring synchronous_standby_names: which walsenders count (configured standbys only), and what
// maas-ha then sends to the primary. A fake Pg answers the one read query; writes are recorded.
import test from 'ava';
import { OperationError } from '../../../lib/errors.ts';
import type { Config } from '../../../lib/config/types.ts';
import type { Deps, Log, Pg } from '../../../lib/model/ports.ts';
import { configuredStandbys, relaxSynchronous, restoreSynchronous } from '../../../lib/failover/sync.ts';
import { testConfig } from '../../support/config.ts';

const sync = (mode: 'any' | 'first', count: number, nodes = 3): Config =>
  testConfig({ replication: { user: 'r', use_slots: true, drop_slot_on_standby_loss: false, synchronous: { mode, count } } }, nodes);

const silent: Log = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

/** A primary whose setting is `current` and whose streaming walsenders are `streaming`; records every statement. */
function world(config: Config, current: string, streaming: string[]) {
  const sent: string[] = [];
  const pg: Pg = {
    async query<R extends Record<string, unknown>>(_target: unknown, sql: string) {
      sent.push(sql);
      if (/current_setting\('synchronous_standby_names'\) AS current/.test(sql)) return [{ current, streaming }] as unknown as R[];
      return [] as R[];
    },
  };
  const deps: Pick<Deps, 'pg' | 'log' | 'config'> = { pg, log: silent, config };
  const writes = () => sent.filter((s) => /^ALTER SYSTEM/.test(s));
  return { deps, writes };
}

const ANY1 = 'ANY 1 ("pg1", "pg2")';

const relaxCases: [string, Config, string, string[], number | undefined, string[]][] = [
  ['the lost standby was the last one, pg_basebackup still streams', sync('any', 1), ANY1, ['pg1', 'pg_basebackup'], 1, ["ALTER SYSTEM SET synchronous_standby_names = ''"]],
  ['the lost standby was the last one, pg_receivewal and walreceiver still stream', sync('any', 1), ANY1, ['pg1', 'pg_receivewal', 'walreceiver'], 1, ["ALTER SYSTEM SET synchronous_standby_names = ''"]],
  ['a tool streams under the primary\'s own name', sync('any', 1), ANY1, ['pg0'], undefined, ["ALTER SYSTEM SET synchronous_standby_names = ''"]],
  ['one configured standby still streams, ANY 1', sync('any', 1), ANY1, ['pg1', 'pg2', 'pg_basebackup'], 1, []],
  ['no loss named, one configured standby streams', sync('any', 1), ANY1, ['pg2'], undefined, []],
  ['ANY 2, one configured standby left plus a backup', sync('any', 2, 4), 'ANY 2 ("pg1", "pg2", "pg3")', ['pg1', 'pg2', 'pg_basebackup'], 1, ["ALTER SYSTEM SET synchronous_standby_names = ''"]],
  ['ANY 2, one standby streaming twice under its name', sync('any', 2, 4), 'ANY 2 ("pg1", "pg2", "pg3")', ['pg2', 'pg2'], undefined, ["ALTER SYSTEM SET synchronous_standby_names = ''"]],
  ['already relaxed', sync('any', 1), '', [], 1, []],
];
for (const [title, config, current, streaming, lost, expected] of relaxCases) {
  test(`relax: ${title} → ${expected.length ? 'relaxed' : 'left as is'}`, async (t) => {
    const w = world(config, current, streaming);
    const note = await relaxSynchronous(w.deps, config.nodes[0]!, lost);
    t.deepEqual(w.writes(), expected);
    if (expected.length) t.regex(note ?? '', /synchronous replication relaxed on node 0 \(\d standby streaming/);
    else t.is(note, undefined);
  });
}

test('relax: the note counts only configured standbys', async (t) => {
  const config = sync('any', 2, 4);
  const w = world(config, 'ANY 2 ("pg1", "pg2", "pg3")', ['pg1', 'pg2', 'pg_basebackup', 'pg_receivewal']);
  t.regex((await relaxSynchronous(w.deps, config.nodes[0]!, 1)) ?? '', /\(1 standby streaming, 2 required\)/);
});

test('relax: a failing query is logged, not thrown, and nothing is written', async (t) => {
  const config = sync('any', 1);
  const errors: string[] = [];
  const log: Log = { ...silent, error: (_f, msg) => void errors.push(msg) };
  const pg: Pg = { query: async () => Promise.reject(new Error('connection refused')) };
  t.is(await relaxSynchronous({ pg, log, config }, config.nodes[0]!, 1), undefined);
  t.deepEqual(errors, ['could not relax synchronous replication on node 0: connection refused']);
});

test('relax: a primary that refuses connections (down too) is a warning, not an error: its own failover follows', async (t) => {
  const config = sync('any', 1);
  const [errors, warnings]: [string[], string[]] = [[], []];
  const log: Log = { ...silent, error: (_f, msg) => void errors.push(msg), warn: (_f, msg) => void warnings.push(msg) };
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const pg: Pg = { query: async () => Promise.reject(new OperationError('127.0.0.1:5432: connect ECONNREFUSED 127.0.0.1:5432', { cause: refused })) };
  t.is(await relaxSynchronous({ pg, log, config }, config.nodes[0]!, 1), undefined);
  t.deepEqual(errors, []);
  t.deepEqual(warnings, ['node 0 refuses connections (not running): no synchronous setting to relax there']);
});

test('restore: a backup streaming is not a standby → not restored; the standby back → restored', async (t) => {
  const config = sync('any', 1);
  const before = world(config, '', ['pg_basebackup']);
  t.is(await restoreSynchronous(before.deps, config.nodes[0]!), undefined);
  t.deepEqual(before.writes(), []);
  const after = world(config, '', ['pg_basebackup', 'pg2']);
  t.regex((await restoreSynchronous(after.deps, config.nodes[0]!)) ?? '', /restored on node 0: ANY 1 \("pg1", "pg2"\) \(pg2 streaming\)/);
  t.deepEqual(after.writes(), [`ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 ("pg1", "pg2")'`]);
});

test('configured standbys: the primary\'s own name, unknown names and repeats do not count', (t) => {
  const config = sync('any', 1);
  t.deepEqual(configuredStandbys(config, 0, ['pg0', 'pg1', 'pg_basebackup', 'pg1', 'pg2']), ['pg1', 'pg2']);
  t.deepEqual(configuredStandbys(config, 1, ['pg0', 'pg1']), ['pg0']);
  t.deepEqual(configuredStandbys(config, 0, []), []);
});
