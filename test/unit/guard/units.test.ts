import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNode } from '../../../lib/guard/cli.ts';
import { createGuardFiles } from '../../../lib/guard/files.ts';
import { startCheckDropIn, watchService, type GuardUnitOptions } from '../../../lib/guard/units.ts';
import { testConfig, testNode } from '../../support/config.ts';

const opts = (over: Partial<GuardUnitOptions> = {}): GuardUnitOptions => ({
  node: testNode(1, { control: { method: 'pg_ctlcluster', version: '15', name: 'main' } }),
  guardBin: '/usr/local/lib/maas-ha/dist/bin/maas-ha-guard',
  nodejs: '/usr/bin/node',
  configPath: '/etc/maas-ha/maas-ha.yaml',
  user: 'postgres',
  intervalMs: 1000,
  ...over,
});

test('guard unit: the ExecStartPre drop-in goes to this cluster\'s postgresql@ instance and runs start-check as postgres', (t) => {
  const u = startCheckDropIn(opts());
  t.is(u.path, '/etc/systemd/system/postgresql@15-main.service.d/maas-ha-guard.conf');
  const lines = u.text.split('\n').filter((l) => !l.startsWith('#') && l);
  t.deepEqual(lines, [
    '[Service]',
    'ExecStartPre=/usr/sbin/runuser -u postgres -- /usr/bin/node /usr/local/lib/maas-ha/dist/bin/maas-ha-guard start-check --node 1 --config /etc/maas-ha/maas-ha.yaml',
  ]);
});

test('guard unit: the watch service runs as postgres, restarts, and checks every interval', (t) => {
  const u = watchService(opts({ intervalMs: 500 }));
  t.is(u.path, '/etc/systemd/system/maas-ha-guard.service');
  t.regex(u.text, /^User=postgres$/m);
  t.regex(u.text, /^Group=postgres$/m);
  t.regex(u.text, /^Restart=always$/m);
  t.regex(u.text, /^ExecStart=\/usr\/bin\/node \/usr\/local\/lib\/maas-ha\/dist\/bin\/maas-ha-guard watch --node 1 --interval-ms 500 --config \/etc\/maas-ha\/maas-ha.yaml$/m);
  t.regex(u.text, /^WantedBy=multi-user.target$/m);
  t.regex(u.text, /^\[Unit\]\n/m);
});

test('guard unit: a node started with pg_ctl gets no postgresql@ drop-in, with what to do instead', (t) => {
  const e = t.throws(() => startCheckDropIn(opts({ node: testNode(2, { control: { method: 'pg_ctl', log_file: '/var/log/pg.log' } }) })));
  t.regex(e!.message, /node 2 is started with pg_ctl .*maas-ha-guard start-check --node 2/);
});

test('guard unit: values systemd would expand or split are refused, not pasted', (t) => {
  t.throws(() => startCheckDropIn(opts({ configPath: '/etc/maas ha/maas-ha.yaml' })), { message: /configuration file "\/etc\/maas ha\/maas-ha.yaml"/ });
  t.throws(() => watchService(opts({ configPath: '/etc/maas-ha/%i.yaml' })), { message: /configuration file/ });
  t.throws(() => watchService(opts({ nodejs: 'node' })), { message: /node binary must be an absolute path/ });
  t.throws(() => watchService(opts({ user: 'post gres' })), { message: /the user/ });
});

test('guard: the node is found by id or by its data directory (trailing slash ignored); anything else names the flag', (t) => {
  const config = testConfig({}, 3);
  config.nodes = config.nodes.map((n) => ({ ...n, data_directory: `/var/lib/postgresql/15/n${n.id}` }));
  t.is(findNode(config, { node: 2 }).id, 2);
  t.is(findNode(config, { dataDirectory: '/var/lib/postgresql/15/n1/' }).id, 1);
  t.throws(() => findNode(config, { node: 7 }), { message: /^--node: no node 7/ });
  t.throws(() => findNode(config, { dataDirectory: '/srv/x' }), { message: /^--data-directory: no node .* has data_directory \/srv\/x/ });
  t.throws(() => findNode(config, {}), { message: /exactly one of --node ID and --data-directory DIR/ });
  t.throws(() => findNode(config, { node: 1, dataDirectory: '/var/lib/postgresql/15/n1' }), { message: /exactly one/ });
});

test('guard: every Debian host has /var/lib/postgresql/15/main → the node whose hostname is this host is taken, ambiguity refused', (t) => {
  const config = testConfig({}, 3); // testNode: hostname 10.0.0.1N, the same data_directory on every node
  const dir = '/var/lib/postgresql/15/main';
  t.is(findNode(config, { dataDirectory: dir }, { addresses: ['127.0.0.1', '10.0.0.13'], names: ['db3'] }).id, 2);
  t.is(findNode(config, { dataDirectory: dir }, { addresses: ['127.0.0.1'], names: ['pg1'] }).id, 1, 'or its name');
  t.throws(() => findNode(config, { dataDirectory: dir }, { addresses: ['127.0.0.1'], names: ['elsewhere'] }), {
    message: /^--data-directory: nodes 0 \(10.0.0.11\), 1 \(10.0.0.12\), 2 \(10.0.0.13\) all have data_directory .* none of them is this host .*give --node ID/,
  });
});

test('guard files: standby.signal is created once (0600), an existing file is left alone, a symlink is never followed', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'guard-files-'));
  try {
    const f = createGuardFiles();
    t.false(f.hasStandbySignal(dir));
    t.is(f.writeStandbySignal(dir), 'written');
    t.is(statSync(join(dir, 'standby.signal')).mode & 0o777, 0o600);
    t.true(f.hasStandbySignal(dir));
    writeFileSync(join(dir, 'standby.signal'), 'kept');
    t.is(f.writeStandbySignal(dir), 'exists');
    t.is(readFileSync(join(dir, 'standby.signal'), 'utf8'), 'kept');

    const other = mkdtempSync(join(tmpdir(), 'guard-files-'));
    symlinkSync(join(other, 'target'), join(other, 'standby.signal'));
    t.throws(() => f.writeStandbySignal(other), { message: /not a regular file \(a symlink\)/ });
    t.throws(() => readFileSync(join(other, 'target')), undefined, 'nothing was written through the link');
    rmSync(other, { recursive: true, force: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('guard cli: --help anywhere is answered first (exit 0, nothing else looked at); an unknown command is a usage error', async (t) => {
  const { runGuardCli } = await import('../../../lib/guard/cli.ts');
  const out: string[] = [];
  const io = { out: (x: string) => out.push(x), err: (x: string) => out.push(x) };
  t.is(await runGuardCli(['check', '--bogus', '--node', 'x', '--help', '--config', '/nonexistent.yaml'], io), 0);
  t.regex(out.join('\n'), /^usage: maas-ha-guard <command>/);
  t.is(await runGuardCli(['unit', 'watch', '-h'], io), 0);
  t.is(await runGuardCli([], io), 2);
});
