// preflight's pure checks: each row is a pgpool.conf or cluster mistake somebody really made, and what it must say.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkNodeFacts, checkPgpoolConf, parsePgpoolVersion, readPgpoolConf, versionFindings, type NodeFacts } from '../../lib/preflight.ts';
import { pgpoolConfArg } from '../../lib/adapters/proc.ts';
import { takeConfigFlag } from '../../lib/config/path.ts';
import { renderHookLines } from '../../lib/pgpool/conf.ts';
import { testConfig } from '../support/config.ts';

const TEMPLATE = readFileSync(join(import.meta.dirname, '../../pgpool/hooks.conf'), 'utf8');
const config = testConfig({}, 2);

/** A pgpool.conf that preflight has nothing against, for this config. */
function goodConf(): string {
  return [
    "backend_clustering_mode = 'streaming_replication'",
    ...config.nodes.flatMap((n) => [`backend_hostname${n.id} = '${n.hostname}'`, `backend_port${n.id} = ${n.port}`, `backend_data_directory${n.id} = '${n.data_directory}'`]),
    'health_check_period = 2',
    'sr_check_period = 0',
    "log_min_messages = 'warning'",
    renderHookLines(TEMPLATE, '/usr/local/lib/maas-ha/dist/bin'),
  ].join('\n');
}

const check = (text: string) => {
  const { settings, findings } = readPgpoolConf(text, 'pgpool.conf');
  return [...findings, ...checkPgpoolConf(settings, config, TEMPLATE)];
};
const problems = (text: string) => check(text).filter((f) => f.level !== 'ok');

test('preflight: the pgpool.conf maas-ha recommends → nothing to say but ok', (t) => {
  t.deepEqual(problems(goodConf()), []);
  t.true(check(goodConf()).some((f) => f.what === 'failover_command is the line of pgpool/hooks.conf'));
});

const rows: [string, (conf: string) => string, 'warn' | 'fail', RegExp][] = [
  ["Debian's health_check_period = 0", (c) => c.replace('health_check_period = 2', 'health_check_period = 0'), 'fail', /health_check_period is 0 or unset/],
  ["log_min_messages = 'log' (hides WARNING and ERROR)", (c) => c.replace("log_min_messages = 'warning'", "log_min_messages = 'log'"), 'warn', /LOG ranks above ERROR/],
  ['follow_master_command instead of follow_primary_command', (c) => c.replace(/^follow_primary_command/m, 'follow_master_command'), 'fail', /follow_master_command is set .* ignores the old name silently/],
  ['a hook line with an unquoted placeholder', (c) => c.replace('--failed-node "%d"', '--failed-node %d'), 'fail', /failover_command differs from pgpool\/hooks.conf/],
  ['backend_hostname spelt differently (localhost vs the address)', (c) => c.replace(`backend_hostname1 = '${config.nodes[1]!.hostname}'`, "backend_hostname1 = 'localhost'"), 'fail', /backend_hostname1 is "localhost", maas-ha says "10\.0\.0\.12"/],
  ['a backend pgpool has that maas-ha does not', (c) => `${c}\nbackend_hostname7 = '10.0.0.99'`, 'fail', /pgpool has backend 7/],
  ['an absolute recovery_1st_stage_command', (c) => c.replace("recovery_1st_stage_command = 'recovery_1st_stage'", "recovery_1st_stage_command = '/usr/local/bin/recovery_1st_stage'"), 'fail', /absolute path: pgpool runs "\$PGDATA\//],
  ['delegate_ip (4.4 spelling) on 4.3 with the watchdog', (c) => `${c}\nuse_watchdog = on\ndelegate_ip = '10.0.0.100'`, 'fail', /pgpool 4.3 reads delegate_IP/],
  ['failover_command not maas-ha at all', (c) => c.replace(/^failover_command = .*$/m, "failover_command = '/etc/pgpool2/failover.sh %d %h'"), 'fail', /does not run maas-ha-failover/],
  // Seen in the fault campaign: the primary black-holed while the check waited on it, pgpool's primary search blocked.
  ['sr_check_period > 0 (its worker holds the follow-primary lock while it waits on a backend)', (c) => c.replace('sr_check_period = 0', 'sr_check_period = 5'), 'warn', /sr_check_period is 5: .*holds pgpool's follow-primary lock.*primary search wait/],
  ['a line pgpool cannot parse', (c) => `${c}\nhealth_check_user = 'it''s'`, 'fail', /is not valid pgpool.conf/],
];
for (const [title, mutate, level, what] of rows) {
  test(`preflight pgpool.conf: ${title} → ${level}`, (t) => {
    const found = problems(mutate(goodConf()));
    t.true(found.some((f) => f.level === level && what.test(f.what)), JSON.stringify(found, null, 1));
    t.true(found.every((f) => f.fix !== undefined), 'every problem says what to do');
  });
}

const streaming = (id: number, sender: string) => ({
  observation: {
    id,
    reachable: true as const,
    inRecovery: true,
    timeline: 1,
    walReceiver: { status: 'streaming', senderHost: sender, senderPort: 5432, receivedTli: 1, slotName: null },
    replication: [],
    synchronousStandbyNames: '',
  },
  walLogHints: true,
  dataChecksums: false,
  wrappers: ['recovery_1st_stage', 'pgpool_remote_start'],
  tools: ['pg_ctl', 'pg_rewind', 'pg_basebackup', 'pg_controldata'],
});
const primaryFacts = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  ...streaming(0, ''),
  observation: { id: 0, reachable: true, inRecovery: false, timeline: 1, replication: [], synchronousStandbyNames: '' },
  recoveryExtension: true,
  slots: ['maas_ha_node_1'],
  ...over,
});

