// `--help` is safe on every command line: each `maas-ha` command and every hook prints its own usage and exits 0
// without reading the configuration, starting, stopping or removing anything (it once built a lab and purged a
// stopped one). The configuration named here does not exist, so any command that loaded it would exit 2 instead.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { COMMANDS } from '../../lib/cli/help.ts';
import { runCli } from '../../lib/cli/main.ts';
import { DIST_BIN, ROOT } from '../support/lab.ts';

const MISSING = '/nonexistent/maas-ha-help-test.yaml';
const SELF = pathToFileURL(join(ROOT, 'hooks', 'maas-ha.ts')).href;
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
// This file's worker only: commands that take no --config (ip, arping) read this one, and the lab's default
// directory is one that must stay empty.
const LAB_DEFAULT = mkdtempSync(join(tmpdir(), 'maas-ha-help-lab-'));
process.env.MAAS_HA_CONFIG = MISSING;
process.env.MAAS_HA_LAB_DIR = LAB_DEFAULT;
test.after.always(() => rmSync(LAB_DEFAULT, { recursive: true, force: true }));

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, SELF, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A temporary directory holding one marker file, and a check that it still holds exactly that. */
function markedDir(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-help-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'marker'), 'left alone\n');
  return { dir, unchanged: () => t.deepEqual(readdirSync(dir), ['marker'], `${dir} changed`) };
}

// [the command path whose usage must be printed, the command line]. Every line also names a configuration
// file that does not exist; some carry a bad flag or value, which help must not trip over.
const LINES: [string, string[]][] = [
  ['status', ['status', '--help']],
  ['status', ['status', '--json', '--jsn', '-h']],
  ['preflight', ['preflight', '--pgpool-conf', '/nonexistent/pgpool.conf', '--help']],
  ['switchover', ['switchover', '2', '--help']],
  ['switchover', ['switchover', '2', '--timeout', 'soon', '--force', '-h']],
  ['plan failover', ['plan', 'failover', '--help']],
  ['config check', ['config', 'check', '--help']],
  ['config get', ['config', 'get', 'state_dir', '-h']],
  ['config render-pgpool', ['config', 'render-pgpool', '--bindir', '/nonexistent', '--help']],
  // Without help this would wait for stdin.
  ['log', ['log', '--help']],
  ['history', ['history', '--help']],
  ['history', ['history', 'failover-20250301T101502', '--since', 'yesterday', '--json', '-h']],
  ['maintenance', ['maintenance', '--help']],
  ['maintenance', ['maintenance', 'on', '1', '--reason', 'disks', '-h']],
  ['maintenance', ['maintenance', 'off', '--help']],
  ['metrics', ['metrics', '--help']],
  // Without help this would write the file (and reject the name).
  ['metrics', ['metrics', '--write', '/nonexistent/maas-ha.txt', '-h']],
  ['lab up', ['lab', 'up', '--nodes', '99', '--help']],
  ['lab up', ['lab', '--net', '7', 'up', '-h']],
  ['lab status', ['lab', 'status', '--help']],
  ['lab down', ['lab', 'down', '--purge', '--help']],
  ['lab drill', ['lab', 'drill', '--json', '--help']],
  ['lab soak', ['lab', 'soak', '--cycles', '3', '--json', '-h']],
  ['recover', ['recover', '2', '--help']],
  ['recover', ['recover', 'pg3', '--initial', '--method', 'copy', '-h']],
  ['recover install-scripts', ['recover', 'install-scripts', '/nonexistent/data', '--help']],
  ['vip check', ['vip', 'check', '--target', '192.0.2.1', '--help']],
  ['vip plan', ['vip', 'plan', '-h']],
  ['vip fence on', ['vip', 'fence', 'on', '--help']],
  ['vip fence off', ['vip', 'fence', 'off', '--help']],
  ['vip fence status', ['vip', 'fence', 'status', '-h']],
  ['vip fence-file', ['vip', 'fence-file', '--write', '--help']],
  ['vip sudoers', ['vip', 'sudoers', '--user', 'postgres', '--help']],
  // Without help these would write bind9's configuration, the DHCP template, an archive, or a rack's identity.
  ['render dns', ['render', 'dns', '--write', '--host', 'nowhere', '--help']],
  ['render dhcp', ['render', 'dhcp', '--write', '-h']],
  ['rack backup', ['rack', 'backup', '--out', '/nonexistent/rack.tar', '--help']],
  ['rack restore', ['rack', 'restore', '/nonexistent/rack.tar', '--root', '/', '-h']],
  ['rack check', ['rack', 'check', '--flavour', 'maas-9', '--help']],
  ['ip up', ['ip', 'up', '192.0.2.1', '--help']],
  ['ip down', ['ip', 'down', '192.0.2.1', '-h']],
  ['arping', ['arping', '192.0.2.1', '--help']],
  ['lab vip up', ['lab', 'vip', 'up', '--help']],
  ['lab vip status', ['lab', 'vip', 'status', '--help']],
  ['lab vip down', ['lab', 'vip', 'down', '--purge', '-h']],
  ['lab vip service', ['lab', 'vip', 'service', 'restart', 'bind9', '--host', 'rc1', '--help']],
  // Without help these serve (or write and probe) until stopped.
  ['lab vip campaign', ['lab', 'vip', 'campaign', '--max-ms', '1000', '--help']],
  ['lab vip serve-api', ['lab', 'vip', 'serve-api', '--host', 'rc1', '--help']],
  ['lab vip rackd', ['lab', 'vip', 'rackd', 'run', '--help']],
  ['lab vip serve-sink', ['lab', 'vip', 'serve-sink', '--out', '/nonexistent/sink', '-h']],
  ['help', ['help', '--help']],
  ['version', ['version', '--help']],
];

