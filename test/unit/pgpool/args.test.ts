import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseFlags } from '../../../lib/flags.ts';
import { ConfigError, UsageError } from '../../../lib/errors.ts';
import {
  EVENT_FLAGS,
  PLACEHOLDERS,
  parseEventArgs,
  parseRecoveryArgs,
  parseRemoteStartArgs,
  type EventArgs,
  type EventKind,
  type NodeRef,
  type Placeholder,
} from '../../../lib/pgpool/args.ts';
import { HOOK_EXECUTABLES, parsePgpoolConfLine, placeholderValueHazard, renderHookLines } from '../../../lib/pgpool/conf.ts';
import { shQuote } from '../../../lib/shquote.ts';
import { expandHookCommand, recoveryCommandLine, remoteStartCommandLine, type Backend, type HookEvent } from '../../support/pgpool-expand.ts';

// ---- helpers ---------------------------------------------------------------------------------------------------

/** argv in the flag form of pgpool/hooks.conf; letters left out of `v` are left off the line. */
function flagArgv(kind: EventKind, v: Partial<Record<Placeholder, string>>): string[] {
  return PLACEHOLDERS.flatMap((p) => (v[p] === undefined ? [] : [`--${EVENT_FLAGS[kind][p]}`, v[p]!]));
}

/** The values pgpool passed when primary 0 died (a real run; docs/pgpool-hooks.md, "Placeholders"). */
const PRIMARY_0_DIES: Record<Placeholder, string> = {
  d: '0', h: 'localhost', p: '25432', D: '/srv/pg/data0',
  m: '1', H: 'localhost', r: '25433', R: '/srv/pg/data1',
  M: '0', P: '0', N: 'localhost', S: '25432',
};
const PRIMARY_0_DIES_PARSED = {
  kind: 'failover',
  failedNode: { id: 0, host: 'localhost', port: 25432, dataDir: '/srv/pg/data0' },
  newMain: { id: 1, host: 'localhost', port: 25433, dataDir: '/srv/pg/data1' },
  oldMain: 0,
  oldPrimary: { id: 0, host: 'localhost', port: 25432 },
};

const usage = (t: import('ava').ExecutionContext, fn: () => unknown, message: string | RegExp) => {
  const err = t.throws(fn, { instanceOf: UsageError });
  if (typeof message === 'string') t.is(err?.message, message);
  else t.regex(err?.message ?? '', message);
};

// ---- parseEventArgs: table ---------------------------------------------------------------------------------------

test('failover flags: primary 0 dies → every value at its meaning', (t) => {
  t.deepEqual(parseEventArgs(flagArgv('failover', PRIMARY_0_DIES), 'failover'), PRIMARY_0_DIES_PARSED);
});

test('failover flags: --flag=value and --flag value mean the same', (t) => {
  const eq = PLACEHOLDERS.map((p) => `--${EVENT_FLAGS.failover[p]}=${PRIMARY_0_DIES[p]}`);
  t.deepEqual(parseEventArgs(eq, 'failover'), PRIMARY_0_DIES_PARSED);
});

test('failover flags: leading and trailing spaces are trimmed', (t) => {
  const a = parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, d: ' 0', m: '  1', P: ' 0 ', p: ' 25432' }), 'failover');
  t.deepEqual(a, PRIMARY_0_DIES_PARSED);
});

test('failover flags: %m = -1 with "" details → no new main node', (t) => {
  const a = parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, m: '-1', H: '', r: '', R: '' }), 'failover');
  t.is(a.newMain, undefined);
  t.false('newMain' in a);
});

test('failover flags: the literal two characters "" mean absent too', (t) => {
  const a = parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, m: ' -1', H: '""', r: '""', R: '""', P: '-1', N: '""', S: '""' }), 'failover');
  t.deepEqual(a, { kind: 'failover', failedNode: PRIMARY_0_DIES_PARSED.failedNode, oldMain: 0 });
});

test('failover flags: an empty host or data directory of a live node is absent, the node is not', (t) => {
  const a = parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, h: '', D: '' }), 'failover');
  t.deepEqual(a.failedNode, { id: 0, port: 25432 });
});