test('preflight nodes: a healthy pair → only ok', (t) => {
  const found = checkNodeFacts(config, new Map([[0, primaryFacts()], [1, streaming(1, '10.0.0.11')]]));
  t.deepEqual(found.filter((f) => f.level !== 'ok'), []);
});

test('preflight nodes: no wal_log_hints, no checksums → pg_rewind impossible is a failure', (t) => {
  const found = checkNodeFacts(config, new Map([[0, primaryFacts({ walLogHints: false })], [1, streaming(1, '10.0.0.11')]]));
  t.true(found.some((f) => f.level === 'fail' && f.area === 'node 0' && /pg_rewind cannot rewind/.test(f.what)));
});

test("preflight nodes: a standby streaming from 'localhost' while pgpool says 10.0.0.11 → named (false-primary check)", (t) => {
  const found = checkNodeFacts(config, new Map([[0, primaryFacts()], [1, streaming(1, 'localhost')]]));
  t.true(found.some((f) => f.level === 'fail' && /streams from "localhost", but the primary is "10.0.0.11"/.test(f.what)));
});

test('preflight nodes: recovery wrappers missing, no pgpool_recovery, a missing slot, ssh down → each named', (t) => {
  const found = checkNodeFacts(
    config,
    new Map<number, NodeFacts>([
      [0, primaryFacts({ recoveryExtension: false, slots: [], wrappers: ['recovery_1st_stage'] })],
      [1, { ...streaming(1, '10.0.0.11'), sshError: 'Host key verification failed.' }],
    ]),
  );
  const what = found.filter((f) => f.level !== 'ok').map((f) => `${f.area}: ${f.what}`);
  t.true(what.some((w) => /node 0: the pgpool_recovery extension is not in template1/.test(w)), what.join('\n'));
  t.true(what.some((w) => /node 0: no replication slot maas_ha_node_1/.test(w)));
  t.true(what.some((w) => /ssh node 0: .* lacks pgpool_remote_start/.test(w)));
  t.true(what.some((w) => /ssh node 1: postgres@10.0.0.12 does not answer: Host key verification failed/.test(w)));
});

test('preflight nodes: two primaries → split brain is a failure', (t) => {
  const found = checkNodeFacts(config, new Map([[0, primaryFacts()], [1, { ...primaryFacts(), observation: { ...primaryFacts().observation, id: 1 } }]]));
  t.true(found.some((f) => f.level === 'fail' && /2 nodes answer as primaries/.test(f.what)));
});

// ---- wiring into an existing pgpool, and the settings each pgpool version reads differently


