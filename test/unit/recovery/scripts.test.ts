// The shell that rebuilds a node, run for real under dash (Debian's /bin/sh) on scratch directories, with small
// stand-ins for pg_basebackup and pg_rewind. What matters here is what happens to the old data directory: kept
// intact when the copy fails, renamed (never deleted) when the copy succeeds, and the node's own configuration
// files surviving the copy.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ownConfOf, parseTargetDisk } from '../../../lib/recovery/plan.ts';
import { ownConfArg } from '../../../lib/recovery/includes.ts';
import { testNode } from '../../support/config.ts';
import {
  BASEBACKUP_SCRIPT,
  FACTS_SCRIPT,
  LOCK_SCRIPT,
  PROGRESS_SCRIPT,
  PRUNE_SCRIPT,
  RESUME_SCRIPT,
  REWIND_SCRIPT,
  STANDBY_CONF_SCRIPT,
  UNLOCK_SCRIPT,
} from '../../../lib/recovery/scripts.ts';
import { parseProgressProbe } from '../../../lib/recovery/progress.ts';

const LINES = ["primary_conninfo = 'host=10.0.0.11 port=5432 user=replicator application_name=pg2'", "recovery_target_timeline = 'latest'"];

function dash(script: string, args: string[]) {
  const r = spawnSync('dash', ['-c', script, 'maas-ha', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function scratch(t: { teardown(f: () => void): void }) {
  const root = mkdtempSync(join(tmpdir(), 'maas-ha-scripts-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const data = join(root, 'main');
  mkdirSync(join(data, 'base'), { recursive: true });
  writeFileSync(join(data, 'PG_VERSION'), '15\n');
  writeFileSync(join(data, 'base', 'relation'), 'the old data\n');
  writeFileSync(join(data, 'postgresql.conf'), 'port = 5433 # this node only\n');
  writeFileSync(join(data, 'postgresql.auto.conf'), "work_mem = '8MB'\nprimary_conninfo = 'host=stale'\n");
  return { root, data };
}

/** A stand-in for pg_basebackup: `$1` is -D's value; it writes the primary's files, then exits with `$2`. */
function fakeBasebackup(root: string, exit: number): string[] {
  const f = join(root, 'fake_pg_basebackup');
  writeFileSync(
    f,
    `#!/bin/sh
mkdir -p "$1/base" && echo 15 > "$1/PG_VERSION" && echo 'the new data' > "$1/base/relation"
echo "port = 5432 # the primary's" > "$1/postgresql.conf"
printf "synchronous_standby_names = 'ANY 1 (pg1)'\\nshared_buffers = '1GB'\\n" > "$1/postgresql.auto.conf"
echo 'exec the primary wrapper' > "$1/recovery_1st_stage"
echo "  10240/20480 kB (50%), 0/1 tablespace" >&2
if [ "$2" -ne 0 ]; then
  echo 'pg_basebackup: error: could not read COPY data: server closed the connection unexpectedly' >&2
  echo '	This probably means the server terminated abnormally' >&2
  exit "$2"
fi
`,
  );
  chmodSync(f, 0o755);
  return [f];
}

const basebackupArgs = (data: string, root: string, exit: number) => [
  data, `${data}.maas-ha-old-20260102T030405Z`, '30', `${data}.maas-ha-basebackup.log`, String(LINES.length), ...LINES,
  ...fakeBasebackup(root, exit), `${data}.maas-ha-new`, String(exit),
];

test('base backup script: copy beside, node config kept, standby settings written, old directory renamed intact', (t) => {
  const { root, data } = scratch(t);
  const r = dash(BASEBACKUP_SCRIPT, basebackupArgs(data, root, 0));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /stage=copied[\s\S]*old=.*maas-ha-old-20260102T030405Z[\s\S]*stage=swapped/);
  const old = `${data}.maas-ha-old-20260102T030405Z`;
  t.is(readFileSync(join(old, 'base', 'relation'), 'utf8'), 'the old data\n', 'the old data directory is renamed, untouched');
  t.is(readFileSync(join(data, 'base', 'relation'), 'utf8'), 'the new data\n');
  t.is(readFileSync(join(data, 'postgresql.conf'), 'utf8'), 'port = 5433 # this node only\n', "the node's own postgresql.conf wins over the primary's");
  t.is(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), `work_mem = '8MB'\n${LINES.join('\n')}\n`, 'stale standby settings replaced, the rest kept');
  t.is(readFileSync(join(data, 'recovery_1st_stage'), 'utf8'), 'exec the primary wrapper\n', "the primary's wrapper is kept when the node had none");
  t.true(existsSync(join(data, 'standby.signal')));
  t.false(existsSync(`${data}.maas-ha-new`));
  t.regex(readFileSync(`${data}.maas-ha-basebackup.log`, 'utf8'), /10240\/20480 kB/);
});

test("base backup script: a wiped data directory gets the primary's settings minus synchronous_standby_names; nothing is kept aside", (t) => {
  const { root, data } = scratch(t);
  rmSync(data, { recursive: true });
  mkdirSync(data);
  const r = dash(BASEBACKUP_SCRIPT, basebackupArgs(data, root, 0));
  t.is(r.code, 0, r.stderr);
  t.notRegex(r.stdout, /old=/);
  t.deepEqual(readdirSync(root).filter((f) => f.includes('maas-ha-old')), []);
  t.is(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), `shared_buffers = '1GB'\n${LINES.join('\n')}\n`);
});

test('base backup script: a failed copy leaves the data directory exactly as it was and removes the unfinished copy', (t) => {
  const { root, data } = scratch(t);
  const before = readdirSync(data).sort();
  const r = dash(BASEBACKUP_SCRIPT, basebackupArgs(data, root, 1));
  t.is(r.code, 10);
  t.regex(r.stdout, /stage=copy-failed rc=1/);
  t.regex(r.stderr, /pg_basebackup: error: could not read COPY data/);
  t.notRegex(r.stderr, /kB \(/, 'progress lines are not an error message');
  t.deepEqual(readdirSync(data).sort(), before);
  t.is(readFileSync(join(data, 'base', 'relation'), 'utf8'), 'the old data\n');
  t.is(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), "work_mem = '8MB'\nprimary_conninfo = 'host=stale'\n");
  t.false(existsSync(`${data}.maas-ha-new`));
  t.deepEqual(readdirSync(root).filter((f) => f.includes('maas-ha-old')), []);
});

test('rewind script: config files restored after pg_rewind, slots of the former primary dropped, standby settings written', (t) => {
  const { root, data } = scratch(t);
  mkdirSync(join(data, 'pg_replslot', 'maas_ha_node_1'), { recursive: true });
  const rewind = join(root, 'fake_pg_rewind');
  writeFileSync(rewind, `#!/bin/sh\necho "port = 5432 # the primary's" > "$1/postgresql.conf"\necho 'pg_rewind: Done!' >&2\n`);
  chmodSync(rewind, 0o755);
  const r = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, rewind, data]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /stage=saved\nstage=rewound\nstage=done/);
  t.is(readFileSync(join(data, 'postgresql.conf'), 'utf8'), 'port = 5433 # this node only\n');
  t.deepEqual(readdirSync(join(data, 'pg_replslot')), []);
  t.true(existsSync(join(data, 'standby.signal')));
  t.is(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), `work_mem = '8MB'\n${LINES.join('\n')}\n`);
  t.false(existsSync(`${data}.maas-ha-conf`), 'the saved copy is removed once restored');
});