test('failover flags: a 3.x line without %N %S parses, old primary without host and port', (t) => {
  const { N: _n, S: _s, ...v3 } = PRIMARY_0_DIES;
  t.deepEqual(parseEventArgs(flagArgv('failover', v3), 'failover').oldPrimary, { id: 0 });
});

test('failover flags: host may be an IPv6 address or a socket directory', (t) => {
  const a = parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, h: 'fe80::1%eth0', H: '/var/run/postgresql' }), 'failover');
  t.is(a.failedNode.host, 'fe80::1%eth0');
  t.is(a.newMain?.host, '/var/run/postgresql');
});

test('failover flags: a data directory with spaces is kept whole', (t) => {
  t.is(parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, D: '/srv/pg data/15 main' }), 'failover').failedNode.dataDir, '/srv/pg data/15 main');
});

const GARBAGE: [string, Partial<Record<Placeholder, string>>, string][] = [
  ['port x', { p: 'x' }, '--failed-port: expected a port number, got "x"'],
  ['port 0', { r: '0' }, '--new-main-port: expected a port number, got "0"'],
  ['port 65536', { S: '65536' }, '--old-primary-port: expected a port number, got "65536"'],
  ['port -2', { p: '-2' }, '--failed-port: expected a port number, got "-2"'],
  ['id 128', { m: '128' }, '--new-main: expected a node id (0 to 127), got "128"'],
  ['id 1.5', { M: '1.5' }, '--old-main: expected a node id (0 to 127), got "1.5"'],
  ['id -2', { P: '-2' }, '--old-primary: expected a node id (0 to 127), got "-2"'],
  ['failed node -1', { d: '-1' }, '--failed-node: expected a node id (0 to 127), got "-1"'],
  ['failed node empty', { d: '' }, '--failed-node: expected a node id (0 to 127), got ""'],
  ['relative data dir', { D: 'data0' }, '--failed-data-dir: expected an absolute path, got "data0"'],
  ['host with a space', { H: 'db 1' }, '--new-main-host: expected a host name, IP address or socket directory, got "db 1"'],
  ['host with $( )', { h: '$(reboot)' }, '--failed-host: expected a host name, IP address or socket directory, got "$(reboot)"'],
];
for (const [what, change, message] of GARBAGE) {
  test(`failover flags: ${what} → UsageError naming the flag`, (t) => {
    usage(t, () => parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, ...change }), 'failover'), message);
  });
}

test('failover flags: details of an absent node → UsageError naming the detail', (t) => {
  usage(
    t,
    () => parseEventArgs(flagArgv('failover', { ...PRIMARY_0_DIES, m: '-1', H: 'db1', r: '', R: '' }), 'failover'),
    '--new-main-host: got "db1" but --new-main is absent ("-1"); pgpool never passes one without the other',
  );
});

test('failover flags: a repeated flag → UsageError', (t) => {
  usage(t, () => parseEventArgs([...flagArgv('failover', PRIMARY_0_DIES), '--old-primary', '1'], 'failover'), '--old-primary: given twice');
});

test('failover flags: a missing required flag → UsageError naming it', (t) => {
  const { P: _p, ...noP } = PRIMARY_0_DIES;
  usage(t, () => parseEventArgs(flagArgv('failover', noP), 'failover'), '--old-primary: missing (required)');
});

test("failover flags: no arguments at all → every required flag is named, in the order of pgpool's placeholders", (t) => {
  usage(
    t,
    () => parseEventArgs([], 'failover'),
    '--failed-node, --failed-host, --failed-port, --failed-data-dir, --new-main, --new-main-host, --old-main, --old-primary, --new-main-port, --new-main-data-dir: missing (required)',
  );
});

test('failover flags: one flag typed by hand with a bad value → that value is named before the missing flags', (t) => {
  usage(t, () => parseEventArgs(['--failed-node', 'x'], 'failover'), '--failed-node: expected a node id (0 to 127), got "x"');
});

test('failover flags: an unknown flag → UsageError naming it and listing the right ones', (t) => {
  usage(t, () => parseEventArgs([...flagArgv('failover', PRIMARY_0_DIES), '--new-master', '1'], 'failover'), /^--new-master: unknown flag; the failover hook takes --failed-node --failed-host/);
});

test('follow flags: the failover line wired into follow_primary_command → unknown flag', (t) => {
  usage(t, () => parseEventArgs(flagArgv('failover', PRIMARY_0_DIES), 'follow_primary'), /^--failed-node: unknown flag; the follow_primary hook takes --node --node-host/);
});

