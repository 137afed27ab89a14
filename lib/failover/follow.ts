// The follow_primary_command use case. pgpool's follow child runs it on the leader, as postgres, once per node
// other than the new primary, one after another, the dead old primary included; it ignores the exit code, and
// nothing re-attaches a node unless the hook does (pgpool-hooks.md §1.4). For each node: decide from what the
// node says (planFollow, pure), then act, then prove it streams the new timeline before attaching it.

import type { NodeConfig } from '../config/types.ts';
import { messageOf, OperationError } from '../errors.ts';
import type { Deps } from '../model/deps.ts';
import { observeNode, type NodeObservation } from '../observe.ts';
import { clusterState, control, shScript, stopNode } from '../pgctl.ts';
import { isAttached } from '../pgpool/pcp-output.ts';
import { slotName } from './failover.ts';

export type FollowAction =
  | { kind: 'skip'; why: string }
  | { kind: 'attach'; why: string }
  | { kind: 'repoint'; why: string }
  | { kind: 'rewind'; why: string }
  | { kind: 'leave-detached'; why: string };

export interface FollowFacts {
  node: NodeConfig;
  newPrimary: NodeConfig;
  primaryTimeline: number;
  observation: NodeObservation;
  /** pg_controldata's state when the node is not running ("shut down", "in production", ...); undefined: unknown. */
  stoppedState?: string;
  sshReachable: boolean;
}

/** Pure: what to do with one node. */
export function planFollow(f: FollowFacts): FollowAction {
  const { node, newPrimary, observation: o } = f;
  if (node.id === newPrimary.id) return { kind: 'skip', why: `node ${node.id} is the new primary` };
  if (o.reachable) {
    if (!o.inRecovery) return { kind: 'leave-detached', why: `node ${node.id} is running as a primary: refusing to touch a second primary (fence it, then recover it)` };
    const wr = o.walReceiver;
    if (wr?.status === 'streaming' && wr.senderHost === newPrimary.hostname && wr.senderPort === newPrimary.port && wr.receivedTli === f.primaryTimeline) {
      return { kind: 'attach', why: `node ${node.id} already streams timeline ${f.primaryTimeline} from node ${newPrimary.id}` };
    }
    return { kind: 'repoint', why: `node ${node.id} is a running standby ${wr ? `of ${wr.senderHost}` : 'not streaming'}: repoint it to node ${newPrimary.id}` };
  }
  if (!f.sshReachable) return { kind: 'leave-detached', why: `node ${node.id} is down and its host does not answer ssh: leave it for maas-ha recover` };
  if (f.stoppedState === 'shut down' || f.stoppedState === 'shut down in recovery') {
    return { kind: 'rewind', why: `node ${node.id} was shut down cleanly (${f.stoppedState}): rewind it onto node ${newPrimary.id}` };
  }
  return {
    kind: 'leave-detached',
    why: `node ${node.id} is down${f.stoppedState ? ` (cluster state "${f.stoppedState}")` : ''}: a crashed node is left for maas-ha recover`,
  };
}

export function conninfo(deps: Pick<Deps, 'config'>, primary: NodeConfig, node: NodeConfig): string {
  const r = deps.config.replication;
  // host exactly as backend_hostname: pgpool's false-primary check compares it as a string (§4.2).
  const parts = [`host=${primary.hostname}`, `port=${primary.port}`, `user=${r.user}`, `application_name=${node.name}`, 'connect_timeout=3'];
  if (r.password_file) parts.push(`passfile=${r.password_file}`);
  return parts.join(' ');
}

const confLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** Rewrites the standby settings in postgresql.auto.conf (which pg_rewind copied from the source) and adds standby.signal. */
const WRITE_STANDBY_SCRIPT = `
set -e
f="$1/postgresql.auto.conf"; tmp="$1/postgresql.auto.conf.maas-ha"
if [ -f "$f" ]; then grep -v -E '^[[:space:]]*(primary_conninfo|primary_slot_name|recovery_target_timeline|synchronous_standby_names)[[:space:]]*=' "$f" > "$tmp" || true; else : > "$tmp"; fi
shift
for line in "$@"; do printf '%s\\n' "$line" >> "$tmp"; done
chmod 600 "$tmp"; mv "$tmp" "$f"; : > "$(dirname "$f")/standby.signal"`;

