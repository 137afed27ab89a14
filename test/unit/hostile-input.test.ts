// Hostile input, one table row per attack: argv as pgpool (or anyone who can run a hook) might pass it, the CLI run
// in-process, configuration files, files on disk, and pgpool.conf lines for preflight. Every row asserts a clear
// error that names the bad value (escaped, cut short when long), the exit code, and that nothing changed on disk:
// the world (a config, its secrets, a state_dir with a marker and a journal) is snapshotted before and after.
import test from 'ava';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runCli } from '../../lib/cli/main.ts';
import { nodeIo, parseConfig } from '../../lib/config/load.ts';
import { exitCodeOf, messageOf } from '../../lib/errors.ts';
import { EVENT_FLAGS, PLACEHOLDERS, parseEventArgs, parseRecoveryArgs, parseRemoteStartArgs, type Placeholder } from '../../lib/pgpool/args.ts';
import { checkPgpoolConf, readPgpoolConf } from '../../lib/preflight.ts';
import { testConfig } from '../support/config.ts';

const SELF = pathToFileURL(join(process.cwd(), 'hooks', 'maas-ha.ts')).href;

// ---- the world an attack must leave as it was

interface World {
  dir: string;
  config: string;
  state: string;
  /** The valid configuration text, to mutate. */
  text: string;
}

function makeWorld(): World {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-hostile-'));
  for (const f of ['id', 'pcppass']) writeFileSync(join(dir, f), 'x\n', { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), '', { mode: 0o644 });
  const state = join(dir, 'state');
  mkdirSync(join(state, 'fenced'), { recursive: true, mode: 0o700 });
  mkdirSync(join(state, 'journal'), { mode: 0o700 });
  writeFileSync(join(state, 'fenced', 'node-0.json'), '{"node":0,"status":"stopped","since":"s","reason":"r","cluster":"maas"}\n');
  writeFileSync(join(state, 'journal', 'failover-node0.jsonl'), '{"at":"2026-11-25T09:00:00.000Z","run_id":"r","failed":0,"old_primary":0,"step":"done","cluster":"maas"}\n');
  const text = `state_dir: ${state}
replication: { user: replicator }
nodes:
  - { id: 0, hostname: 10.0.0.11, data_directory: /srv/pg0, control: { method: pg_ctl, log_file: /srv/pg0.log } }
  - { id: 1, hostname: 10.0.0.12, data_directory: /srv/pg1, control: { method: pg_ctl, log_file: /srv/pg1.log } }
ssh: { identity_file: ${dir}/id, known_hosts_file: ${dir}/known_hosts }
pcp: { user: pcpadmin, pcppass_file: ${dir}/pcppass }
`;
  const config = join(dir, 'maas-ha.yaml');
  writeFileSync(config, text, { mode: 0o644 });
  return { dir, config, state, text };
}