test('follow flags: %m is the new primary, %d the node being processed', (t) => {
  const a = parseEventArgs(flagArgv('follow_primary', { ...PRIMARY_0_DIES, d: '2', h: 'db2', p: '25434', D: '/srv/pg/data2' }), 'follow_primary');
  t.deepEqual(a, {
    kind: 'follow_primary',
    node: { id: 2, host: 'db2', port: 25434, dataDir: '/srv/pg/data2' },
    newPrimary: { id: 1, host: 'localhost', port: 25433, dataDir: '/srv/pg/data1' },
    oldMain: 0,
    oldPrimary: { id: 0, host: 'localhost', port: 25432 },
  });
});

test('follow flags: no new primary (-1) → UsageError naming --new-primary', (t) => {
  usage(t, () => parseEventArgs(flagArgv('follow_primary', { ...PRIMARY_0_DIES, m: '-1', H: '', r: '', R: '' }), 'follow_primary'), '--new-primary: expected a node id (0 to 127), got "-1"');
});

test('failback flags: the attached node and the new main node', (t) => {
  const a = parseEventArgs(flagArgv('failback', { ...PRIMARY_0_DIES, m: '0', H: 'localhost', r: '25432', R: '/srv/pg/data0', M: '1', P: '1', S: '25433' }), 'failback');
  t.deepEqual(a, {
    kind: 'failback',
    attachedNode: { id: 0, host: 'localhost', port: 25432, dataDir: '/srv/pg/data0' },
    newMain: { id: 0, host: 'localhost', port: 25432, dataDir: '/srv/pg/data0' },
    oldMain: 1,
    oldPrimary: { id: 1, host: 'localhost', port: 25433 },
  });
});

// ---- parseEventArgs: the sample scripts' positional form ---------------------------------------------------------

const POSITIONAL_12 = PLACEHOLDERS.map((p) => PRIMARY_0_DIES[p]);

test('positional: 12 arguments (4.1+ sample order) parse like the flags', (t) => {
  t.deepEqual(parseEventArgs(POSITIONAL_12, 'failover'), PRIMARY_0_DIES_PARSED);
});

test('positional: 10 arguments (3.x, follow_primary.sh.sample) → no old primary host and port', (t) => {
  t.deepEqual(parseEventArgs(POSITIONAL_12.slice(0, 10), 'failover').oldPrimary, { id: 0 });
});

test('positional: follow_primary reads %m as the new primary', (t) => {
  t.is(parseEventArgs(POSITIONAL_12.slice(0, 10), 'follow_primary').newPrimary.id, 1);
});

test('positional: 11 arguments (an unquoted empty value vanished) → UsageError with the count', (t) => {
  usage(t, () => parseEventArgs(POSITIONAL_12.slice(0, 11), 'failover'), /^got 11 positional arguments, expected 10 .* or 12/);
});

test('positional: garbage → UsageError naming the position, the letter and the flag', (t) => {
  const argv = [...POSITIONAL_12];
  argv[2] = 'x';
  usage(t, () => parseEventArgs(argv, 'failover'), 'argument 3 (%p, --failed-port): expected a port number, got "x"');
});

// ---- parseRecoveryArgs / parseRemoteStartArgs -------------------------------------------------------------------

const REC = ['/var/lib/postgresql/15/main', 'db2', '/var/lib/postgresql/15/main', '5432', '2', '5433', 'db0'];

test('recovery: 4 arguments (3.4-3.7) → primary port, nothing after', (t) => {
  t.deepEqual(parseRecoveryArgs(REC.slice(0, 4)), { primaryDataDir: REC[0], targetHost: 'db2', targetDataDir: REC[2], primaryPort: 5432 });
});

test('recovery: 5 arguments (4.0) → target node id', (t) => {
  t.is(parseRecoveryArgs(REC.slice(0, 5)).targetNodeId, 2);
});

test('recovery: 6 arguments (4.1-4.2) → target port, no primary host', (t) => {
  const r = parseRecoveryArgs(REC.slice(0, 6));
  t.is(r.targetPort, 5433);
  t.false('primaryHost' in r);
});

