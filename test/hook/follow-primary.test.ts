// maas-ha-follow-primary as pgpool's follow child runs it (follow_primary_command of pgpool/hooks.conf), once per
// down node, the dead old primary included (docs/pgpool-hooks.md, "follow_primary_command"), after node 1 was
// promoted (timeline 2). pgpool has degenerated every node but the new primary, so the fake pcp reports them down
// (status 3) until the hook attaches them; nothing else re-attaches a node.
import test from 'ava';
import { primary, slotFor, standby, type NodeSpec } from '../support/fake-pg.ts';
import { closingLine, pgpoolEnv } from '../support/pgpool-env.ts';
import { createStateStore } from '../../lib/adapters/state.ts';

/** After "primary 0 died, node 1 promoted": %m = 1 (new primary), %M = %P = 0. */
const FOLLOW = (node: number) => ({ node, newMain: 1, oldMain: 0, oldPrimary: 0 });
const AFTER_FAILOVER = { pgpoolStatus: [3, 2, 3], pgpoolRole: ['standby', 'primary', 'standby'] as ('primary' | 'standby')[] };

function world(node2: NodeSpec, node0: NodeSpec = primary({ reach: 'down' })): NodeSpec[] {
  return [node0, primary({ timeline: 2, lsn: '0/4000000' }), node2];
}

const pcpTools = (calls: { tool: string; argv: string[] }[]) => calls.filter((c) => c.tool.startsWith('pcp_')).map((c) => [c.tool, c.argv.slice(c.argv.indexOf('-n'))]);

test('follow_primary: the down old primary (crashed) → left detached, no pcp_attach_node', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  const run = await env.run('follow_primary_command', FOLLOW(0));
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(env.sshCommands(run).map((c) => [c.node, c.kind]), [[0, 'controldata']], 'it asked the host what state the data directory is in');
  t.deepEqual(pcpTools(run.calls), []);
  t.is(env.pcp.backends[0]!.status, 3);
  t.regex(closingLine(run)?.msg ?? '', /node 0 is down \(cluster state "in production"\): a crashed node is left for maas-ha recover; node 0 stays detached$/);
  t.false(run.statements.some((s) => s.node === 0), 'nothing reached node 0');
});

test('follow_primary: the old primary\'s host unreachable over ssh → left detached, no pcp_attach_node', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 }), primary({ reach: 'down', ssh: 'unreachable' })), ...AFTER_FAILOVER });
  const run = await env.run('follow_primary_command', FOLLOW(0));
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(pcpTools(run.calls), []);
  t.regex(closingLine(run)?.msg ?? '', /node 0 is down and its host does not answer ssh/);
});

test('follow_primary: a standby already streaming from the new primary → pcp_attach_node, then confirmed with pcp_node_info', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(pcpTools(run.calls), [
    ['pcp_attach_node', ['-n', '2']],
    ['pcp_node_info', ['-n', '2']],
  ]);
  for (const c of run.calls.filter((x) => x.tool.startsWith('pcp_'))) {
    t.true(c.argv.includes('-w'), `${c.tool} never prompts (-w)`);
    t.is(c.env.PCPPASSFILE, env.config.pcp.pcppass_file);
  }
  t.is(env.pcp.backends[2]!.status, 1);
  t.false(run.statements.some((s) => s.node === 2 && /ALTER SYSTEM/.test(s.sql)), 'a standby that already follows is not reconfigured');
  t.regex(closingLine(run)?.msg ?? '', /node 2 already followed node 1: attached$/);
});

test('follow_primary: pcp_attach_node exits 0 but prints an ERROR → reported as failure, not success', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  // What the real tool does when pgpool refuses (pcp_frontend_client.c: the error on stderr, then `return 0`).
  env.world.script('pcp_attach_node', () => true, { stderr: 'ERROR: failed to attach node 2: node is quarantined\n', exitCode: 0 });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 1);
  t.is(env.pcp.backends[2]!.status, 3, 'pgpool still has it down');
  const done = closingLine(run);
  t.is(done?.level, 'error');
  t.regex(done?.msg ?? '', /node 2 could not follow node 1: pcp_attach_node -n 2: ERROR: failed to attach node 2: node is quarantined/);
  t.notRegex(done?.msg ?? '', /attached$/);
});

test('follow_primary: pcp_attach_node exits 0 without "Command Successful" → failure, not success', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  env.world.script('pcp_attach_node', () => true, { stdout: '', exitCode: 0 });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 1);
  t.regex(closingLine(run)?.msg ?? '', /no "Command Successful"/);
});