test('rewind script: pg_rewind failing → exit 10 with its words, the config files saved beside', (t) => {
  const { root, data } = scratch(t);
  const rewind = join(root, 'fake_pg_rewind');
  writeFileSync(rewind, `#!/bin/sh\necho 'pg_rewind: error: could not find previous WAL record at 0/3000060' >&2\nexit 1\n`);
  chmodSync(rewind, 0o755);
  const r = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, rewind]);
  t.is(r.code, 10);
  t.regex(r.stderr, /could not find previous WAL record/);
  t.is(readFileSync(join(`${data}.maas-ha-conf`, 'postgresql.conf'), 'utf8'), 'port = 5433 # this node only\n');
  t.false(existsSync(join(data, 'standby.signal')));
});

test('facts script: reports the disk, the copies beside it and pg_controldata; a stale postmaster.pid is not a running server', (t) => {
  const { root, data } = scratch(t);
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'pg_controldata'), '#!/bin/sh\necho "Database system identifier:           7312345678901234567"\necho "Database cluster state:               shut down"\n');
  chmodSync(join(bin, 'pg_controldata'), 0o755);
  mkdirSync(`${data}.maas-ha-old-20250101T000000Z`);
  mkdirSync(`${data}.maas-ha-new`);
  writeFileSync(join(`${data}.maas-ha-new`, 'PG_VERSION'), '15\n');
  writeFileSync(join(data, 'postmaster.pid'), '999999999\n');
  const r = dash(FACTS_SCRIPT, [data, bin, '1']);
  t.is(r.code, 0, r.stderr);
  const d = parseTargetDisk(r.stdout);
  t.like(d, { datadirExists: true, empty: false, pgVersion: '15', running: false, newExists: true, newComplete: false, parentExists: true, parentWritable: true, datadirWritable: true });
  t.deepEqual(d.oldDirs, [`${data}.maas-ha-old-20250101T000000Z`]);
  t.is(d.control?.state, 'shut down');
  t.true((d.freeBytes ?? 0) > 0 && (d.sizeBytes ?? 0) > 0);
  t.deepEqual(readdirSync(data).filter((f) => f.includes('probe')), [], 'the write probe is removed');
  const missing = parseTargetDisk(dash(FACTS_SCRIPT, [join(root, 'absent'), bin, '0']).stdout);
  t.like(missing, { datadirExists: false, pgVersion: undefined, parentExists: true });
});