test('recovery: 7 arguments (4.3) → primary host as in backend_hostname', (t) => {
  t.deepEqual(parseRecoveryArgs(REC), {
    primaryDataDir: REC[0], targetHost: 'db2', targetDataDir: REC[2], primaryPort: 5432, targetNodeId: 2, targetPort: 5433, primaryHost: 'db0',
  });
});

test('recovery: a target host pgpool replaced by localhost is fine', (t) => {
  t.is(parseRecoveryArgs(['/d', 'localhost', '/d', '5432']).targetHost, 'localhost');
});

test('recovery: 3 arguments → UsageError with the count and 4 to 7', (t) => {
  usage(t, () => parseRecoveryArgs(REC.slice(0, 3)), /^recovery_1st_stage: got 3 arguments, expected 4 to 7 \(primary data directory, /);
});

test('recovery: 8 arguments → UsageError', (t) => {
  usage(t, () => parseRecoveryArgs([...REC, 'x']), /^recovery_1st_stage: got 8 arguments, expected 4 to 7/);
});

const REC_GARBAGE: [string, number, string, string][] = [
  ['relative primary data dir', 0, 'main', '$1 (primary data directory): expected an absolute path, got "main"'],
  ['empty target host', 1, '', '$2 (target host): expected a host name, IP address or socket directory, got ""'],
  ['port x', 3, 'x', '$4 (primary port): expected a port number, got "x"'],
  ['node id -1', 4, '-1', '$5 (target node id): expected a node id (0 to 127), got "-1"'],
  ['target port 0', 5, '0', '$6 (target port): expected a port number, got "0"'],
];
for (const [what, i, value, message] of REC_GARBAGE) {
  test(`recovery: ${what} → UsageError naming $${i + 1}`, (t) => {
    const argv = [...REC];
    argv[i] = value;
    usage(t, () => parseRecoveryArgs(argv), message);
  });
}

test('remote start: host and target data directory', (t) => {
  t.deepEqual(parseRemoteStartArgs(['db2', '/var/lib/postgresql/15/main']), { targetHost: 'db2', targetDataDir: '/var/lib/postgresql/15/main' });
});

test('remote start: 3 arguments → UsageError explaining pgpool does not quote them', (t) => {
  usage(t, () => parseRemoteStartArgs(['db2', '/srv/pg', 'data']), /^pgpool_remote_start: got 3 arguments, expected 2 .*arrives split$/);
});

// ---- parseFlags ------------------------------------------------------------------------------------------------

const SPEC = { json: { type: 'bool' }, nodes: { type: 'int' }, host: { type: 'string', repeatable: true }, config: { type: 'string', required: true } } as const;

test('parseFlags: typed values, repeatable as an array, absent optional as undefined', (t) => {
  const r = parseFlags(['--json', '--nodes', ' 3', '--host=a', '--host', 'b', '--config', '/etc/x.yaml'], SPEC);
  t.deepEqual(r, { values: { json: true, nodes: 3, host: ['a', 'b'], config: '/etc/x.yaml' }, positionals: [] });
  t.deepEqual(parseFlags(['--config='], SPEC).values, { json: undefined, nodes: undefined, host: [], config: '' });
});

test('parseFlags: positionals up to the allowed count, everything after -- is positional', (t) => {
  t.deepEqual(parseFlags(['check', '--config', 'c', '--', '--json'], SPEC, { positionals: 2 }).positionals, ['check', '--json']);
  usage(t, () => parseFlags(['a', 'b', '--config', 'c'], SPEC, { positionals: 1 }), 'unexpected argument "b" (at most 1 allowed)');
});

test('parseFlags: a value may be empty or negative', (t) => {
  t.is(parseFlags(['--config', '', '--nodes', '-1'], SPEC).values.nodes, -1);
});

const FLAG_ERRORS: [string[], string][] = [
  [['--config', 'c', '--colour'], '--colour: unknown flag'],
  [['--config', 'c', '-j'], '-j: unknown flag (only long --flags are accepted)'],
  [['--config', 'c', '--json=yes'], '--json: takes no value, got "yes"'],
  [['--config', 'c', '--nodes', 'three'], '--nodes: expected an integer, got "three"'],
  [['--config'], '--config: expected a value'],
  [['--config', '--json'], '--config: expected a value'],
  [['--config', 'a', '--config', 'b'], '--config: given twice'],
  [['--json'], '--config: missing (required)'],
  [['--config', 'c', 'extra'], 'unexpected argument "extra"'],
];
for (const [argv, message] of FLAG_ERRORS) {
  test(`parseFlags: ${JSON.stringify(argv)} → ${message}`, (t) => {
    usage(t, () => parseFlags(argv, SPEC), message);
  });
}

// ---- pgpool.conf lines -----------------------------------------------------------------------------------------

const CONF_LINES: [string, { key: string; value: string } | undefined][] = [
  [`failover_command = '/usr/bin/x --a "%d"'`, { key: 'failover_command', value: '/usr/bin/x --a "%d"' }],
  [`  recovery_1st_stage_command='recovery_1st_stage'   # relative to PGDATA`, { key: 'recovery_1st_stage_command', value: 'recovery_1st_stage' }],
  [`port 5433`, { key: 'port', value: '5433' }],
  [`search_primary_node_timeout = -1`, { key: 'search_primary_node_timeout', value: '-1' }],
  [`weight = 0.5`, { key: 'weight', value: '0.5' }],
  [`health_check_timeout = 10s`, { key: 'health_check_timeout', value: '10s' }],
  [`failover_command 'no equals sign'`, { key: 'failover_command', value: 'no equals sign' }],
  [`use_watchdog = on`, { key: 'use_watchdog', value: 'on' }],
  [`backend_hostname0 = db-0.example.com`, { key: 'backend_hostname0', value: 'db-0.example.com' }],
  [`x = ''`, { key: 'x', value: '' }],
  [`x = 'a # not a comment'`, { key: 'x', value: 'a # not a comment' }],
  [`x = 'it\\'s'`, { key: 'x', value: "it\\'s" }],
  [`x = 'ends in \\'`, { key: 'x', value: 'ends in \\' }],
  [`x = 'a\\\\'b'`, { key: 'x', value: "a\\\\'b" }],
  ['# failover_command = ', undefined],
  ['   ', undefined],
];
for (const [line, expected] of CONF_LINES) {
  test(`parsePgpoolConfLine: ${line.trim() || '(blank)'} → ${expected ? JSON.stringify(expected.value) : 'nothing'}`, (t) => {
    t.deepEqual(parsePgpoolConfLine(line), expected);
  });
}

const CONF_ERRORS: [string, RegExp][] = [
  [`x = 'it''s'`, /'' is not an escape/],
  [`x = 'unterminated`, /unterminated quoted value/],
  [`x = /usr/bin/foo`, /expected a value for x/],
  [`x =`, /expected a value for x/],
  [`x = 5432 abc`, /unexpected text after the value/],
  [`x = .`, /expected a value for x/],
  [`= 1`, /expected a parameter name/],
];
for (const [line, message] of CONF_ERRORS) {
  test(`parsePgpoolConfLine: ${line} → ConfigError (pgpool's lexer rejects it)`, (t) => {
    const err = t.throws(() => parsePgpoolConfLine(line), { instanceOf: ConfigError });
    t.regex(err?.message ?? '', message);
  });
}

const TEMPLATE = readFileSync(new URL('../../../pgpool/hooks.conf', import.meta.url), 'utf8');

/** key → value of every setting in a rendered hooks.conf. */
function settings(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const e = parsePgpoolConfLine(line);
    if (e) m.set(e.key, e.value);
  }
  return m;
}

