// The config loader: every problem at once, each with its line:col; defaults applied; secrets' permissions
// checked. The filesystem is a fake ConfigIo except in the one test of nodeIo itself.

import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, loadConfig, nodeIo, parseConfig, type ConfigIo } from '../../../lib/config/load.ts';
import { DEFAULT_BUDGETS_MS, type Config } from '../../../lib/config/types.ts';
import { ConfigError } from '../../../lib/errors.ts';

const SECRETS = [
  '/etc/maas-ha/pgpass',
  '/etc/maas-ha/replication.pgpass',
  '/var/lib/postgresql/.ssh/id_maas_ha',
  '/etc/maas-ha/pcppass',
  '/etc/maas-ha/webhook.auth',
];

/** A fake filesystem: path → [mode, contents]; mode includes the file type bits like stat's st_mode. */
function fakeIo(files: Record<string, [number, string?]> = {}): ConfigIo {
  const all: Record<string, [number, string?]> = {
    ...Object.fromEntries(SECRETS.map((p) => [p, [0o100600]])),
    '/etc/maas-ha/known_hosts': [0o100644],
    ...files,
  };
  return {
    readFile(path) {
      const f = all[path];
      if (f?.[1] === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
      return f[1];
    },
    stat(path) {
      const f = all[path];
      return f && { mode: f[0], isFile: (f[0] & 0o170000) === 0o100000 };
    },
  };
}

/** Only what has no default. */
const MINIMAL = `replication:
  user: replicator
nodes:
  - id: 0
    hostname: 127.0.0.11
    data_directory: /var/lib/postgresql/15/main
    control: { method: pg_ctlcluster, version: "15", name: main }
  - id: 1
    hostname: 127.0.0.12
    data_directory: /srv/pg/data
    control: { method: pg_ctl, log_file: /srv/pg/postgresql.log }
ssh:
  identity_file: /var/lib/postgresql/.ssh/id_maas_ha
  known_hosts_file: /etc/maas-ha/known_hosts
pcp:
  user: pcpadmin
  pcppass_file: /etc/maas-ha/pcppass
`;

/** Every key, none at its default. */
const FULL = `cluster_name: region
state_dir: /srv/maas-ha
log_level: debug
postgres:
  bin_dir: /opt/pg/bin
  database: maasdb
  user: admin
  password_file: /etc/maas-ha/pgpass
  connect_timeout_ms: 1000
  statement_timeout_ms: 2000
replication:
  user: replicator
  password_file: /etc/maas-ha/replication.pgpass
  use_slots: false
  drop_slot_on_standby_loss: true
  synchronous: { mode: any, count: 2 }
nodes:
  - id: 0
    hostname: db0.example
    port: 5433
    data_directory: /var/lib/postgresql/15/main
    config_directory: /etc/postgresql/15/main
    bin_dir: /usr/lib/postgresql/15/bin
    control: { method: pg_ctlcluster, version: 15, name: main }
    ssh_host: 10.0.0.1
    candidate: false
    priority: 50
    name: region1
  - id: 5
    hostname: db1.example
    data_directory: /var/lib/postgresql/15/main
    control: { method: pg_ctlcluster, version: "15", name: main }
  - id: 7
    hostname: db2.example
    data_directory: /var/lib/postgresql/15/main
    control: { method: pg_ctlcluster, version: "15", name: main }
ssh:
  binary: /usr/local/bin/ssh
  user: maasha
  port: 2222
  identity_file: /var/lib/postgresql/.ssh/id_maas_ha
  known_hosts_file: /etc/maas-ha/known_hosts
  connect_timeout_s: 3
pcp:
  bin_dir: /usr/bin
  host: 10.0.0.10
  port: 9899
  user: pcpadmin
  pcppass_file: /etc/maas-ha/pcppass
  timeout_ms: 20000
budgets:
  failover: 20000
  recovery_1st_stage: 7200000
notify:
  webhooks:
    - url: https://chat.example/hooks/x
      timeout_ms: 1500
      authorization_file: /etc/maas-ha/webhook.auth
    - url: http://10.0.0.9:8080/alert
fencing:
  command: [/usr/local/sbin/fence-node, "{host}", --port, "{port}"]
  timeout_ms: 5000
`;

function problemsOf(text: string, io = fakeIo()): string[] {
  try {
    parseConfig(text, '/etc/maas-ha/maas-ha.yaml', io);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

test('config: minimal file → every default applied', (t) => {
  const expected: Config = {
    source: '/etc/maas-ha/maas-ha.yaml',
    cluster_name: 'maas',
    state_dir: '/var/lib/maas-ha',
    log_level: 'info',
    postgres: { database: 'postgres', user: 'postgres', connect_timeout_ms: 3000, statement_timeout_ms: 5000 },
    replication: {
      user: 'replicator',
      use_slots: true,
      drop_slot_on_standby_loss: false,
      synchronous: { mode: 'off', count: 1 },
    },
    nodes: [
      {
        id: 0,
        hostname: '127.0.0.11',
        port: 5432,
        data_directory: '/var/lib/postgresql/15/main',
        bin_dir: '/usr/lib/postgresql/15/bin',
        control: { method: 'pg_ctlcluster', version: '15', name: 'main' },
        ssh_host: '127.0.0.11',
        candidate: true,
        priority: 100,
        name: 'node0',
      },
      {
        id: 1,
        hostname: '127.0.0.12',
        port: 5432,
        data_directory: '/srv/pg/data',
        bin_dir: '/usr/lib/postgresql/15/bin',
        control: { method: 'pg_ctl', log_file: '/srv/pg/postgresql.log' },
        ssh_host: '127.0.0.12',
        candidate: true,
        priority: 100,
        name: 'node1',
      },
    ],
    ssh: {
      binary: '/usr/bin/ssh',
      user: 'postgres',
      port: 22,
      identity_file: '/var/lib/postgresql/.ssh/id_maas_ha',
      known_hosts_file: '/etc/maas-ha/known_hosts',
      connect_timeout_s: 5,
    },
    pcp: {
      bin_dir: '/usr/sbin',
      host: 'localhost',
      port: 9898,
      user: 'pcpadmin',
      pcppass_file: '/etc/maas-ha/pcppass',
      timeout_ms: 10000,
    },
    budgets_ms: DEFAULT_BUDGETS_MS,
    notify: { webhooks: [] },
    fencing: { timeout_ms: 10000 },
    recovery: { keep_old_data_dirs: 1, follow_basebackup: false, start_timeout_ms: 60000, stream_timeout_ms: 30000 },
  };
  t.deepEqual(parseConfig(MINIMAL, '/etc/maas-ha/maas-ha.yaml', fakeIo()), expected);
});

test('config: full file → every value as written, node defaults from postgres.bin_dir', (t) => {
  const c = parseConfig(FULL, '/srv/maas-ha.yaml', fakeIo());
  t.deepEqual(c, {
    source: '/srv/maas-ha.yaml',
    cluster_name: 'region',
    state_dir: '/srv/maas-ha',
    log_level: 'debug',
    postgres: {
      database: 'maasdb',
      user: 'admin',
      password_file: '/etc/maas-ha/pgpass',
      connect_timeout_ms: 1000,
      statement_timeout_ms: 2000,
    },
    replication: {
      user: 'replicator',
      password_file: '/etc/maas-ha/replication.pgpass',
      use_slots: false,
      drop_slot_on_standby_loss: true,
      synchronous: { mode: 'any', count: 2 },
    },
    nodes: [
      {
        id: 0,
        hostname: 'db0.example',
        port: 5433,
        data_directory: '/var/lib/postgresql/15/main',
        config_directory: '/etc/postgresql/15/main',
        bin_dir: '/usr/lib/postgresql/15/bin',
        control: { method: 'pg_ctlcluster', version: '15', name: 'main' },
        ssh_host: '10.0.0.1',
        candidate: false,
        priority: 50,
        name: 'region1',
      },
      ...[5, 7].map((id, i) => ({
        id,
        hostname: `db${i + 1}.example`,
        port: 5432,
        data_directory: '/var/lib/postgresql/15/main',
        bin_dir: '/opt/pg/bin',
        control: { method: 'pg_ctlcluster' as const, version: '15', name: 'main' },
        ssh_host: `db${i + 1}.example`,
        candidate: true,
        priority: 100,
        name: `node${id}`,
      })),
    ],
    ssh: {
      binary: '/usr/local/bin/ssh',
      user: 'maasha',
      port: 2222,
      identity_file: '/var/lib/postgresql/.ssh/id_maas_ha',
      known_hosts_file: '/etc/maas-ha/known_hosts',
      connect_timeout_s: 3,
    },
    pcp: {
      bin_dir: '/usr/bin',
      host: '10.0.0.10',
      port: 9899,
      user: 'pcpadmin',
      pcppass_file: '/etc/maas-ha/pcppass',
      timeout_ms: 20000,
    },
    budgets_ms: { ...DEFAULT_BUDGETS_MS, failover: 20000, recovery_1st_stage: 7200000 },
    notify: {
      webhooks: [
        { url: 'https://chat.example/hooks/x', timeout_ms: 1500, authorization_file: '/etc/maas-ha/webhook.auth' },
        { url: 'http://10.0.0.9:8080/alert', timeout_ms: 3000 },
      ],
    },
    fencing: { command: ['/usr/local/sbin/fence-node', '{host}', '--port', '{port}'], timeout_ms: 5000 },
    recovery: { keep_old_data_dirs: 1, follow_basebackup: false, start_timeout_ms: 60000, stream_timeout_ms: 30000 },
  });
});

test('config: defaults are copies, never shared between loads', (t) => {
  const a = parseConfig(MINIMAL, 'a', fakeIo());
  a.notify.webhooks.push({ url: 'http://x', timeout_ms: 1 });
  a.budgets_ms.failover = 1;
  const b = parseConfig(MINIMAL, 'b', fakeIo());
  t.deepEqual(b.notify.webhooks, []);
  t.is(b.budgets_ms.failover, DEFAULT_BUDGETS_MS.failover);
});

test('config: pgpool/maas-ha.example.yaml is valid once its files exist', (t) => {
  const text = readFileSync(new URL('../../../pgpool/maas-ha.example.yaml', import.meta.url), 'utf8');
  const c = parseConfig(text, 'example', fakeIo());
  t.deepEqual(
    c.nodes.map((n) => [n.id, n.hostname, n.control, n.data_directory, n.config_directory]),
    [0, 1].map((id) => [
      id,
      `10.0.0.1${id + 1}`,
      { method: 'pg_ctlcluster', version: '15', name: 'main' },
      '/var/lib/postgresql/15/main',
      '/etc/postgresql/15/main',
    ]),
  );
  t.deepEqual(c.budgets_ms, DEFAULT_BUDGETS_MS);
});

test('config: five mistakes → five problems with line:col, in file order', (t) => {
  const text = MINIMAL.replace('  user: replicator\n', '  usr: replicator\n') // line 2: unknown key, and user missing
    .replace('    data_directory: /srv/pg/data\n', '    data_directory: /srv/pg/data\n    port: abc\n') // line 11
    .replace('  - id: 1\n', '  - id: 0\n') // line 8: duplicate id
    .concat('log_level: verbose\n'); // line 19
  t.deepEqual(problemsOf(text), [
    'replication.user: required (1:1)',
    'replication.usr: unknown key (did you mean user?) (2:3)',
    'nodes[1].id: duplicate id 0 (also nodes[0]) (8:9)',
    'nodes[1].port: must be an integer from 1 to 65535, got "abc" (11:11)',
    'log_level: must be one of debug, info, warn, error, got "verbose" (19:12)',
  ]);
});

test('config: unknown key → named, with a did-you-mean and its line:col', (t) => {
  const text = MINIMAL.replace('  identity_file:', '  identity_fle:');
  t.deepEqual(problemsOf(text), [
    'ssh.identity_file: required (12:1)',
    'ssh.identity_fle: unknown key (did you mean identity_file?) (13:3)',
  ]);
  t.deepEqual(problemsOf(`${MINIMAL}backend_hostname0: x\n`), ['backend_hostname0: unknown key (18:1)']);
});

test('config: secret file mode 0644 → refused, with the chmod that fixes it', (t) => {
  const io = fakeIo({ '/etc/maas-ha/pcppass': [0o100644], '/var/lib/postgresql/.ssh/id_maas_ha': [0o100620] });
  t.deepEqual(problemsOf(MINIMAL, io), [
    'ssh.identity_file: /var/lib/postgresql/.ssh/id_maas_ha is writable by group or others (mode 0620); chmod 600 it (ssh refuses private keys that others can read) (13:18)',
    'pcp.pcppass_file: /etc/maas-ha/pcppass is readable by group or others (mode 0644); chmod 600 it (libpq and pcp also ignore such files silently) (17:17)',
  ]);
});

test('config: secret file missing or a directory → refused; known_hosts may have any mode but must exist', (t) => {
  const io = fakeIo({ '/etc/maas-ha/pcppass': [0o040700] });
  const text = `${MINIMAL.replace('/etc/maas-ha/known_hosts', '/etc/ssh/ssh_known_hosts')}postgres: { password_file: /etc/nope }\n`;
  t.deepEqual(problemsOf(text, io), [
    'ssh.known_hosts_file: /etc/ssh/ssh_known_hosts does not exist (fill it with ssh-keyscan of every node: maas-ha checks host keys strictly) (14:21)',
    'pcp.pcppass_file: /etc/maas-ha/pcppass is not a regular file (17:17)',
    'postgres.password_file: /etc/nope does not exist (18:28)',
  ]);
});

test('config: paths must be absolute and shell-safe; hosts must be plain', (t) => {
  const text = MINIMAL.replace('/srv/pg/data', 'srv/pg/data')
    .replace('/srv/pg/postgresql.log', '"/srv/pg/my log"')
    .replace('127.0.0.11', '"db0;reboot"');
  const problems = problemsOf(text);
  t.deepEqual(problems, [
    'nodes[0].hostname: must be a host name or address of only [A-Za-z0-9.:_-] characters (pgpool pastes it unquoted into commands), got "db0;reboot" (5:15)',
    'nodes[1].data_directory: must be an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals), got "srv/pg/data" (10:21)',
    'nodes[1].control.log_file: must be an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals), got "/srv/pg/my log" (11:42)',
  ]);
});

test('config: missing sections → required at the parent; wrong kinds say what they got', (t) => {
  t.deepEqual(problemsOf('log_level: info\nnodes: {}\nreplication: [a]\n'), [
    'ssh: required (1:1)',
    'pcp: required (1:1)',
    'nodes: must be a list, got a map (2:1)',
    'replication: must be a map, got a list (3:1)',
  ]);
});

test('config: cross-field mistakes → duplicate address, no candidate, synchronous count too high', (t) => {
  const text = MINIMAL.replace('127.0.0.12', '127.0.0.11')
    .replace(/(control: .*\n)/g, '$1    candidate: false\n')
    .replace('  user: replicator\n', '  user: replicator\n  synchronous: { mode: first, count: 2 }\n');
  t.deepEqual(problemsOf(text), [
    'replication.synchronous.count: must be less than the number of nodes (2) with mode first: only the standbys can confirm commits, got 2 (3:38)',
    'nodes: no node has candidate: true, so no standby could ever be promoted (4:1)',
    'nodes[1].hostname: duplicate address 127.0.0.11:5432 (also nodes[0]) (11:15)',
  ]);
});

test('config: node control → method picks the keys; an unknown method lists the known ones', (t) => {
  const text = MINIMAL.replace('{ method: pg_ctlcluster, version: "15", name: main }', '{ method: systemd }').replace(
    '{ method: pg_ctl, log_file: /srv/pg/postgresql.log }',
    '{ method: pg_ctl, version: "15" }',
  );
  t.deepEqual(problemsOf(text), [
    'nodes[0].control.method: must be one of pg_ctlcluster, pg_ctl, got "systemd" (7:24)',
    'nodes[1].control.log_file: required (11:5)',
    'nodes[1].control.version: unknown key (11:32)',
  ]);
});

test('config: webhooks must be http(s) URLs; budgets only name real hooks', (t) => {
  const text = `${MINIMAL}notify:\n  webhooks:\n    - url: ftp://x/y\n    - url: not a url\nbudgets:\n  failovr: 1000\n  escalation: 0\n`;
  t.deepEqual(problemsOf(text), [
    'notify.webhooks[0].url: must be an http:// or https:// URL, got "ftp://x/y" (20:12)',
    'notify.webhooks[1].url: must be an http:// or https:// URL, got "not a url" (21:12)',
    'budgets.failovr: unknown key (did you mean failover?) (23:3)',
    'budgets.escalation: must be an integer from 1 to 86400000, got 0 (24:15)',
  ]);
});

test('config: fewer than two nodes → refused', (t) => {
  const text = MINIMAL.replace(/ {2}- id: 1\n(?: {4}.*\n)+/, '');
  t.deepEqual(problemsOf(text), ['nodes: needs at least 2 entries, got 1 (3:1)']);
});

test('config: YAML syntax error → reported with line:col, nothing else checked', (t) => {
  const text = MINIMAL.replace('  user: pcpadmin', '  user pcpadmin').replace('/srv/pg/data', 'relative');
  t.deepEqual(problemsOf(text), ['YAML syntax: Implicit keys need to be on a single line (16:3)']);
});

test('config: duplicate key → reported, and the rest is still checked', (t) => {
  const text = `${MINIMAL}cluster_name: a\ncluster_name: b\nstate_dir: relative\n`;
  t.deepEqual(problemsOf(text), [
    'YAML syntax: Map keys must be unique (19:1)',
    'state_dir: must be an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals), got "relative" (20:12)',
  ]);
});

test('config: empty file → one problem', (t) => {
  t.deepEqual(problemsOf('# nothing yet\n'), ['the file holds no settings (see pgpool/maas-ha.example.yaml) (1:1)']);
});

test('config: missing file → ConfigError with one clear line, exit code 2', (t) => {
  const err = t.throws(() => loadConfig('/etc/maas-ha/maas-ha.yaml', fakeIo()), { instanceOf: ConfigError });
  t.is(err.exitCode, 2);
  t.deepEqual(err.problems, [
    'no such file (point --config or MAAS_HA_CONFIG at the configuration; see pgpool/maas-ha.example.yaml)',
  ]);
  t.regex(err.message, /^\/etc\/maas-ha\/maas-ha\.yaml: 1 problem:\n {2}no such file/);
});

test('config: configPath → --config beats MAAS_HA_CONFIG beats /etc/maas-ha/maas-ha.yaml', (t) => {
  const cases: [string | undefined, NodeJS.ProcessEnv, string][] = [
    ['/a.yaml', { MAAS_HA_CONFIG: '/b.yaml' }, '/a.yaml'],
    [undefined, { MAAS_HA_CONFIG: '/b.yaml' }, '/b.yaml'],
    ['', { MAAS_HA_CONFIG: '/b.yaml' }, '/b.yaml'],
    [undefined, {}, '/etc/maas-ha/maas-ha.yaml'],
    [undefined, { MAAS_HA_CONFIG: '' }, '/etc/maas-ha/maas-ha.yaml'],
  ];
  for (const [flag, env, want] of cases) t.is(configPath(flag, env), want, `flag ${flag} env ${JSON.stringify(env)}`);
});

test('config: nodeIo reads real files and their modes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const secret = join(dir, 'pcppass');
  writeFileSync(secret, 'localhost:9898:pcpadmin:x\n');
  chmodSync(secret, 0o600);
  writeFileSync(join(dir, 'known_hosts'), '');
  const file = join(dir, 'maas-ha.yaml');
  const text = MINIMAL.replaceAll('/etc/maas-ha/', `${dir}/`).replace('/var/lib/postgresql/.ssh/id_maas_ha', secret);
  writeFileSync(file, text);

  t.is(loadConfig(file, nodeIo).pcp.pcppass_file, secret);
  const st = nodeIo.stat(secret);
  t.is(st?.isFile, true);
  t.is((st?.mode ?? 0) & 0o777, 0o600);
  t.is(nodeIo.stat(dir)?.isFile, false);
  t.is(nodeIo.stat(join(dir, 'absent')), undefined);

  chmodSync(secret, 0o640);
  const err = t.throws(() => loadConfig(file), { instanceOf: ConfigError });
  t.is(err.problems.length, 2); // the same file is the ssh key and the pcppass here
  t.true(err.problems.every((p) => p.includes('(mode 0640); chmod 600 it')));
  t.throws(() => loadConfig(join(dir, 'absent.yaml')), { instanceOf: ConfigError, message: /no such file/ });
});

test('config: recovery section → every value as written; out-of-range values named with line:col', (t) => {
  const c = parseConfig(
    `${MINIMAL}recovery:\n  keep_old_data_dirs: 0\n  follow_basebackup: true\n  max_rate_kb_s: 65536\n  start_timeout_ms: 5000\n  stream_timeout_ms: 7000\n`,
    'x',
    fakeIo(),
  );
  t.deepEqual(c.recovery, { keep_old_data_dirs: 0, follow_basebackup: true, max_rate_kb_s: 65536, start_timeout_ms: 5000, stream_timeout_ms: 7000 });
  t.deepEqual(problemsOf(`${MINIMAL}recovery:\n  keep_old_data_dirs: -1\n  max_rate_kb_s: 8\n  keep_old: 2\n`), [
    'recovery.keep_old_data_dirs: must be an integer from 0 to 20, got -1 (19:23)',
    'recovery.max_rate_kb_s: must be an integer from 32 to 1048576, got 8 (20:18)',
    'recovery.keep_old: unknown key (21:3)',
  ]);
});

// ---- vip (the region controller VIP, lib/vip)

const VIP = `vip:
  address: 10.0.0.100
  interface: eth0
  region_controllers:
    - { name: region1, address: 10.0.0.11 }
    - { name: region2, address: 10.0.0.12 }
  services: { preset: maas-3-deb }
`;

test('config vip: absent → no vip key; a preset → its services, manager and check ports, every other default', (t) => {
  t.false('vip' in parseConfig(MINIMAL, 'm', fakeIo()));
  const v = parseConfig(MINIMAL + VIP, 'm', fakeIo()).vip!;
  t.like(v, { address: '10.0.0.100', prefix_length: 24, interface: 'eth0', privilege: 'sudo', peer_timeout_ms: 3000, escalation_window_ms: 60_000 });
  t.deepEqual(v.fence, { method: 'nftables', users: ['maas'], ports: [5432, 9999], file: '/etc/maas-ha/fence.nft' });
  t.deepEqual(v.services.manager, 'systemd');
  t.deepEqual(v.services.list.map((s) => [s.name, s.unit, s.needs_vip]), [
    ['maas-regiond', 'maas-regiond', false],
    ['maas-apiserver', 'maas-apiserver', false],
    ['maas-http', 'maas-http', false],
    ['maas-proxy', 'maas-proxy', false],
    ['bind9', 'bind9', true],
    ['maas-temporal', 'maas-temporal', false],
  ]);
  t.deepEqual(v.checks, { timeout_ms: 20_000, interval_ms: 250, api: { port: 5240, path: '/MAAS/api/2.0/version/' }, dns: { port: 53, zone: 'maas' }, proxy: { port: 8000 } });
  t.false('slave_dns' in v);
  t.is(v.binaries.ip, '/usr/sbin/ip');
});

test('config vip: MAAS 1.x and the snap bring their own ports and manager; a check can be overridden or switched off', (t) => {
  const one = parseConfig(`${MINIMAL}${VIP.replace('maas-3-deb', 'maas-1')}  checks: { proxy: false, api: { port: 8080 } }\n`, 'm', fakeIo()).vip!;
  t.deepEqual(one.checks, { timeout_ms: 20_000, interval_ms: 250, api: { port: 8080, path: '/MAAS/api/1.0/version/' }, dns: { port: 5353, zone: 'maas' } });
  const snap = parseConfig(MINIMAL + VIP.replace('maas-3-deb', 'maas-snap'), 'm', fakeIo()).vip!;
  t.deepEqual([snap.services.manager, snap.services.list.map((s) => s.name)], ['snap', ['maas']]);
});

test('config vip: explicit commands and secondary DNS → taken as written', (t) => {
  const text = `${MINIMAL}${VIP.replace('  services: { preset: maas-3-deb }\n', '')}  services:
    manager: commands
    list:
      - { name: api, needs_vip: false, restart: [/srv/ctl, restart, api], stop: [/srv/ctl, stop, api] }
  fence: { method: stop-services }
  slave_dns: { key_file: /etc/maas-ha/pcppass, zones: [maas, 10.in-addr.arpa] }
`;
  const v = parseConfig(text, 'm', fakeIo()).vip!;
  t.deepEqual(v.services.list, [{ name: 'api', unit: 'api', needs_vip: false, restart: ['/srv/ctl', 'restart', 'api'], stop: ['/srv/ctl', 'stop', 'api'] }]);
  t.deepEqual(v.slave_dns, {
    port: 953,
    key_file: '/etc/maas-ha/pcppass',
    key_name: 'rndc-key',
    zones: ['maas', '10.in-addr.arpa'],
    timeout_ms: 3000,
    // The secondary's rendering defaults: the MAAS DNS on the VIP (port 53 without a preset's own) is primary and forwarder.
    primary: { address: '10.0.0.100', port: 53 },
    forwarders: { addresses: ['10.0.0.100'], port: 53, mode: 'only' },
    allow_query: ['localhost', 'localnets'],
    conf_file: '/etc/bind/named.conf.maas-ha-secondary',
    directory: '/var/cache/bind/maas-ha-secondary',
  });
  t.is(v.fence.method, 'stop-services');
});

test('config slave DNS and maas: MAAS 1.x primary on 5353; forwarders elsewhere answer on 53; the maas section with defaults', (t) => {
  const one = parseConfig(`${MINIMAL}${VIP.replace('maas-3-deb', 'maas-1')}  slave_dns: { key_file: /etc/maas-ha/pcppass, zones: [maas] }
`, 'm', fakeIo());
  t.deepEqual([one.vip!.slave_dns!.primary, one.vip!.slave_dns!.forwarders], [{ address: '10.0.0.100', port: 5353 }, { addresses: ['10.0.0.100'], port: 5353, mode: 'only' }]);
  t.is(one.maas, undefined, 'no maas section: the defaults apply where it is used');
  const text = `${MINIMAL}${VIP}  slave_dns: { key_file: /etc/maas-ha/pcppass, zones: [maas], forwarders: [192.0.2.53], forward: first, allow_query: [10.0.0.0/8, localhost] }
maas:
  root: /srv/rack
  dhcp: { subnets: [10.0.0.0/24, "2001:db8::/64"] }
  rack: { manager: commands, restart: [/srv/ctl, restart, rackd] }
`;
  const c = parseConfig(text, 'm', fakeIo());
  t.deepEqual(c.vip!.slave_dns!.forwarders, { addresses: ['192.0.2.53'], port: 53, mode: 'first' });
  t.deepEqual(c.vip!.slave_dns!.allow_query, ['10.0.0.0/8', 'localhost']);
  t.deepEqual(c.maas, {
    flavour: 'maas-3-deb',
    root: '/srv/rack',
    database: { name: 'maasdb' },
    dhcp: { profile: 'admin', subnets: ['10.0.0.0/24', '2001:db8::/64'] },
    rack: { manager: 'commands', restart: ['/srv/ctl', 'restart', 'rackd'], reconnect_timeout_ms: 60_000 },
    binaries: { tar: '/usr/bin/tar', systemctl: '/usr/bin/systemctl', snap: '/usr/bin/snap' },
  });
  const bad = `${MINIMAL}${VIP}  slave_dns: { key_file: /etc/maas-ha/pcppass, zones: [maas], allow_query: [10.0.0.0/40] }
maas:
  dhcp: { subnets: [10.0.0.0/33] }
  rack: { manager: commands }
`;
  const e = t.throws(() => parseConfig(bad, 'm', fakeIo()));
  t.regex(e!.message, /vip\.slave_dns\.allow_query\[0\]: must be an IPv4 address or CIDR/);
  t.regex(e!.message, /maas\.dhcp\.subnets\[0\]: must be a valid IPv4 or IPv6 network, got "10\.0\.0\.0\/33"/);
  t.regex(e!.message, /maas\.rack\.restart: required with manager: commands/);
});

test('config vip: mistakes → each named with its line:col', (t) => {
  const text = `${MINIMAL}vip:
  address: 10.0.0.300
  interface: "eth0; reboot"
  region_controllers:
    - { name: region1, address: 10.0.0.11 }
    - { name: region2, address: 10.0.0.11 }
  services:
    manager: commands
    list:
      - { name: api, restart: [ctl, restart] }
      - { name: dns }
  slave_dns: { key_file: /etc/maas-ha/known_hosts, zones: [maas] }
`;
  t.deepEqual(problemsOf(text), [
    'vip.address: must be an IPv4 address such as 10.0.0.100, got "10.0.0.300" (19:12)',
    'vip.interface: must be an interface name of only [A-Za-z0-9_.-] characters, at most 15, got "eth0; reboot" (20:14)',
    'vip.region_controllers[1].address: duplicate address 10.0.0.11 (23:33)',
    'vip.services.list[0].restart: the command must start with an absolute path (sudo and pgpool search no PATH), got "ctl" (27:22)',
    'vip.services.list[1].restart: required with manager: commands (28:9)',
    'vip.slave_dns.key_file: /etc/maas-ha/known_hosts is readable by group or others (mode 0644); chmod 600 it (it is the rndc key that controls the DNS servers) (29:26)',
  ]);
  t.deepEqual(problemsOf(`${MINIMAL}${VIP.replace('  services: { preset: maas-3-deb }\n', '')}`), [
    'vip.services: needs a preset (maas-1, maas-2-deb, maas-3-deb, maas-snap) or a list of services (18:1)',
  ]);
  t.deepEqual(problemsOf(`${MINIMAL}${VIP.replace('maas-3-deb', 'maas-3-deb, manager: commands')}`), [
    'vip.services.manager: commands needs an explicit list (a preset names units, not commands) (24:44)',
  ]);
});

test('config vip: active-active → no fence (none by default); refused with MAAS 1.x or a fence given', (t) => {
  t.is(parseConfig(MINIMAL + VIP, 'm', fakeIo()).vip!.mode, 'active-passive');
  const aa = parseConfig(`${MINIMAL}${VIP}  mode: active-active\n`, 'm', fakeIo()).vip!;
  t.like(aa, { mode: 'active-active', fence: { method: 'none' } });
  t.is(parseConfig(`${MINIMAL}${VIP}  mode: active-active\n  fence: { method: none }\n`, 'm', fakeIo()).vip!.fence.method, 'none');
  t.deepEqual(problemsOf(`${MINIMAL}${VIP.replace('maas-3-deb', 'maas-1')}  mode: active-active\n`), [
    "vip.mode: active-active needs MAAS 2.x or later: MAAS 1.x's maas-dns and cluster controllers work with the active region only (use active-passive) (25:9)",
  ]);
  t.deepEqual(problemsOf(`${MINIMAL}${VIP}  mode: active-active\n  fence: { method: nftables }\n`), [
    "vip.fence.method: nftables fences a passive region's services off the database, and active-active has no passive region: leave it out (none) (26:20)",
  ]);
  t.deepEqual(problemsOf(`${MINIMAL}${VIP}  mode: both\n`), ['vip.mode: must be one of active-passive, active-active, got "both" (25:9)']);
});