test('progress script: the copy under way, from pg_basebackup --progress lines', (t) => {
  const { data } = scratch(t);
  t.is(parseProgressProbe(dash(PROGRESS_SCRIPT, [data]).stdout, 100), undefined, 'no copy, no progress');
  mkdirSync(`${data}.maas-ha-new`);
  writeFileSync(`${data}.maas-ha-basebackup.log`, 'pg_basebackup: starting\n    1024/8192 kB (12%), 0/1 tablespace\n    4096/8192 kB (50%), 0/1 tablespace (x)\n');
  t.deepEqual(parseProgressProbe(dash(PROGRESS_SCRIPT, [data]).stdout, 100), { done: 4096 * 1024, total: 8192 * 1024 });
});

test('prune and resume scripts: only replaced data directories are deleted; a swap is finished only into a free name', (t) => {
  const { data } = scratch(t);
  const old = `${data}.maas-ha-old-20250101T000000Z`;
  mkdirSync(old);
  const refused = dash(PRUNE_SCRIPT, [data]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /refusing to delete .*not a replaced data directory/);
  t.true(existsSync(join(data, 'PG_VERSION')));
  t.is(dash(PRUNE_SCRIPT, [old]).code, 0);
  t.false(existsSync(old));
  mkdirSync(`${data}.maas-ha-new`);
  t.is(dash(RESUME_SCRIPT, [data]).code, 5, 'the data directory exists: no swap');
  rmSync(data, { recursive: true });
  t.is(dash(RESUME_SCRIPT, [data]).code, 0);
  t.true(existsSync(data) && !existsSync(`${data}.maas-ha-new`));
});

test('base backup script: a second rebuild within the same second never nests the old directory into the first', (t) => {
  const { root, data } = scratch(t);
  const first = `${data}.maas-ha-old-20260102T030405Z`;
  mkdirSync(first);
  writeFileSync(join(first, 'marker'), 'first\n');
  const r = dash(BASEBACKUP_SCRIPT, basebackupArgs(data, root, 0));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /old=.*maas-ha-old-20260102T030405Z-1\n/);
  t.deepEqual(readdirSync(first), ['marker']);
  t.is(readFileSync(join(`${first}-1`, 'base', 'relation'), 'utf8'), 'the old data\n');
});

// ---- crashed standbys, included configuration, the swap's last check, one rebuild per node

/** A stand-in for pg_rewind that behaves like PostgreSQL 15's on a crashed standby: its single-user crash recovery
 *  refuses a data directory with standby.signal. Otherwise it copies the primary's files over the node's. */
function fakeRewind(root: string, exit = 0): string {
  const f = join(root, 'fake_pg_rewind');
  writeFileSync(
    f,
    `#!/bin/sh
if [ -f "$1/standby.signal" ]; then
  echo 'FATAL:  standby mode is not supported by single-user servers' >&2
  echo 'pg_rewind: error: postgres single-user mode in target cluster failed' >&2
  exit 1
fi
echo "port = 5432 # the primary's" > "$1/postgresql.conf"
echo "port = 5432 # the primary's node.conf" > "$1/node.conf"
mkdir -p "$1/conf.d" && echo "primary_only = on" > "$1/conf.d/primary.conf" && echo "shared = primary" > "$1/conf.d/shared.conf"
echo "from the primary" > "$1/absent.conf"
exit ${exit}
`,
  );
  chmodSync(f, 0o755);
  return f;
}

/** The node's own included configuration: node.conf with its port, and a conf.d directory. */
function nodeIncludes(data: string): string[] {
  writeFileSync(join(data, 'postgresql.conf'), "port = 5433 # this node only\ninclude_if_exists = 'node.conf'\ninclude_dir = 'conf.d'\ninclude_if_exists 'absent.conf'\n");
  writeFileSync(join(data, 'node.conf'), 'port = 5433 # node.conf of this node\n');
  mkdirSync(join(data, 'conf.d'));
  writeFileSync(join(data, 'conf.d', 'shared.conf'), 'shared = node\n');
  return ['--keep', '3', 'f:node.conf', 'd:conf.d', 'f:absent.conf'];
}