test('renderHookLines: @BINDIR@ replaced, a trailing slash dropped, the four settings present', (t) => {
  const s = settings(renderHookLines(TEMPLATE, '/opt/maas-ha/bin/'));
  t.deepEqual([...s.keys()].sort(), ['failback_command', 'failover_command', 'follow_primary_command', 'recovery_1st_stage_command']);
  t.true(s.get('failover_command')!.startsWith('/opt/maas-ha/bin/maas-ha-failover --failed-node "%d" '));
  t.is(s.get('recovery_1st_stage_command'), 'recovery_1st_stage');
  t.false(renderHookLines(TEMPLATE, '/usr/local/bin').includes('@BINDIR@'));
});

for (const bad of ['bin', '/opt/maas ha', "/opt/it's", '/opt/$HOME', '/opt/100%', '/opt/../etc', '']) {
  test(`renderHookLines: bin directory ${JSON.stringify(bad)} → UsageError`, (t) => {
    usage(t, () => renderHookLines(TEMPLATE, bad), /^bin directory .*: expected an absolute path/);
  });
}

const HOOK_SETTINGS: [string, EventKind][] = [
  ['failover_command', 'failover'],
  ['follow_primary_command', 'follow_primary'],
  ['failback_command', 'failback'],
];

test('hooks.conf: every hook line passes every placeholder, double-quoted, after its own flag', (t) => {
  const s = settings(renderHookLines(TEMPLATE, '/usr/local/bin'));
  for (const [key, kind] of HOOK_SETTINGS) {
    const line = s.get(key)!;
    const exe = `/usr/local/bin/${HOOK_EXECUTABLES[key as keyof typeof HOOK_EXECUTABLES]} `;
    t.true(line.startsWith(exe), key);
    const pairs = line.slice(exe.length).split(' --').map((w) => w.replace(/^--/, ''));
    t.deepEqual(pairs.sort(), PLACEHOLDERS.map((p) => `${EVENT_FLAGS[kind][p]} "%${p}"`).sort(), key);
  }
});

