// The other ways a pgpool.conf may wire the hooks still work when pgpool runs them: the 3.x follow_master_command
// line shipped (commented) in pgpool/hooks.conf, and the sample scripts' unquoted positional arguments
// (failover.sh.sample: 12, follow_primary.sh.sample: 10; docs/pgpool-hooks.md, "The sample scripts"). And a wrong
// or garbled line fails loudly — exit 2 and a log line naming the flag — because pgpool itself ignores the exit
// code and would carry on.
import test from 'ava';
import { EVENT_FLAGS, type EventKind } from '../../lib/pgpool/args.ts';
import { primary, standby } from '../support/fake-pg.ts';
import { expandHookCommand } from '../support/pgpool-expand.ts';
import { closingLine, DIST_BIN, pgpoolEnv, promotedIn, type HookSetting } from '../support/pgpool-env.ts';

const AFTER_FAILOVER = { nodes: [primary({ reach: 'down' }), primary({ timeline: 2 }), standby({ upstream: 1, timeline: 2 })], pgpoolStatus: [3, 2, 3] };
const FOLLOW_2 = { node: 2, newMain: 1, oldMain: 0, oldPrimary: 0 };

test('wiring: the 3.x follow_master_command line (no %N %S) → the follow hook runs: standby attached', async (t) => {
  const env = await pgpoolEnv(t, AFTER_FAILOVER);
  const line = env.expand('follow_master_command', FOLLOW_2);
  t.notRegex(line, /--old-primary-host/);
  const run = await env.run('follow_master_command', FOLLOW_2);
  t.is(run.exitCode, 0, run.stderr);
  t.is(env.pcp.backends[2]!.status, 1);
  t.regex(closingLine(run)?.msg ?? '', /node 2 already followed node 1: attached$/);
});

test('wiring: follow_primary.sh.sample\'s 10 unquoted positional arguments → the follow hook runs: standby attached', async (t) => {
  const env = await pgpoolEnv(t, AFTER_FAILOVER);
  const run = await env.runLine(env.expand(`${DIST_BIN}/maas-ha-follow-primary %d %h %p %D %m %H %M %P %r %R`, FOLLOW_2));
  t.is(run.exitCode, 0, run.stderr);
  t.is(env.pcp.backends[2]!.status, 1);
});

test('wiring: failover.sh.sample\'s 12 unquoted positional arguments, %m behind → the most advanced standby promoted', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000148' })] });
  const run = await env.runLine(env.expand(`${DIST_BIN}/maas-ha-failover %d %h %p %D %m %H %M %P %r %R %N %S`, { node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }));
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
});

test('wiring: the positional form with an unset backend_data_directory (an argument vanishes) → exit 2, nothing touched', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby(), standby()] });
  const template = `${DIST_BIN}/maas-ha-failover %d %h %p %D %m %H %M %P %r %R %N %S`;
  // pgpool.conf without backend_data_directory0: %D expands to nothing, and unquoted it is no argument at all.
  const backends = env.backends().map((b, i) => (i === 0 ? { ...b, dataDir: '' } : b));
  const run = await env.runLine(expandHookCommand(template, { backends, node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }));
  t.is(run.exitCode, 2);
  t.regex(closingLine(run)?.msg ?? '', /^got 11 positional arguments, expected 10 .* or 12/);
  t.deepEqual([run.calls, run.statements], [[], []]);
});

const KINDS: [HookSetting, EventKind][] = [
  ['failover_command', 'failover'],
  ['follow_primary_command', 'follow_primary'],
  ['failback_command', 'failback'],
];
for (const [setting, kind] of KINDS) {
  const flag = `--${EVENT_FLAGS[kind].p}`;
  test(`wiring: ${setting} with garbage in ${flag} → exit 2, the log line names ${flag}, nothing touched`, async (t) => {
    const env = await pgpoolEnv(t, AFTER_FAILOVER);
    const garbled = env.template(setting).replace(`${flag} "%p"`, `${flag} "%p;x"`);
    const run = await env.runLine(env.expand(garbled, FOLLOW_2));
    t.is(run.exitCode, 2);
    const line = closingLine(run);
    t.like(line, { level: 'error', step: 'arguments', outcome: 'failed' });
    t.is(line?.msg, `${flag}: expected a port number, got "${env.node(2).port};x"`);
    t.deepEqual([run.calls, run.statements], [[], []]);
  });
}

test('wiring: the failover line pasted into follow_primary_command → exit 2 naming the unknown flag and the right ones', async (t) => {
  const env = await pgpoolEnv(t, AFTER_FAILOVER);
  const wrong = env.template('failover_command').replace('maas-ha-failover', 'maas-ha-follow-primary');
  const run = await env.runLine(env.expand(wrong, FOLLOW_2));
  t.is(run.exitCode, 2);
  t.regex(closingLine(run)?.msg ?? '', /^--failed-node: unknown flag; the follow_primary hook takes --node --node-host /);
  t.deepEqual([run.calls, run.statements], [[], []]);
});