export function standbyLines(deps: Pick<Deps, 'config'>, primary: NodeConfig, node: NodeConfig): string[] {
  const lines = [`primary_conninfo = ${confLiteral(conninfo(deps, primary, node))}`, "recovery_target_timeline = 'latest'"];
  if (deps.config.replication.use_slots) lines.push(`primary_slot_name = ${confLiteral(slotName(node.id))}`);
  return lines;
}

async function ensureSlot(deps: Deps, primary: NodeConfig, node: NodeConfig): Promise<void> {
  if (!deps.config.replication.use_slots) return;
  await deps.pg.query(
    { host: primary.hostname, port: primary.port },
    `SELECT pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)`,
    [slotName(node.id)],
  );
}

async function waitStreaming(deps: Deps, node: NodeConfig, primary: NodeConfig, timeline: number, timeoutMs: number): Promise<void> {
  const deadline = deps.clock.now() + timeoutMs;
  let last = 'no answer yet';
  while (deps.clock.now() < deadline) {
    const o = await observeNode(deps, node, 1500);
    if (o.reachable) {
      const wr = o.walReceiver;
      // pg_stat_replication can show "streaming" briefly for a standby that cannot follow (lab-recipe G15):
      // the receiver's own view of the timeline is what counts.
      if (wr?.status === 'streaming' && wr.senderHost === primary.hostname && wr.receivedTli === timeline) return;
      last = wr ? `walreceiver ${wr.status} from ${wr.senderHost}, timeline ${wr.receivedTli}` : 'no walreceiver';
    } else last = o.error;
    await deps.clock.sleep(100);
  }
  throw new OperationError(`node ${node.id} does not stream timeline ${timeline} from node ${primary.id} after ${timeoutMs} ms (${last})`);
}

async function attach(deps: Deps, node: NodeConfig): Promise<void> {
  await deps.pcp.attach(node.id);
  const deadline = deps.clock.now() + 10_000;
  for (;;) {
    const info = await deps.pcp.nodeInfo(node.id).catch(() => undefined);
    if (info && isAttached(info)) return;
    if (deps.clock.now() > deadline) throw new OperationError(`pcp_attach_node ${node.id} said "Command Successful" but pcp_node_info does not show it up`);
    await deps.clock.sleep(200);
  }
}

export interface FollowInput {
  node: number;
  newPrimary: number;
}

