// The fake pgpool environment's own claims, checked with a probe executable that reports how it was started: every
// hook test trusts that the harness runs things the way pgpool does (docs/pgpool-hooks.md, "Who runs what, where",
// "Online recovery", "Interface commands"), so that trust is tested here rather than assumed.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, statSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { createPcp } from '../../lib/adapters/pcp.ts';
import { createSsh } from '../../lib/adapters/ssh.ts';
import { control, controlDataText, stopNode } from '../../lib/pgctl.ts';
import { parseControlData } from '../../lib/recovery/plan.ts';
import { pgpoolEnv, postgresIds, SERVICE_ENV } from '../support/pgpool-env.ts';
import { primary, standby } from '../support/fake-pg.ts';

const groupsOfPostgres = async () => (await promisify(execFile)('id', ['-G', 'postgres'])).stdout.trim().split(/\s+/).map(Number).sort();

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
  t.deepEqual([...call.groups].sort(), await groupsOfPostgres());
  t.is(call.umask, 0o022);
  t.is(call.stdin, '/dev/null');
  // dash exports PWD itself; pgpool's system() runs the same /bin/sh, so a real hook sees it too.
  t.deepEqual(call.env, { ...SERVICE_ENV, MAAS_HA_CONFIG: env.configPath, PWD: '/' });
});

test('harness: a pgpool event is expanded as pgpool does — %m = -1 gives "" details that stay one empty argument each', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const probe = env.world.install('probe', () => ({}));
  const line = env.expand(`${probe} "%d" "%h" "%m" "%H" "%r" "%R" "%P" "%N" %%`, { node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 });
  const host = env.node(0).host;
  t.is(line, `${probe} "0" "${host}" "-1" """" """" """" "0" "${host}" %`);
  const run = await env.runLine(line);
  t.deepEqual(run.calls[0]?.argv, ['0', host, '-1', '', '', '', '0', host, '%']);
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
  const stat = (p: string) => {
    const st = statSync(p);
    return [(st.mode & 0o777).toString(8), st.uid === postgresIds().uid ? 'postgres' : String(st.uid)].join(' ');
  };
  t.is(stat(env.config.pcp.pcppass_file), '600 postgres');
  t.is(stat(env.config.ssh.identity_file), '600 postgres');
  const probe = env.world.install('probe', () => ({}));
  const run = await env.runLine(`touch ${env.stateDir}/written && ${probe}`);
  t.is(run.exitCode, 0);
  t.is(stat(`${env.stateDir}/written`), '644 postgres');
});

test('harness: a line that outlives the harness timeout is killed with its whole process group', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const probe = env.world.install('probe', () => ({}));
  const run = await env.runLine(`sleep 30; ${probe}`, { timeoutMs: 300 });
  t.true(run.timedOut);
  t.is(run.signal, 'SIGKILL');
  t.deepEqual(run.calls, [], 'what came after the hung command never started');
  // The sleep (a child of sh, in the same group) is gone too, once the kernel has reaped it.
  const deadline = Date.now() + 5000;
  let alive = true;
  while (alive && Date.now() < deadline) {
    try {
      process.kill(-run.pgid, 0);
      await new Promise((r) => setTimeout(r, 20));
    } catch {
      alive = false;
    }
  }
  t.false(alive, `process group ${run.pgid} still exists`);
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
    primaryHost: env.node(0).host,
  });
  t.is(run.exitCode, 0);
  const call = run.calls[0];
  t.is(call?.cwd, dataDir);
  t.is(call?.umask, 0o077);
  t.is(call?.uid, postgresIds().uid);
  t.deepEqual(call?.argv, [dataDir, 'node1', env.nodeConfig(1).data_directory, String(env.node(0).port), '1', String(env.node(1).port), env.node(0).host]);
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
  t.is(missing.exitCode, 0, 'pgpool counts a failed execv as success (docs/pgpool-hooks.md, "Exit codes")');
});

test('fake ssh: answers maas-ha\'s own ssh adapter from the node\'s state — stop stops it, the start guard refuses a former primary', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const deps = { ssh: createSsh(env.config.ssh, createShell()), config: env.config };
  t.like(await stopNode(deps, env.nodeConfig(0), 5000), { outcome: 'stopped-fast' });
  t.is(env.node(0).reach, 'down');
  t.is(parseControlData((await controlDataText(deps, env.nodeConfig(0), 5000)) ?? '').state, 'shut down');
  t.like(await stopNode(deps, env.nodeConfig(0), 5000), { outcome: 'not-running' });
  await t.throwsAsync(control(deps, env.nodeConfig(0), 'start', 5000), { message: /refusing to start .*: no standby\.signal/ });
  t.is(env.node(0).reach, 'down');
  await stopNode(deps, env.nodeConfig(1), 5000);
  await control(deps, env.nodeConfig(1), 'start', 5000);
  t.is(env.node(1).reach, 'up');
});

test('fake ssh: refuses an invocation that could prompt or trust a host key on first use', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby()] });
  const run = await env.runLine(`${env.binDir}/ssh -o StrictHostKeyChecking=no -o ConnectTimeout=5 node0 true`);
  t.is(run.exitCode, 255);
  t.regex(run.stderr, /refused, the hook did not pass BatchMode=yes, StrictHostKeyChecking=yes, UserKnownHostsFile=/);
  t.is(env.node(0).reach, 'up');
});

test('fake pcp: the 4.3 pcp_node_info line parses with maas-ha\'s parser; a server ERROR comes with exit 0, as from the real tools', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary(), standby({ reach: 'down' })] });
  const pcp = createPcp(env.config.pcp, createShell());
  t.like(await pcp.nodeInfo(0), { host: env.node(0).host, port: env.node(0).port, status: 2, role: 'primary', actualRole: 'primary', lastStatusChange: '2026-11-24 21:17:17' });
  t.like(await pcp.nodeInfo(1), { status: 3, statusName: 'down', actualStatus: 'down' });
  t.is(await pcp.nodeCount(), 2);
  const raw = await env.runLine(`${env.binDir}/pcp_node_info -h localhost -p 9898 -U pcpadmin -w -n 7`, { env: { ...SERVICE_ENV, PCPPASSFILE: env.config.pcp.pcppass_file } });
  t.is(raw.exitCode, 0);
  t.is(raw.stderr, 'ERROR: invalid node ID\n');
  await t.throwsAsync(pcp.attach(7), { message: /invalid node ID/ });
  const prompt = await env.runLine(`${env.binDir}/pcp_attach_node -h localhost -p 9898 -U pcpadmin -n 1`);
  t.is(prompt.exitCode, 1, 'without -w the real tool prompts for a password a hook cannot type');
  t.is(env.pcp.backends[1]!.status, 3);
});