test('follow_primary: a running standby of the old primary → repointed at backend_hostname of the new primary, streams timeline 2, attached', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 0 })), ...AFTER_FAILOVER });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 0, run.stderr);
  t.true(env.node(1).slots.has(slotFor(2)), 'its slot was created on the new primary');
  const conninfo = env.node(2).settings.get('primary_conninfo') ?? '';
  // pgpool's false-primary check compares this host with backend_hostnameN as a string (docs/pgpool-hooks.md,
  // "detach_false_primary").
  t.regex(conninfo, new RegExp(`^host=${env.nodeConfig(1).hostname} port=${env.node(1).port} user=replicator application_name=node2 `));
  t.is(env.node(2).settings.get('primary_slot_name'), slotFor(2));
  t.like(env.node(2).walReceiver(), { status: 'streaming', sender_port: env.node(1).port, received_tli: 2 });
  t.deepEqual(env.node(1).replication().map((r) => r.application_name), ['node2']);
  t.is(env.pcp.backends[2]!.status, 1);
  t.regex(closingLine(run)?.msg ?? '', /node 2 repointed to node 1, streaming timeline 2, attached$/);
});

test('follow_primary: %m is not an answering primary → nothing touched, exit 1', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ upstream: null }), standby({ upstream: 0 })], pgpoolStatus: [3, 2, 3] });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 1);
  t.deepEqual(run.calls, []);
  t.regex(closingLine(run)?.msg ?? '', /node 1 is not an answering primary \(in recovery\): node 2 left as it is/);
});

test('follow_primary: the old primary came back as a primary → refused (no second primary is touched), left detached, exit 1', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 }), primary()), ...AFTER_FAILOVER });
  const run = await env.run('follow_primary_command', FOLLOW(0));
  t.is(run.exitCode, 1);
  t.deepEqual(pcpTools(run.calls), []);
  t.deepEqual(env.sshCommands(run), []);
  t.is(env.node(0).role, 'primary');
  t.regex(closingLine(run)?.msg ?? '', /node 0 is running as a primary: refusing to touch a second primary/);
});

test('failover then follow_primary for every down node, as pgpool sequences them → one primary; the standby streams and is attached, the crashed old primary waits for recovery', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000148' })] });
  const failover = await env.run('failover_command', { node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 });
  t.is(failover.exitCode, 0, failover.stderr);
  t.is(env.node(2).role, 'primary');
  // pgpool: "mark every node except the new primary as down", then the follow child runs the hook per down node.
  for (const b of env.pcp.backends) b.status = 3;
  env.pcp.backends[2]!.status = 2;
  const follows = [];
  for (const node of [0, 1]) follows.push(await env.run('follow_primary_command', { node, newMain: 2, oldMain: 0, oldPrimary: 0 }));
  t.deepEqual(follows.map((r) => r.exitCode), [0, 0], follows.map((r) => r.stderr).join('\n'));
  t.deepEqual(env.cluster.nodes.map((n) => [n.id, n.role, n.reach]), [[0, 'primary', 'down'], [1, 'standby', 'up'], [2, 'primary', 'up']]);
  t.deepEqual(env.node(2).replication().map((r) => r.application_name), ['node1']);
  t.deepEqual(env.pcp.backends.map((b) => b.status), [3, 1, 2]);
});

// pgpool restarts its PCP process about a second after each failover, exactly when follow runs (docs/pgpool-hooks.md,
// "PCP"); a refused PCP connection reached nothing, so the attach is simply sent again.
test('follow_primary: pcp refuses the first connection (PCP restarting after failover) → retried, attached', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  env.world.script('pcp_attach_node', () => true, { stderr: 'ERROR: connection to host "localhost" failed with error "Connection refused"\n', exitCode: 1 }, 1);
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 0, closingLine(run)?.msg);
  t.is(env.pcp.backends[2]!.status, 1);
  t.is(run.calls.filter((c) => c.tool === 'pcp_attach_node').length, 2, 'one refused attempt, one that reached pgpool');
});

test('follow_primary: the PCP restart cuts the attach\'s connection ("unable to read data from socket") → attach sent again, attached', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 1, timeline: 2 })), ...AFTER_FAILOVER });
  env.world.script('pcp_attach_node', () => true, { stderr: 'ERROR: unable to read data from socket.\n', exitCode: 1 }, 1);
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 0, closingLine(run)?.msg);
  t.is(env.pcp.backends[2]!.status, 1);
  t.is(run.calls.filter((c) => c.tool === 'pcp_attach_node').length, 2, 'one cut attempt, one that completed');
});

test('follow_primary: a node in maintenance → left as it is: nothing asked of it, no ssh, no pcp_attach_node', async (t) => {
  const env = await pgpoolEnv(t, { nodes: world(standby({ upstream: 0, timeline: 1 })), ...AFTER_FAILOVER });
  createStateStore(env.stateDir, { now: () => Date.now(), sleep: async () => {} }, { cluster: 'hooktest' }).setMaintenance({ node: 2, by: 'root@test', since: new Date().toISOString(), reason: '' });
  const run = await env.run('follow_primary_command', FOLLOW(2));
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(pcpTools(run.calls), []);
  t.deepEqual(env.sshCommands(run), []);
  t.false(run.statements.some((s) => s.node === 2), 'node 2 was not touched');
  t.is(env.pcp.backends[2]!.status, 3);
  t.regex(closingLine(run)?.msg ?? '', /in maintenance: node 2 is in maintenance .*left as it is, detached/);
});
