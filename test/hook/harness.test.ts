// The fake pgpool environment's own claims, checked with a probe executable that reports how it was started:
// every hook test trusts that the harness runs things the way pgpool does (pgpool-hooks.md §1.2, §1.5, §5.2),
// so that trust is tested here rather than assumed.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pgpoolEnv, postgresIds, SERVICE_ENV } from '../support/pgpool-env.ts';
import { primary, standby } from '../support/fake-pg.ts';

const groupsOfPostgres = () => execFileSync('id', ['-G', 'postgres'], { encoding: 'utf8' }).trim().split(/\s+/).map(Number).sort();

test('harness: a shell-mode line runs as pgpool runs it — /bin/sh -c, postgres with its groups, cwd /, umask 022, stdin /dev/null, service env', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const probe = env.world.install('probe', () => ({ stdout: 'ok\n' }));
  const run = await env.runLine(`${probe} --x "a b" ""`);
  t.is(run.exitCode, 0);
  t.is(run.stdout, 'ok\n');
  const [call] = run.calls;
  if (!call) return t.fail('the probe was not run');
  t.deepEqual(call.argv, ['--x', 'a b', '']);
  t.is(call.cwd, '/');
  t.is(call.uid, postgresIds().uid);
  t.is(call.gid, postgresIds().gid);
  t.deepEqual([...call.groups].sort(), groupsOfPostgres());
  t.is(call.umask, 0o022);
  t.is(call.stdin, '/dev/null');
  // dash exports PWD itself; pgpool's system() runs the same /bin/sh, so a real hook sees it too.
  t.deepEqual(call.env, { ...SERVICE_ENV, MAAS_HA_CONFIG: env.configPath, PWD: '/' });
});

test('harness: a pgpool event is expanded as pgpool does — %m = -1 gives "" details that stay one empty argument each', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const probe = env.world.install('probe', () => ({}));
  const line = env.expand(`${probe} "%d" "%h" "%m" "%H" "%r" "%R" "%P" "%N" %%`, { node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 });
  t.is(line, `${probe} "0" "127.0.0.1" "-1" """" """" """" "0" "127.0.0.1" %`);
  const run = await env.runLine(line);
  t.deepEqual(run.calls[0]?.argv, ['0', '127.0.0.1', '-1', '', '', '', '0', '127.0.0.1', '%']);
});

test('harness: the hook lines are pgpool/hooks.conf rendered for dist/bin, every placeholder quoted', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  t.regex(env.template('failover_command'), /\/dist\/bin\/maas-ha-failover --failed-node "%d" .* --old-primary-port "%S"$/);
  t.regex(env.template('follow_primary_command'), /\/dist\/bin\/maas-ha-follow-primary --node "%d" /);
  t.regex(env.template('failback_command'), /\/dist\/bin\/maas-ha-failback --attached-node "%d" /);
  t.regex(env.template('follow_master_command'), /\/dist\/bin\/maas-ha-follow-primary .* --old-primary "%P"$/);
});

test('harness: the config is real — loaded by the real loader, secrets 0600 owned by postgres, state_dir writable by postgres', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  t.is(env.config.nodes.length, 2);
  t.is(env.config.nodes[1]!.port, env.node(1).port);
  const stat = (p: string) => execFileSync('stat', ['-c', '%a %U', p], { encoding: 'utf8' }).trim();
  t.is(stat(env.config.pcp.pcppass_file), '600 postgres');
  t.is(stat(env.config.ssh.identity_file), '600 postgres');
  const probe = env.world.install('probe', () => ({}));
  const run = await env.runLine(`touch ${env.stateDir}/written && ${probe}`);
  t.is(run.exitCode, 0);
  t.is(stat(`${env.stateDir}/written`), '644 postgres');
});

test('harness: a line that outlives the harness timeout is killed with its whole process group', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  env.world.install('hang', () => ({ hang: true }));
  const run = await env.runLine(`${env.binDir}/hang; ${env.binDir}/hang`, { timeoutMs: 300 });
  t.true(run.timedOut);
  t.is(run.signal, 'SIGKILL');
  t.is(run.calls.length, 1, 'the second command never started');
});

test('harness: recovery mode runs as the pgpool_recovery extension does — cwd = the primary data directory, umask 077, 7 quoted arguments', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const probe = env.world.install('probe', () => ({}));
  const dataDir = env.nodeConfig(0).data_directory;
  const script = join(dataDir, 'recovery_1st_stage');
  writeFileSync(script, `#!/bin/sh\nexec ${probe} "$@"\n`);
  chmodSync(script, 0o700);
  chownSync(script, postgresIds().uid, postgresIds().gid);
  const run = await env.runRecovery({
    primaryDataDir: dataDir,
    script: 'recovery_1st_stage',
    remoteHost: 'node1',
    remoteDataDir: env.nodeConfig(1).data_directory,
    primaryPort: String(env.node(0).port),
    remoteNode: 1,
    remotePort: String(env.node(1).port),
    primaryHost: '127.0.0.1',
  });
  t.is(run.exitCode, 0);
  const call = run.calls[0];
  t.is(call?.cwd, dataDir);
  t.is(call?.umask, 0o077);
  t.is(call?.uid, postgresIds().uid);
  t.deepEqual(call?.argv, [dataDir, 'node1', env.nodeConfig(1).data_directory, String(env.node(0).port), '1', String(env.node(1).port), '127.0.0.1']);
});

test('harness: execv mode runs as the watchdog runs if_up_cmd — no shell, $_IP_$ substituted, quotes literal, failed exec counted as success', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  env.world.install('ip', () => ({}));
  const run = await env.runExecv('ip  addr add $_IP_$/24 dev "two words"', { ip: '10.0.0.5', pathDir: env.binDir });
  t.is(run.exitCode, 0);
  t.false(run.execFailed);
  t.deepEqual(run.calls[0]?.argv, ['addr', 'add', '10.0.0.5/24', 'dev', '"two', 'words"']);
  t.is(run.calls[0]?.cwd, '/');
  t.is(run.calls[0]?.stdin, '/dev/null');
  const missing = await env.runExecv('/nonexistent/arping -U $_IP_$', { ip: '10.0.0.5', pathDir: '/usr/sbin' });
  t.true(missing.execFailed);
  t.is(missing.exitCode, 0, 'pgpool counts a failed execv as success (pgpool-hooks.md §0.4)');
});