for (const [path, argv] of LINES) {
  const line = [...argv, '--config', MISSING];
  test(`help: maas-ha ${line.join(' ')} → its own usage, exit 0, no configuration read`, async (t) => {
    const r = await cli(line);
    t.is(r.code, 0, r.err);
    t.is(r.err, '');
    t.regex(r.out, /^usage/);
    const synopsis = COMMANDS.find((c) => c.paths.includes(path))?.synopsis ?? `no entry for ${path}`;
    t.true(r.out.includes(`maas-ha ${synopsis}`), r.out);
    t.false(r.out.includes('usage: maas-ha <command>'), 'the command\'s own usage, not the whole list');
    t.deepEqual(readdirSync(LAB_DEFAULT), [], 'the default lab directory stays empty');
  });
}

test('help: the table above covers every command path the CLI documents', (t) => {
  const tested = new Set(LINES.map(([path]) => path));
  t.deepEqual(
    COMMANDS.flatMap((c) => c.paths).filter((p) => !tested.has(p)),
    [],
  );
});

test('help: the configuration the lines name really is missing → without --help, switchover 2 exits 2 before any pcp call', async (t) => {
  const r = await cli(['switchover', '2', '--config', MISSING]);
  t.is(r.code, 2);
  t.regex(r.err, new RegExp(`^maas-ha: ${MISSING}`));
});

test('help: maas-ha lab up --help --dir D → D untouched, no lab built', async (t) => {
  const d = markedDir(t);
  const r = await cli(['lab', 'up', '--help', '--dir', d.dir]);
  t.is(r.code, 0);
  t.regex(r.out, /^usage: maas-ha lab up /);
  d.unchanged();
});

test('help: maas-ha lab down --purge --help --dir D → D and its files still there', async (t) => {
  const d = markedDir(t);
  const r = await cli(['lab', 'down', '--purge', '--dir', d.dir, '--help']);
  t.is(r.code, 0);
  t.regex(r.out, /^usage: maas-ha lab down /);
  d.unchanged();
});

test('help: maas-ha lab vip up --help / lab vip down --purge -h with --dir D → D untouched', async (t) => {
  const d = markedDir(t);
  for (const argv of [
    ['lab', 'vip', 'up', '--dir', d.dir, '--help'],
    ['lab', 'vip', 'down', '--purge', '--dir', d.dir, '-h'],
  ]) {
    const r = await cli(argv);
    t.is(r.code, 0, argv.join(' '));
    t.regex(r.out, /^usage: maas-ha lab vip (up|down) /);
  }
  d.unchanged();
});

test('help: a group asked for help lists its commands: maas-ha lab vip --help', async (t) => {
  const r = await cli(['lab', 'vip', '--help']);
  t.is(r.code, 0);
  t.deepEqual(
    r.out.split('\n').flatMap((l) => /^ {2}maas-ha (lab vip \S+)/.exec(l)?.[1] ?? []),
    ['lab vip up', 'lab vip status', 'lab vip down'],
  );
});

test('help: maas-ha --help, -h and help → the whole list, exit 0; maas-ha alone → the list, exit 2', async (t) => {
  for (const argv of [['--help'], ['-h'], ['help'], ['--bogus', '--help']]) {
    const r = await cli(argv);
    t.is(r.code, 0, argv.join(' '));
    t.regex(r.out, /^usage: maas-ha <command> \[options\]\n/);
    t.regex(r.out, /\n {2}lab vip up /);
  }
  const bare = await cli([]);
  t.is(bare.code, 2);
  t.regex(bare.out, /^usage: maas-ha <command>/);
});