test('preflight: hook lines without --config while maas-ha\'s config lives elsewhere → fail naming both files and the fix', (t) => {
  const elsewhere = testConfig({ source: '/srv/maas-ha/cluster.yaml' }, 2);
  const { settings } = readPgpoolConf(goodConf(), 'pgpool.conf');
  const f = checkPgpoolConf(settings, elsewhere, TEMPLATE).filter((x) => x.level === 'fail');
  t.true(f.some((x) => /hooks read \/etc\/maas-ha\/maas-ha\.yaml \(the default.*checked \/srv\/maas-ha\/cluster\.yaml/.test(x.what) && /render-pgpool --config \/srv\/maas-ha\/cluster\.yaml/.test(x.fix ?? '')), JSON.stringify(f));
});

test('render-pgpool: a configuration outside the default path is written into every hook line; preflight accepts those lines', (t) => {
  const lines = renderHookLines(TEMPLATE, '/usr/local/bin', '/srv/maas-ha/cluster.yaml');
  for (const hook of ['maas-ha-failover', 'maas-ha-follow-primary', 'maas-ha-failback']) t.regex(lines, new RegExp(`/usr/local/bin/${hook} --config /srv/maas-ha/cluster\\.yaml --`));
  const elsewhere = testConfig({ source: '/srv/maas-ha/cluster.yaml' }, 2);
  const { settings } = readPgpoolConf(goodConf().replace(renderHookLines(TEMPLATE, '/usr/local/lib/maas-ha/dist/bin'), renderHookLines(TEMPLATE, '/usr/local/lib/maas-ha/dist/bin', '/srv/maas-ha/cluster.yaml')), 'pgpool.conf');
  t.deepEqual(checkPgpoolConf(settings, elsewhere, TEMPLATE).filter((x) => x.level !== 'ok'), []);
  t.throws(() => renderHookLines(TEMPLATE, '/usr/local/bin', "/etc/x'; touch /tmp/pwned; '.yaml"), { message: /configuration file .* pasted unquoted/ });
});

test('hooks: --config anywhere before -- is taken out before the hook parses its own flags', (t) => {
  t.deepEqual(takeConfigFlag(['--config', '/a.yaml', '--failed-node', '0']), { config: '/a.yaml', rest: ['--failed-node', '0'] });
  t.deepEqual(takeConfigFlag(['--failed-node', '0', '--config=/b.yaml']), { config: '/b.yaml', rest: ['--failed-node', '0'] });
  t.deepEqual(takeConfigFlag(['--', '--config', '/c.yaml']), { config: undefined, rest: ['--', '--config', '/c.yaml'] });
});

test('preflight: the running pgpool\'s -f FILE is the pgpool.conf read (relative paths against its cwd)', (t) => {
  t.is(pgpoolConfArg(['/usr/sbin/pgpool', '-n', '-f', '/etc/pgpool2/pgpool.conf'], '/'), '/etc/pgpool2/pgpool.conf');
  t.is(pgpoolConfArg(['pgpool', '--config-file=etc/pgpool.conf', '-n'], '/var/lib/lab'), '/var/lib/lab/etc/pgpool.conf');
  t.is(pgpoolConfArg(['pgpool', '-n'], '/'), undefined);
});

const W = (extra: Record<string, string> = {}) => new Map(Object.entries({ use_watchdog: 'on', ...extra }));
// [version, settings, level expected, pattern]
const versionRows: [string, Map<string, string>, 'ok' | 'warn' | 'fail', RegExp][] = [
  ['4.1.9', new Map([['follow_primary_command', 'x']]), 'fail', /knows follow_master_command only/],
  ['4.3.5', W(), 'warn', /lacks the watchdog split-brain fixes of 4\.3\.17.*pgpool 4\.3\.5|pgpool 4\.3\.5 lacks the watchdog split-brain fixes/],
  ['4.3.17', W(), 'ok', /no setting it reads differently/],
  ['4.4.2', W({ delegate_IP: '10.0.0.100' }), 'warn', /delegate_IP is the pre-4\.4 spelling/],
  ['4.6.0', new Map([['health_check_user', 'pgpool']]), 'fail', /sr_check_user is unset: pgpool 4\.6\.0 no longer defaults it/],
  ['4.7.1', new Map([['logdir', '/var/log/pgpool'], ['health_check_user', 'a'], ['sr_check_user', 'a'], ['recovery_user', 'a']]), 'fail', /logdir is set but pgpool 4\.7\.1 reads work_dir/],
  ['4.7.1', new Map([['health_check_user', 'a'], ['sr_check_user', 'a'], ['recovery_user', 'a'], ['recovery_database', 'maas']]), 'warn', /pgpool_recovery extension must exist there.*|recovery_database \(maas\)/],
  ['4.7.1', W({ health_check_user: 'a', sr_check_user: 'a', recovery_user: 'a', wd_lifecheck_user: 'a' }), 'warn', /listens only on its hostname setting/],
];
for (const [version, settings, level, re] of versionRows) {
  test(`preflight version traps: pgpool ${version} with ${[...settings.keys()].join(', ') || 'defaults'} → ${level} ${re.source.slice(0, 40)}`, (t) => {
    const v = parsePgpoolVersion(`pgpool-II version ${version} (x)`)!;
    const found = versionFindings(v, settings);
    t.true(found.some((f) => f.level === level && re.test(f.what)), JSON.stringify(found, null, 1));
  });
}