/** Every path below `dir` with its type, owner, mode and content (or link text). */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isDirectory() ? 'dir' : readFileSync(p, 'utf8');
      out.push(`${p} ${st.uid} ${(st.mode & 0o7777).toString(8)} ${what}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out;
}

interface Outcome {
  code: number;
  message: string;
}

const caught = (fn: () => unknown): Outcome => {
  try {
    fn();
  } catch (err) {
    return { code: exitCodeOf(err), message: messageOf(err) };
  }
  return { code: 0, message: '(accepted)' };
};

// ---- attack kinds

const PRIMARY_0_DIES: Record<Placeholder, string> = {
  d: '0', h: 'localhost', p: '25432', D: '/srv/pg/data0',
  m: '1', H: 'localhost', r: '25433', R: '/srv/pg/data1',
  M: '0', P: '0', N: 'localhost', S: '25432',
};
/** The failover hook's argv (flag form) with some placeholders replaced. */
const failoverArgv = (v: Partial<Record<Placeholder, string>>) => PLACEHOLDERS.flatMap((p) => [`--${EVENT_FLAGS.failover[p]}`, { ...PRIMARY_0_DIES, ...v }[p]]);
const hookArgs = (v: Partial<Record<Placeholder, string>>) => () => caught(() => parseEventArgs(failoverArgv(v), 'failover'));

async function cli(argv: string[]): Promise<Outcome> {
  const err: string[] = [];
  const code = await runCli(argv, SELF, { out: () => {}, err: (t) => err.push(t) });
  return { code, message: err.join('\n') };
}

/** `maas-ha config check` on the world's configuration after `mutate` (and `prepare` on disk), both done before the snapshot. */
const configCheck = (mutate: (text: string, w: World) => string, prepare?: (w: World) => void): Attack => ({
  prepare(w) {
    writeFileSync(w.config, mutate(w.text, w));
    prepare?.(w);
  },
  run: (w) => cli(['config', 'check', '--config', w.config]),
});

/** preflight's verdict on a pgpool.conf: exit 1 when any finding fails (lib/cli/main.ts). */
function preflightConf(text: string) {
  return () => {
    const { settings, findings } = readPgpoolConf(text, '/etc/pgpool2/pgpool.conf');
    const all = [...findings, ...checkPgpoolConf(settings, testConfig(), '')];
    const failed = all.filter((f) => f.level === 'fail');
    return { code: failed.length > 0 ? 1 : 0, message: failed.map((f) => f.what).join('\n') };
  };
}

const MB = 'a'.repeat(1 << 20);
const isRoot = process.getuid?.() === 0;

/** The attack's setup (done before the snapshot) and the run that must change nothing. */
type Attack = ((w: World) => Outcome | Promise<Outcome>) | { prepare: (w: World) => void; run: (w: World) => Outcome | Promise<Outcome> };
/** [title stating the behaviour, the attack, exit code, what the message must contain]. */
const rows: [string, Attack, number, string | RegExp][] = [
  // -- hook argv
  ['argv: a newline inside a host → refused, the newline shown as \\n', hookArgs({ h: 'db0\nreboot' }), 2, '--failed-host: expected a host name, IP address or socket directory, got "db0\\nreboot"'],
  ['argv: a NUL after a host → refused', hookArgs({ h: 'db0\u0000' }), 2, '--failed-host: expected a host name, IP address or socket directory, got "db0\\u0000"'],
  ['argv: a NUL after a node id → refused', hookArgs({ d: '0\u0000' }), 2, '--failed-node: expected a node id (0 to 127), got "0\\u0000"'],
  ['argv: a NUL inside a port → refused', hookArgs({ p: '5432\u00001' }), 2, '--failed-port: expected a port number, got "5432\\u00001"'],
  ['argv: a NUL inside a data directory → refused', hookArgs({ D: '/srv/pg\u0000/data' }), 2, '--failed-data-dir: expected an absolute path, got "/srv/pg\\u0000/data"'],
  ['argv: a newline inside a data directory → refused', hookArgs({ R: '/srv/pg\n/data' }), 2, '--new-main-data-dir: expected an absolute path, got "/srv/pg\\n/data"'],
  ['argv: a 1 MB host → refused, quoted cut short with its length', hookArgs({ H: MB }), 2, /^--new-main-host: expected a host name, IP address or socket directory, got "a{60}…" \(1048576 characters\)$/],
  ['argv: a 1 MB data directory → refused, quoted cut short', hookArgs({ D: `/${MB}` }), 2, /^--failed-data-dir: expected an absolute path, got "\/a{59}…" \(1048577 characters\)$/],
  ['argv: a node id of a thousand leading zeros → refused', hookArgs({ m: `${'0'.repeat(1000)}1` }), 2, /^--new-main: expected a node id \(0 to 127\), got "0{60}…" \(1001 characters\)$/],
  ['argv: a port of 20 digits that Number() would read as 5432 → refused', hookArgs({ r: '00000000000000005432' }), 2, '--new-main-port: expected a port number, got "00000000000000005432"'],
  ['argv: a host with a Cyrillic look-alike letter → refused, the letter shown as \\u0430', hookArgs({ N: 'db0.exаmple' }), 2, '--old-primary-host: expected a host name, IP address or socket directory, got "db0.ex\\u0430mple"'],
  ['argv: a fullwidth digit as node id → refused', hookArgs({ P: '１' }), 2, '--old-primary: expected a node id (0 to 127), got "\\uff11"'],
  ['argv: Arabic-Indic digits as port → refused', hookArgs({ S: '٥٤٣٢' }), 2, '--old-primary-port: expected a port number, got "\\u0665\\u0664\\u0663\\u0662"'],
  ['argv: a right-to-left override in a data directory → refused', hookArgs({ D: '/srv/pg/\u202eatad' }), 2, '--failed-data-dir: expected an absolute path, got "/srv/pg/\\u202eatad"'],
  ['argv: a zero-width space in a data directory → refused', hookArgs({ D: '/srv/pg\u200b/data' }), 2, '--failed-data-dir: expected an absolute path, got "/srv/pg\\u200b/data"'],
  ['argv: a byte-order mark before a node id (not whitespace) → refused', hookArgs({ d: '\ufeff1' }), 2, '--failed-node: expected a node id (0 to 127), got "\\ufeff1"'],
  ['argv: a line separator after a node id (not trimmed) → refused', hookArgs({ M: '0\u2028' }), 2, '--old-main: expected a node id (0 to 127), got "0\\u2028"'],
  ['placeholder: backticks in a host → refused', hookArgs({ h: '`id`' }), 2, '--failed-host: expected a host name, IP address or socket directory, got "`id`"'],
  ['placeholder: a ; command in a host → refused', hookArgs({ h: 'db0;reboot' }), 2, '--failed-host: expected a host name, IP address or socket directory, got "db0;reboot"'],
  ['placeholder: a pipe in a host → refused', hookArgs({ H: 'db0|nc' }), 2, '--new-main-host: expected a host name, IP address or socket directory, got "db0|nc"'],
  ['placeholder: an ssh option as host (-oProxyCommand) → refused', hookArgs({ h: '-oProxyCommand=sh' }), 2, '--failed-host: expected a host name, IP address or socket directory, got "-oProxyCommand=sh"'],
  ['placeholder: a ; command after a port → refused', hookArgs({ p: '5432;reboot' }), 2, '--failed-port: expected a port number, got "5432;reboot"'],
  ['placeholder: shell arithmetic as node id → refused', hookArgs({ d: '$((1))' }), 2, '--failed-node: expected a node id (0 to 127), got "$((1))"'],
  ['recovery_1st_stage: an ssh option as target host → refused', () => caught(() => parseRecoveryArgs(['/srv/pg0', '-oProxyCommand=touch x', '/srv/pg1', '5432'])), 2, '$2 (target host): expected a host name, IP address or socket directory, got "-oProxyCommand=touch x"'],
  ['recovery_1st_stage: a ; command in the node id → refused', () => caught(() => parseRecoveryArgs(['/srv/pg0', 'db1', '/srv/pg1', '5432', '1;reboot'])), 2, '$5 (target node id): expected a node id (0 to 127), got "1;reboot"'],
  ['recovery_1st_stage: a NUL in the primary data directory → refused', () => caught(() => parseRecoveryArgs(['/srv/pg0\u0000x', 'db1', '/srv/pg1', '5432'])), 2, '$1 (primary data directory): expected an absolute path, got "/srv/pg0\\u0000x"'],
  ['pgpool_remote_start: a newline inside the host → refused', () => caught(() => parseRemoteStartArgs(['db2\nid', '/srv/pg'])), 2, '$1 (target host): expected a host name, IP address or socket directory, got "db2\\nid"'],
  ['argv: an unknown flag with a newline in it → refused as unknown', () => caught(() => parseEventArgs(['--failed-node\n', '0'], 'failover')), 2, /^--failed-node\n: unknown flag; the failover hook takes --failed-node /],

  // -- the CLI, in-process
  ['cli: switchover to a node id with a newline → usage error before any configuration is read', () => cli(['switchover', '1\n', '--config', '/nonexistent.yaml']), 2, 'switchover: expected a node id, got "1\n"'],
  ['cli: switchover to a fullwidth node id → usage error', () => cli(['switchover', '１', '--config', '/nonexistent.yaml']), 2, 'switchover: expected a node id, got "１"'],
  ['cli: plan failover --failed with a ; command → usage error', () => cli(['plan', 'failover', '--failed', '0;reboot', '--config', '/nonexistent.yaml']), 2, '--failed: expected a node id, got "0;reboot"'],
  ['cli: version with a NUL argument → usage error', () => cli(['version', 'x\u0000']), 2, 'version: takes no arguments'],

  // -- configuration files (`maas-ha config check`: exit 2, no checked copy written)
  ['config: a host name with a Cyrillic look-alike → refused, the letter escaped', configCheck((x) => x.replace('10.0.0.12', 'db1.exаmple')), 2, 'nodes[1].hostname: must be a host name or address of only [A-Za-z0-9.:_-] characters (pgpool pastes it unquoted into commands), got "db1.ex\\u0430mple" (5:24)'],
  ['config: a 1 MB string → the file is refused before parsing', configCheck((x) => `${x}cluster_name: ${MB}\n`), 2, /the file is 10\d{5} characters long; a maas-ha configuration is a few kilobytes \(at most 262144 are read\) \(1:1\)/],
  ['config: a 100 kB path → refused, quoted cut short', configCheck((x) => x.replace('/srv/pg1.log', `/${'a'.repeat(100_000)}`)), 2, /nodes\[1\]\.control\.log_file: must be at most 4096 characters long, got "\/a{59}…" \(100001 characters\) \(5:\d+\)/],
  ['config: a 300-character host name → refused', configCheck((x) => x.replace('10.0.0.12', 'a'.repeat(300))), 2, /nodes\[1\]\.hostname: must be a host name of at most 253 characters \(DNS allows no more\), got "a{60}…" \(300 characters\)/],
  ['config: a 64-character cluster name → refused', configCheck((x) => `${x}cluster_name: ${'c'.repeat(64)}\n`), 2, 'cluster_name: must be a name of at most 63 characters (PostgreSQL cuts longer names short)'],
  ['config: flow collections nested 1000 deep → refused before parsing', configCheck((x) => `${x}fencing: { command: ${'['.repeat(1000)}${']'.repeat(1000)} }\n`), 2, /YAML nested deeper than 32 levels; maas-ha\.yaml needs at most 6 \(8:\d+\)/],
  ['config: block mappings nested 300 deep → refused before parsing', configCheck((x) => `${x}budgets:\n${Array.from({ length: 300 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')}\n`), 2, /YAML nested deeper than 32 levels \(indented by more than 256 columns\)/],
  ['config: a YAML merge key smuggling a setting into ssh → refused as an unknown key', configCheck((x) => x.replace('ssh: {', 'x_base: &b { binary: /tmp/evil-ssh }\nssh: { <<: *b,')), 2, /x_base: unknown key \(6:1\)\n {2}ssh\.<<: unknown key \(7:8\)/],
  ['config: an alias repeating a node → refused as a duplicate id', configCheck((x) => x.replace('  - { id: 0,', '  - &n { id: 0,').replace(/ {2}- \{ id: 1,.*\n/, '  - *n\n')), 2, 'nodes[1].id: duplicate id 0 (also nodes[0])'],
  ['config: an alias of a list where a fencing command word belongs → refused', configCheck((x) => `${x}x_lol: &a [a, a, a, a]\nfencing: { command: [/usr/bin/true, *a] }\n`), 2, 'fencing.command[1]: must be a non-empty string without control characters, got a list'],
  ['config: a duplicate identity_file key (a second key to swap in) → refused', configCheck((x) => x.replace('ssh: {', 'ssh: { identity_file: /etc/shadow,')), 2, 'YAML syntax: Map keys must be unique (6:'],
  ['config: wrong types (port as text, candidate as yes, id as 1.5) → each refused', configCheck((x) => x.replace('{ id: 0,', '{ id: 0, port: "5432", candidate: yes,').replace('{ id: 1,', '{ id: 1.5,')), 2, /nodes\[0\]\.port: must be an integer from 1 to 65535, got "5432" .*\n.*nodes\[0\]\.candidate: must be true or false, got "yes" .*\n.*nodes\[1\]\.id: must be an integer from 0 to 127, got 1\.5/],
  ['config: a !!js/function tag → one YAML problem on one line', configCheck((x) => `${x}log_level: !!js/function "x"\n`), 2, /YAML syntax: Unresolved tag: tag:yaml\.org,2002:js\/function \(8:12\)\n/],
  ['config: a NUL in the cluster name → refused, shown escaped', configCheck((x) => `${x}cluster_name: "maas\\0"\n`), 2, 'cluster_name: must be a name of only [A-Za-z0-9_.-] characters, got "maas\\u0000" (8:15)'],
  ['config: a key with a right-to-left override → unknown key, shown escaped', configCheck((x) => `${x}"log_\u202elevel": info\n`), 2, '"log_\\u202elevel": unknown key (did you mean log_level?) (8:1)'],
  ['config: a data directory with ".." → refused', configCheck((x) => x.replace('/srv/pg1,', '/srv/pg1/../../etc,')), 2, 'nodes[1].data_directory: must be a path without "." or ".." components (maas-ha compares paths by their text), got "/srv/pg1/../../etc"'],
  ['config: a fencing command found by PATH → refused', configCheck((x) => `${x}fencing: { command: [fence-node, "{host}"] }\n`), 2, 'fencing.command: the command must start with an absolute path, got "fence-node" (8:12)'],
  ['config: a newline inside a fencing command word → refused', configCheck((x) => `${x}fencing: { command: [/usr/bin/true, "a\\nb"] }\n`), 2, 'fencing.command[1]: must be a non-empty string without control characters, got "a\\nb" (8:37)'],

  // -- files on disk
  ['files: a symlinked identity_file pointing elsewhere → refused, naming the target', configCheck((x) => x, (w) => {
    rmSync(join(w.dir, 'id'));
    writeFileSync(join(w.dir, 'other-key'), 'x\n', { mode: 0o600 });
    symlinkSync(join(w.dir, 'other-key'), join(w.dir, 'id'));
  }), 2, /ssh\.identity_file: \/.*\/id is a symbolic link \(to \/.*\/other-key\); point the setting at the file itself/],
  ['files: a state_dir replaced by a link to /tmp → refused, naming /tmp', configCheck((x) => x, (w) => {
    rmSync(w.state, { recursive: true });
    symlinkSync(tmpdir(), w.state);
  }), 2, /state_dir: \/.*\/state \(a link to \/tmp\) is writable by group and others \(mode 1777\)/],
  ['files: the configuration at mode 0666 → refused with chmod go-w', configCheck((x) => x, (w) => chmodSync(w.config, 0o666)), 2, /is writable by group and others \(mode 0666\).*chmod go-w /],
  ...(isRoot
    ? ([
        ['files: a pcppass owned by another user, read by a non-root hook user → refused, naming both uids', {
          prepare: (w: World) => chownSync(join(w.dir, 'pcppass'), 65534, 65534),
          run: (w: World) => caught(() => parseConfig(w.text, w.config, { ...nodeIo, uid: 1000 })),
        }, 2, /pcp\.pcppass_file: \/.*\/pcppass belongs to uid 65534, not to uid 1000 that maas-ha runs as, so it cannot be read/],
        ['files: a restart command in a directory owned by nobody → refused (what root runs)', configCheck((x, w) => `${x}vip:\n  address: 10.0.0.100\n  interface: eth0\n  region_controllers: [{ name: a, address: 10.0.0.11 }, { name: b, address: 10.0.0.12 }]\n  services: { manager: commands, list: [{ name: api, restart: [${w.dir}/theirs/restart.sh] }] }\n`, (w) => {
          mkdirSync(join(w.dir, 'theirs'));
          chownSync(join(w.dir, 'theirs'), 65534, 65534);
        }), 2, /vip\.services\.list\[0\]\.restart\[0\]: root runs \/.*\/theirs\/restart\.sh, but /],
      ] as [string, Attack, number, string | RegExp][])
    : []),

  // -- pgpool.conf for preflight
  ['pgpool.conf: an unterminated quote → the line is reported', preflightConf(`failover_command = '/usr/local/bin/maas-ha-failover --failed-node "%d`), 1, /line 1 is not valid pgpool\.conf: [^]*unterminated quoted value/],
  ["pgpool.conf: '' used as an escape → reported, with how pgpool reads it", preflightConf(`backend_data_directory0 = '/srv/it''s'`), 1, /line 1 is not valid pgpool\.conf: [^]*backend_data_directory0: '' is not an escape in pgpool\.conf/],
  ['pgpool.conf: a command after the value → reported', preflightConf(`backend_hostname0 = 'db0' ; touch /tmp/pwned`), 1, /line 1 is not valid pgpool\.conf: [^]*backend_hostname0: unexpected text after the value/],
  ['pgpool.conf: $( ) in a backend host → reported as a hazard for the hooks', preflightConf(`backend_hostname0 = '$(reboot)'`), 1, /backend_hostname0 /],
  ['pgpool.conf: a backtick in a backend data directory → reported as a hazard', preflightConf(`backend_hostname0 = 'db0'\nbackend_data_directory0 = '/srv/\`id\`'`), 1, /backend_data_directory0 /],
];

for (const [title, attack, code, want] of rows) {
  test(title, async (t) => {
    const w = makeWorld();
    t.teardown(() => rmSync(w.dir, { recursive: true, force: true }));
    if (typeof attack !== 'function') attack.prepare(w);
    const before = snapshot(w.dir);
    const got = await (typeof attack === 'function' ? attack(w) : attack.run(w));
    t.is(got.code, code, got.message);
    if (typeof want === 'string') t.true(got.message.includes(want), `expected to contain:\n${want}\ngot:\n${got.message}`);
    else t.regex(got.message, want);
    t.true(got.message.length < 2000, 'the message is not flooded by the value');
    // No checked copy, no lock, no journal line, no marker: the world is as the attack found it.
    t.deepEqual(snapshot(w.dir), before, 'nothing on disk changed');
  });
}

test('hostile-input: the table has at least 40 distinct attacks', (t) => {
  t.true(rows.length >= 40, `${rows.length} rows`);
  t.is(new Set(rows.map((r) => r[0])).size, rows.length, 'titles are distinct');
});