test('help: maas-ha help lab up = maas-ha lab up --help', async (t) => {
  t.deepEqual(await cli(['help', 'lab', 'up']), await cli(['lab', 'up', '--help']));
});

test('help: --help after `--` is an argument, not a request for help', async (t) => {
  const r = await cli(['log', '--', '--help']);
  t.is(r.code, 1);
  t.regex(r.err, /^maas-ha log: ENOENT/);
});

test('version: maas-ha --version and maas-ha version → "maas-ha <package.json version>", exit 0', async (t) => {
  for (const argv of [['--version'], ['version']]) t.deepEqual(await cli(argv), { code: 0, out: `maas-ha ${VERSION}`, err: '' });
  t.is((await cli(['version', 'now'])).code, 2);
});

const spawnBuilt = (exe: string, argv: string[]) =>
  spawnSync(join(DIST_BIN, exe), argv, { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH, MAAS_HA_CONFIG: MISSING } });

test('version: the built maas-ha --version → the version build.mjs put into the bundle', (t) => {
  const r = spawnBuilt('maas-ha', ['--version']);
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `maas-ha ${VERSION}\n`);
});

test('help: the built maas-ha lab up --help → usage on stdout, exit 0', (t) => {
  const r = spawnBuilt('maas-ha', ['lab', 'up', '--help']);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^usage: maas-ha lab up /);
  t.is(r.stderr, '');
});

// Each hook executable, by the pgpool setting (or online-recovery wrapper) its --help must name.
const HOOKS: Record<string, string> = {
  'maas-ha-failover': 'failover_command',
  'maas-ha-follow-primary': 'follow_primary_command',
  'maas-ha-failback': 'failback_command',
  'maas-ha-recovery-1st-stage': 'recovery_1st_stage_command',
  'maas-ha-remote-start': 'pgpool_remote_start',
  'maas-ha-escalation': 'wd_escalation_command',
  'maas-ha-de-escalation': 'wd_de_escalation_command',
};

test('help: every hook in hooks/ that runs through runHook is in the table of hook --help tests', (t) => {
  // runHook (lib/hook.ts) answers --help for them; maas-ha-guard has a command line of its own (lib/guard/cli.ts).
  const exes = readdirSync(join(ROOT, 'hooks'))
    .filter((f) => f.startsWith('maas-ha-') && f.endsWith('.ts'))
    .filter((f) => /\brunHook\(/.test(readFileSync(join(ROOT, 'hooks', f), 'utf8')))
    .map((f) => f.replace(/\.ts$/, ''));
  t.deepEqual(exes.sort(), Object.keys(HOOKS).sort());
});

for (const [exe, setting] of Object.entries(HOOKS)) {
  for (const argv of [['--help'], ['--failed-node', 'garbage', '-h', 'extra']]) {
    test(`help: ${exe} ${argv.join(' ')} → usage naming ${setting}, exit 0, no configuration read, nothing logged`, (t) => {
      const r = spawnBuilt(exe, argv);
      t.is(r.status, 0, r.stderr);
      t.true(r.stdout.startsWith(`usage: ${exe}`), r.stdout);
      t.true(r.stdout.includes(setting), r.stdout);
      t.is(r.stderr, '', 'no log line: nothing ran');
    });
  }
}

test('help: an event hook\'s --help shows the flags of its line in pgpool/hooks.conf, in the same order', (t) => {
  const conf = readFileSync(join(ROOT, 'pgpool', 'hooks.conf'), 'utf8');
  const pairs = (text: string) => text.match(/--[a-z-]+ "%[A-Za-z]"/g) ?? [];
  for (const [exe, setting] of [['maas-ha-failover', 'failover_command'], ['maas-ha-follow-primary', 'follow_primary_command'], ['maas-ha-failback', 'failback_command']] as const) {
    const line = new RegExp(`^${setting} = '(.*)'$`, 'm').exec(conf)?.[1] ?? '';
    const usage = spawnBuilt(exe, ['--help']).stdout.split('   or:')[0] ?? '';
    t.deepEqual(pairs(usage), pairs(line), exe);
    t.is(pairs(line).length, 12, setting);
  }
});

test('help: the configuration the hooks see really is missing → without --help, maas-ha-escalation exits 2', (t) => {
  const r = spawnBuilt('maas-ha-escalation', []);
  t.is(r.status, 2);
  t.regex(r.stderr, /"step":"config"/);
});