test('rewind script: a crashed standby (standby.signal) is rewound with standby.signal set aside, then a standby again', (t) => {
  const { root, data } = scratch(t);
  writeFileSync(join(data, 'standby.signal'), '');
  const r = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, fakeRewind(root), data]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /stage=saved\nstage=rewound\nstage=done/);
  t.true(existsSync(join(data, 'standby.signal')));
  t.false(existsSync(`${data}.maas-ha-conf`));
});

test('rewind script: pg_rewind failing on a standby puts standby.signal back (the node stays a standby)', (t) => {
  const { root, data } = scratch(t);
  writeFileSync(join(data, 'standby.signal'), '');
  const r = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, fakeRewind(root, 1), data]);
  t.is(r.code, 10, r.stderr);
  t.true(existsSync(join(data, 'standby.signal')));
  t.false(existsSync(join(`${data}.maas-ha-conf`, 'standby.signal')));
});

test("rewind script: the files the node's configuration includes survive pg_rewind; the primary's extra ones go", (t) => {
  const { root, data } = scratch(t);
  const keep = nodeIncludes(data);
  const r = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, ...keep, fakeRewind(root), data]);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(data, 'node.conf'), 'utf8'), 'port = 5433 # node.conf of this node\n');
  t.deepEqual(readdirSync(join(data, 'conf.d')), ['shared.conf'], "the primary's conf.d/primary.conf would be included by the node's include_dir");
  t.is(readFileSync(join(data, 'conf.d', 'shared.conf'), 'utf8'), 'shared = node\n');
  t.false(existsSync(join(data, 'absent.conf')), "the node had no absent.conf: the primary's would have been included");
  t.false(existsSync(`${data}.maas-ha-conf`));
});

test('rewind script: a retry keeps the configuration an earlier attempt saved (pg_rewind may have overwritten the data directory\'s)', (t) => {
  const { root, data } = scratch(t);
  const failed = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, fakeRewind(root, 1), data]);
  t.is(failed.code, 10);
  t.is(readFileSync(join(data, 'postgresql.conf'), 'utf8'), "port = 5432 # the primary's\n", 'the failed pg_rewind got as far as the configuration');
  const retry = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, fakeRewind(root), data]);
  t.is(retry.code, 0, retry.stderr);
  t.regex(retry.stdout, /saved_earlier=1/);
  t.is(readFileSync(join(data, 'postgresql.conf'), 'utf8'), 'port = 5433 # this node only\n');
  t.false(existsSync(`${data}.maas-ha-conf`));
});

test("base backup script: the node's included files are kept in the copy; after a failed pg_rewind they come from the saved copy, which is then removed", (t) => {
  const { root, data } = scratch(t);
  const keep = nodeIncludes(data);
  const failed = dash(REWIND_SCRIPT, [data, '30', String(LINES.length), ...LINES, ...keep, fakeRewind(root, 1), data]);
  t.is(failed.code, 10);
  t.is(readFileSync(join(data, 'node.conf'), 'utf8'), "port = 5432 # the primary's node.conf\n");
  const args = basebackupArgs(data, root, 0);
  const r = dash(BASEBACKUP_SCRIPT, [...args.slice(0, 5 + LINES.length), ...keep, ...args.slice(5 + LINES.length)]);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(data, 'node.conf'), 'utf8'), 'port = 5433 # node.conf of this node\n');
  t.is(readFileSync(join(data, 'postgresql.conf'), 'utf8').split('\n')[0], 'port = 5433 # this node only');
  t.deepEqual(readdirSync(join(data, 'conf.d')), ['shared.conf']);
  t.false(existsSync(`${data}.maas-ha-conf`), 'the saved configuration is used up');
});

test('base backup script: a postmaster running on the data directory at swap time → no swap, the complete copy left beside', (t) => {
  const { root, data } = scratch(t);
  writeFileSync(join(data, 'postmaster.pid'), `${process.pid}\n${data}\n`);
  const before = readdirSync(data).sort();
  const r = dash(BASEBACKUP_SCRIPT, basebackupArgs(data, root, 0));
  t.is(r.code, 6, r.stdout);
  t.regex(r.stderr, new RegExp(`a postmaster \\(pid ${process.pid}\\) runs on .*: not swapping`));
  t.notRegex(r.stdout, /old=|stage=swapped/);
  t.deepEqual(readdirSync(data).sort(), before);
  t.true(existsSync(join(`${data}.maas-ha-new`, 'standby.signal')), 'the copy is complete: a retry only swaps');
});