// ---- the round trip: hooks.conf → pgpool's expansion → /bin/sh -c → our parser ----------------------------------

const tmp = mkdtempSync(join(tmpdir(), 'maas-ha-args-'));
test.after.always(() => rmSync(tmp, { recursive: true, force: true }));

/** A stand-in for an executable: prints its argv as JSON. */
function writeRecorder(path: string): void {
  const print = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';
  writeFileSync(path, `#!/bin/sh\nexec ${shQuote(process.execPath)} -e ${shQuote(print)} -- "$@"\n`);
  chmodSync(path, 0o755);
}

const binDir = join(tmp, 'bin');
mkdirSync(binDir);
for (const name of Object.values(HOOK_EXECUTABLES)) writeRecorder(join(binDir, name));
const RENDERED = settings(renderHookLines(TEMPLATE, binDir));

/** Runs a command line as pgpool does (system() → /bin/sh -c), in a scratch cwd; returns the recorded argv. */
function runLikePgpool(line: string, cwd: string): string[] {
  return JSON.parse(execFileSync('/bin/sh', ['-c', line], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as string[];
}

/** What parseEventArgs must return for an event, derived from the backends (not from the command line). */
function expectedArgs(kind: EventKind, e: HookEvent): EventArgs {
  const node = (id: number): NodeRef | undefined => {
    const b = e.backends[id];
    if (id < 0 || !b) return undefined;
    const r: NodeRef = { id, port: b.port };
    if (b.hostname) r.host = b.hostname;
    if (b.dataDir) r.dataDir = b.dataDir;
    return r;
  };
  const old = node(e.oldPrimary);
  const rest = {
    ...(e.oldMain >= 0 ? { oldMain: e.oldMain } : {}),
    ...(old ? { oldPrimary: { id: old.id, ...(old.host ? { host: old.host } : {}), port: old.port } } : {}),
  };
  const main = node(e.newMain);
  switch (kind) {
    case 'failover':
      return { kind, failedNode: node(e.node)!, ...(main ? { newMain: main } : {}), ...rest };
    case 'follow_primary':
      return { kind, node: node(e.node)!, newPrimary: main!, ...rest };
    case 'failback':
      return { kind, attachedNode: node(e.node)!, ...(main ? { newMain: main } : {}), ...rest };
  }
}

const debian = (id: number): Backend => ({ hostname: `db${id}.maas.internal`, port: 5432, dataDir: '/var/lib/postgresql/15/main' });
const LAB: Backend[] = [0, 1, 2].map((id) => ({ hostname: 'localhost', port: 25432 + id, dataDir: `/srv/lab/data${id}` }));

const SCENARIOS: [string, EventKind, HookEvent][] = [
  ['primary 0 dies', 'failover', { backends: LAB, node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }],
  ['standby 2 dies, %m = 0 is a standby', 'failover', { backends: LAB, node: 2, newMain: 0, oldMain: 0, oldPrimary: 1 }],
  ['last node dies, %m = -1', 'failover', { backends: LAB, node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 }],
  ['no primary before, %P = -1', 'failover', { backends: [0, 1].map(debian), node: 1, newMain: 0, oldMain: 0, oldPrimary: -1 }],
  ['data directories with spaces', 'failover', {
    backends: [{ hostname: 'db0', port: 5432, dataDir: '/srv/pg data/node 0' }, { hostname: 'db1', port: 5433, dataDir: '/srv/pg  data/node  1' }],
    node: 0, newMain: 1, oldMain: 0, oldPrimary: 0,
  }],
  ['backend_data_directory unset, socket host', 'failover', {
    backends: [{ hostname: '/var/run/postgresql', port: 5432, dataDir: '' }, { hostname: '', port: 5433, dataDir: '' }],
    node: 0, newMain: 1, oldMain: 0, oldPrimary: 0,
  }],
  ['follow for the failed old primary 0', 'follow_primary', { backends: LAB, node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }],
  ['follow for standby 2', 'follow_primary', { backends: LAB, node: 2, newMain: 1, oldMain: 0, oldPrimary: 0 }],
  ['failback of recovered node 0', 'failback', { backends: LAB, node: 0, newMain: 0, oldMain: 1, oldPrimary: 1 }],
  ['failback with no primary', 'failback', { backends: [0, 1, 2].map(debian), node: 2, newMain: 2, oldMain: -1, oldPrimary: -1 }],
];

for (const [what, kind, event] of SCENARIOS) {
  test(`round trip ${kind}: ${what} → parsed values equal pgpool's`, (t) => {
    const setting = HOOK_SETTINGS.find(([, k]) => k === kind)![0];
    const line = expandHookCommand(RENDERED.get(setting)!, event);
    const argv = runLikePgpool(line, tmp);
    t.is(argv.length, 24, 'twelve flags, twelve values: nothing vanished or split');
    t.deepEqual(parseEventArgs(argv, kind), expectedArgs(kind, event));
  });
}

test('round trip follow_master_command (3.x line from the comment) → parsed without old primary host and port', (t) => {
  const rendered = renderHookLines(TEMPLATE, binDir).split('\n').find((l) => l.startsWith('#follow_master_command'))!;
  const e = parsePgpoolConfLine(rendered.slice(1))!;
  const event: HookEvent = { backends: LAB, node: 2, newMain: 1, oldMain: 0, oldPrimary: 0 };
  const parsed = parseEventArgs(runLikePgpool(expandHookCommand(e.value, event), tmp), 'follow_primary');
  t.deepEqual(parsed, { ...expectedArgs('follow_primary', event), oldPrimary: { id: 0 } });
});

test('round trip: the sample scripts\' unquoted positional wiring survives %m = -1 ("" stays one argument)', (t) => {
  const line = expandHookCommand(`${binDir}/maas-ha-failover %d %h %p %D %m %H %M %P %r %R %N %S`, { backends: LAB, node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 });
  const argv = runLikePgpool(line, tmp);
  t.is(argv.length, 12);
  t.deepEqual(parseEventArgs(argv, 'failover'), expectedArgs('failover', { backends: LAB, node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 }));
});

test('round trip: the unquoted positional wiring loses an empty data directory → UsageError, not shifted values', (t) => {
  const backends = [{ ...LAB[0]!, dataDir: '' }, LAB[1]!];
  const argv = runLikePgpool(expandHookCommand(`${binDir}/maas-ha-failover %d %h %p %D %m %H %M %P %r %R %N %S`, { backends, node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }), tmp);
  t.is(argv.length, 11);
  usage(t, () => parseEventArgs(argv, 'failover'), /^got 11 positional arguments/);
});

test('round trip: unknown %x, %% and a trailing % are expanded as pgpool does', (t) => {
  t.is(expandHookCommand('a %z b %% c %', { backends: LAB, node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 }), 'a  b % c ');
});

test("hostile data directory: `'; touch pwned` arrives intact, nothing runs", (t) => {
  const cwd = mkdtempSync(join(tmp, 'hostile-'));
  const hostile = "/srv/x'; touch pwned; echo '";
  const event: HookEvent = { backends: [{ ...LAB[0]!, dataDir: hostile }, { ...LAB[1]!, dataDir: `${hostile} & touch pwned2 | cat > out *` }], node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 };
  const parsed = parseEventArgs(runLikePgpool(expandHookCommand(RENDERED.get('failover_command')!, event), cwd), 'failover');
  t.is(parsed.failedNode.dataDir, hostile);
  t.is(parsed.newMain?.dataDir, `${hostile} & touch pwned2 | cat > out *`);
  t.false(existsSync(join(cwd, 'pwned')));
  t.false(existsSync(join(cwd, 'pwned2')));
  t.false(existsSync(join(cwd, 'out')));
});

test('hostile data directory: $(...) is NOT protected by double quotes, so the config validator must refuse it', (t) => {
  const cwd = mkdtempSync(join(tmp, 'subst-'));
  const hostile = '/srv/$(touch pwned)data';
  const event: HookEvent = { backends: [{ ...LAB[0]!, dataDir: hostile }, LAB[1]!], node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 };
  const parsed = parseEventArgs(runLikePgpool(expandHookCommand(RENDERED.get('failover_command')!, event), cwd), 'failover');
  // What pgpool + sh do with it: the substitution runs and the value changes. No quoting in pgpool.conf can stop it.
  t.true(existsSync(join(cwd, 'pwned')));
  t.is(parsed.failedNode.dataDir, '/srv/data');
  // Hence the validator's check, which refuses every character that is live inside double quotes.
  for (const v of [hostile, '/srv/`id`', '/srv/$HOME', '/srv/a"b', '/srv/a\\b', "/srv/it's"]) t.truthy(placeholderValueHazard(v), v);
  for (const v of ['/srv/pg data/15 main', '/var/lib/postgresql/15/main', 'db-0.maas.internal', 'fe80::1%eth0']) t.is(placeholderValueHazard(v), undefined, v);
});

// ---- online recovery: the line the pgpool_recovery extension builds -------------------------------------------

const primaryDataDir = join(tmp, 'primary data');
mkdirSync(primaryDataDir);
writeRecorder(join(primaryDataDir, 'recovery_1st_stage'));
// pgpool_remote_start's line is unquoted, so its DataDir must be free of spaces for it to run at all.
const plainDataDir = join(tmp, 'primary');
mkdirSync(plainDataDir);
writeRecorder(join(plainDataDir, 'pgpool_remote_start'));

const CALL = {
  primaryDataDir,
  script: 'recovery_1st_stage',
  remoteHost: 'db2.maas.internal',
  remoteDataDir: '/srv/pg data/15 main',
  primaryPort: '5432',
  remoteNode: 2,
  remotePort: '5434',
  primaryHost: 'db0.maas.internal',
};

const RECOVERY_EXPECTED = [
  { primaryDataDir, targetHost: 'db2.maas.internal', targetDataDir: '/srv/pg data/15 main', primaryPort: 5432 },
  { targetNodeId: 2 },
  { targetPort: 5434 },
  { primaryHost: 'db0.maas.internal' },
];

for (const n of [4, 5, 6, 7] as const) {
  test(`round trip recovery_1st_stage: ${n} arguments as the extension builds them → parsed back`, (t) => {
    const argv = runLikePgpool(recoveryCommandLine(CALL, n), tmp);
    t.is(argv.length, n);
    t.deepEqual(parseRecoveryArgs(argv), Object.assign({}, ...RECOVERY_EXPECTED.slice(0, n - 3)));
  });
}

test('round trip recovery_1st_stage: 3 arguments (pgpool before 3.4) → UsageError', (t) => {
  usage(t, () => parseRecoveryArgs(runLikePgpool(recoveryCommandLine(CALL, 3), tmp)), /^recovery_1st_stage: got 3 arguments, expected 4 to 7/);
});

test('round trip pgpool_remote_start: host and data directory parsed back', (t) => {
  t.deepEqual(parseRemoteStartArgs(runLikePgpool(remoteStartCommandLine(plainDataDir, 'db2', '/var/lib/postgresql/15/main'), tmp)), {
    targetHost: 'db2',
    targetDataDir: '/var/lib/postgresql/15/main',
  });
});

test('round trip pgpool_remote_start: pgpool does not quote, so a data directory with a space → UsageError', (t) => {
  const line = remoteStartCommandLine(plainDataDir, 'db2', '/srv/pg data');
  usage(t, () => parseRemoteStartArgs(runLikePgpool(line, tmp)), /^pgpool_remote_start: got 3 arguments/);
});