export async function runFollow(deps: Deps, input: FollowInput, remainingMs: () => number): Promise<{ ok: boolean; summary: string }> {
  const { config, log } = deps;
  const node = config.nodes.find((n) => n.id === input.node);
  const primary = config.nodes.find((n) => n.id === input.newPrimary);
  if (!node || !primary) return { ok: false, summary: `node ${!node ? input.node : input.newPrimary} is not in ${config.source}` };
  const p = await observeNode(deps, primary, 3000);
  if (!p.reachable || p.inRecovery) {
    return { ok: false, summary: `node ${primary.id} is not an answering primary (${p.reachable ? 'in recovery' : p.error}): node ${node.id} left as it is` };
  }
  const observation = await observeNode(deps, node, 2000);
  let sshReachable = true;
  let stoppedState: string | undefined;
  if (!observation.reachable) {
    try {
      stoppedState = await clusterState(deps, node, config.ssh.connect_timeout_s * 1000 + 3000);
      sshReachable = stoppedState !== undefined;
    } catch {
      sshReachable = false;
    }
  }
  const action = planFollow({ node, newPrimary: primary, primaryTimeline: p.timeline, observation, stoppedState, sshReachable });
  log.info({ step: 'plan', node_id: node.id, action: action.kind }, action.why);
  const streamBudget = () => Math.max(2000, Math.min(30_000, remainingMs() - 5000));
  try {
    switch (action.kind) {
      case 'skip':
        return { ok: true, summary: action.why };
      case 'leave-detached':
        return { ok: action.why.includes('second primary') ? false : true, summary: `${action.why}; node ${node.id} stays detached` };
      case 'attach':
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} already followed node ${primary.id}: attached` };
      case 'repoint': {
        await ensureSlot(deps, primary, node);
        const target = { host: node.hostname, port: node.port };
        for (const line of standbyLines(deps, primary, node)) {
          const [key, value] = line.split(/ = (.*)/s) as [string, string];
          await deps.pg.query(target, `ALTER SYSTEM SET ${key} = ${value}`);
        }
        await deps.pg.query(target, 'SELECT pg_reload_conf()');
        try {
          await waitStreaming(deps, node, primary, p.timeline, Math.min(streamBudget(), 15_000));
        } catch (err) {
          // A standby that replayed past the fork point cannot follow: stop it cleanly and rewind it.
          log.warn({ step: 'repoint', node_id: node.id, outcome: 'failed' }, `${messageOf(err)}: stopping it for pg_rewind`);
          const stop = await stopNode(deps, node, 30_000);
          if (stop.outcome === 'still-running' || stop.outcome === 'unreachable') throw new OperationError(`node ${node.id} could not be stopped for rewind: ${stop.detail}`);
          await rewindAndStart(deps, node, primary, p.timeline, streamBudget());
          await attach(deps, node);
          return { ok: true, summary: `node ${node.id} could not follow in place; rewound onto node ${primary.id}, streaming, attached` };
        }
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} repointed to node ${primary.id}, streaming timeline ${p.timeline}, attached` };
      }
      case 'rewind':
        await rewindAndStart(deps, node, primary, p.timeline, streamBudget());
        await attach(deps, node);
        return { ok: true, summary: `node ${node.id} rewound onto node ${primary.id}, streaming timeline ${p.timeline}, attached` };
    }
  } catch (err) {
    return { ok: false, summary: `node ${node.id} could not follow node ${primary.id}: ${messageOf(err)}; it stays detached (run: maas-ha recover ${node.id})` };
  }
}

async function rewindAndStart(deps: Deps, node: NodeConfig, primary: NodeConfig, timeline: number, budgetMs: number): Promise<void> {
  const { config, log } = deps;
  await ensureSlot(deps, primary, node);
  const started = deps.clock.now();
  const source = `host=${primary.hostname} port=${primary.port} user=${config.postgres.user} dbname=${config.postgres.database} connect_timeout=5`;
  const argv = [`${node.bin_dir}/pg_rewind`, '-D', node.data_directory, `--source-server=${source}`];
  if (node.config_directory) argv.push(`--config-file=${node.config_directory}/postgresql.conf`);
  const env = config.postgres.password_file ? ['env', `PGPASSFILE=${config.postgres.password_file}`] : [];
  const r = await deps.ssh.run(node.ssh_host, [...env, ...argv], { timeoutMs: Math.max(10_000, budgetMs) });
  if (r.exitCode !== 0) throw new OperationError(`pg_rewind of node ${node.id} failed: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' | ')}`);
  log.info({ step: 'rewind', node_id: node.id, outcome: 'ok', duration_ms: deps.clock.now() - started }, `pg_rewind of node ${node.id}: ${r.stdout.trim().split('\n').pop() ?? 'done'}`);
  const w = await deps.ssh.run(node.ssh_host, shScript(WRITE_STANDBY_SCRIPT, node.data_directory, ...standbyLines(deps, primary, node)), { timeoutMs: 10_000 });
  if (w.exitCode !== 0) throw new OperationError(`writing the standby configuration of node ${node.id} failed: ${w.stderr.trim()}`);
  await control(deps, node, 'start', 60_000);
  await waitStreaming(deps, node, primary, timeline, Math.max(5000, budgetMs - (deps.clock.now() - started)));
}