test('lock script: one rebuild per node; a second run is refused with the owner; a stale lock is taken over; only the owner unlocks', (t) => {
  const { data } = scratch(t);
  const lock = `${data}.maas-ha-rebuild.lock`;
  const a = dash(LOCK_SCRIPT, [data, 'run-a', '3600']);
  t.is(a.code, 0, a.stderr);
  t.regex(a.stdout, /^locked=run-a$/m);
  t.true(lstatSync(lock).isSymbolicLink());
  t.regex(readlinkSync(lock), /^run=run-a since=\d+ until=\d+$/);
  t.is(dash(LOCK_SCRIPT, [data, 'run-a', '3600']).code, 0, 'the same run again (a retry inside it)');
  const b = dash(LOCK_SCRIPT, [data, 'run-b', '3600']);
  t.is(b.code, 3);
  t.regex(b.stdout, /^held=run=run-a since=\d+ until=\d+$/m);
  t.regex(dash(UNLOCK_SCRIPT, [data, 'run-b']).stdout, /^held=run=run-a /m, 'run b cannot release run a\'s lock');
  t.true(lstatSync(lock).isSymbolicLink());
  t.regex(dash(UNLOCK_SCRIPT, [data, 'run-a']).stdout, /^unlocked=1$/m);
  t.false(existsSync(lock) || readdirSync(join(data, '..')).some((f) => f.endsWith('.lock')));

  symlinkSync('run=run-dead since=1000 until=2000', lock);
  const c = dash(LOCK_SCRIPT, [data, 'run-c', '60']);
  t.is(c.code, 0, c.stderr);
  t.regex(c.stdout, /took_over=run=run-dead since=1000 until=2000/);
  t.regex(readlinkSync(lock), /^run=run-c /);
  t.deepEqual(readdirSync(join(data, '..')).filter((f) => f.includes('stale')), []);
});

test('standby settings script: a stopped standby gets the current primary in place; a running one is left alone', (t) => {
  const { data } = scratch(t);
  writeFileSync(join(data, 'standby.signal'), '');
  const r = dash(STANDBY_CONF_SCRIPT, [data, '10', String(LINES.length), ...LINES]);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(data, 'postgresql.auto.conf'), 'utf8'), `work_mem = '8MB'\n${LINES.join('\n')}\n`);
  writeFileSync(join(data, 'postmaster.pid'), `${process.pid}\n`);
  t.is(dash(STANDBY_CONF_SCRIPT, [data, '10', '0']).code, 6);
  rmSync(join(data, 'postmaster.pid'));
  rmSync(join(data, 'standby.signal'));
  t.is(dash(STANDBY_CONF_SCRIPT, [data, '10', '0']).code, 5, 'no standby.signal: not a standby');
});

test('prune script --tidy: once the node streams, no pg_basebackup log and no saved configuration stay beside it', (t) => {
  const { data } = scratch(t);
  writeFileSync(`${data}.maas-ha-basebackup.log`, 'old log\n');
  mkdirSync(`${data}.maas-ha-conf`);
  const r = dash(PRUNE_SCRIPT, ['--bound', '10', '--tidy', data]);
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(`${data}.maas-ha-basebackup.log`) || existsSync(`${data}.maas-ha-conf`));
  t.true(existsSync(join(data, 'PG_VERSION')));
});

test("facts script: reports the include lines of the node's configuration, from which the rebuild knows what to keep", (t) => {
  const { root, data } = scratch(t);
  nodeIncludes(data);
  writeFileSync(join(data, 'conf.d', 'shared.conf'), "include 'nested.conf'\n");
  const etc = join(root, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'postgresql.conf'), `include_if_exists = '${data}/node.conf'\n`);
  const fromData = parseTargetDisk(dash(FACTS_SCRIPT, [data, join(root, 'bin'), '0', '10']).stdout);
  const node = testNode(2, { data_directory: data });
  t.deepEqual(ownConfOf(node, fromData).map(ownConfArg), ['f:node.conf', 'd:conf.d', 'f:absent.conf', 'f:conf.d/nested.conf']);
  const fromEtc = parseTargetDisk(dash(FACTS_SCRIPT, [data, join(root, 'bin'), '0', '10', join(etc, 'postgresql.conf')]).stdout);
  t.deepEqual(ownConfOf(testNode(2, { data_directory: data, config_directory: etc }), fromEtc).map(ownConfArg), ['f:node.conf']);
});
