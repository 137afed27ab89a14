// The failover_command use case. pgpool runs it on its leader, as postgres, once per failed node, and waits for
// it with no timeout while no client can reach the primary; it ignores the exit code (pgpool-hooks.md §1.3).
// So: act only when the failed node is the primary (%d == %P), decide by data which standby to promote, stop
// the old primary before promoting when it is reachable, stay inside the budget, and say what happened.

import type { NodeConfig } from '../config/types.ts';
import { messageOf } from '../errors.ts';
import type { Deps } from '../model/deps.ts';
import { formatLsn } from '../model/lsn.ts';
import { observeNode } from '../observe.ts';
import { stopNode, controlArgv, type StopResult } from '../pgctl.ts';
import { chooseCandidate } from './choose.ts';
import { Timeline } from './timeline.ts';
import { relaxSynchronous } from './sync.ts';

export interface FailoverInput {
  failedNode: number;
  oldPrimary?: number;
  newMain?: number;
}

export interface FailoverResult {
  ok: boolean;
  summary: string;
  promoted?: number;
  timeline: Timeline;
}

const nodeById = (deps: Deps, id: number | undefined): NodeConfig | undefined =>
  id === undefined ? undefined : deps.config.nodes.find((n) => n.id === id);

export async function runFailover(deps: Deps, input: FailoverInput, remainingMs: () => number): Promise<FailoverResult> {
  const tl = new Timeline(deps.clock);
  const failed = nodeById(deps, input.failedNode);
  if (!failed) return { ok: false, summary: `node ${input.failedNode} is not in ${deps.config.source}`, timeline: tl };
  if (input.oldPrimary === undefined || input.oldPrimary !== input.failedNode) {
    return standbyLost(deps, failed, nodeById(deps, input.oldPrimary), tl);
  }
  tl.add('primary_lost', { node: failed.id });
  const release = await deps.state.lock('cluster', Math.min(5000, remainingMs() / 4));
  try {
    return await primaryLost(deps, failed, input, remainingMs, tl);
  } finally {
    release();
  }
}

async function standbyLost(deps: Deps, failed: NodeConfig, primary: NodeConfig | undefined, tl: Timeline): Promise<FailoverResult> {
  const { log, config } = deps;
  tl.add('standby_lost', { node: failed.id });
  const notes: string[] = [];
  if (primary) {
    const slot = slotName(failed.id);
    if (config.replication.use_slots && config.replication.drop_slot_on_standby_loss) {
      try {
        await deps.pg.query({ host: primary.hostname, port: primary.port }, 'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]);
        notes.push(`slot ${slot} dropped`);
      } catch (err) {
        notes.push(`slot ${slot} not dropped: ${messageOf(err)}`);
      }
    } else if (config.replication.use_slots) {
      notes.push(`slot ${slot} kept (WAL is retained for its return)`);
    }
    if (config.replication.synchronous.mode !== 'off') {
      const relaxed = await relaxSynchronous(deps, primary, failed.id);
      if (relaxed) {
        notes.push(relaxed);
        tl.add('synchronous_relaxed', { node: primary.id });
      }
    }
  }
  const summary = `node ${failed.id} (a standby) lost: promoted nobody${notes.length ? `; ${notes.join('; ')}` : ''}`;
  log.info({ step: 'standby-lost', node_id: failed.id, outcome: 'ok' }, summary);
  return { ok: true, summary, timeline: tl };
}

async function primaryLost(deps: Deps, failed: NodeConfig, input: FailoverInput, remainingMs: () => number, tl: Timeline): Promise<FailoverResult> {
  const { log, config } = deps;
  // Stop the old primary while the candidates are observed: when its host answers, this costs one ssh round
  // trip in parallel; when it does not, ssh's connect timeout bounds the wait.
  const fencing = fenceOldPrimary(deps, failed, Math.min(remainingMs() / 3, config.ssh.connect_timeout_s * 1000 + 5000));
  const perNode = Math.min(2000, remainingMs() / 5);
  const others = config.nodes.filter((n) => n.id !== failed.id);
  const observations = await Promise.all(others.map((n) => observeNode(deps, n, perNode)));
  const choice = chooseCandidate({ config, failedNode: failed.id, newMain: input.newMain, observations });
  for (const o of observations) {
    log.info(
      { step: 'observe', node_id: o.id, outcome: o.reachable ? 'ok' : 'failed' },
      o.reachable
        ? `node ${o.id}: ${o.inRecovery ? 'standby' : 'primary'} timeline ${o.timeline}, received ${o.receiveLsn !== undefined ? formatLsn(o.receiveLsn) : '-'}, replayed ${o.replayLsn !== undefined ? formatLsn(o.replayLsn) : '-'}`
        : `node ${o.id}: unreachable (${o.error})`,
    );
  }
  tl.add('candidate_chosen', {
    choice: choice.kind,
    reasons: choice.reasons,
    lsns: Object.fromEntries(observations.map((o) => [o.id, o.reachable ? formatLsn(o.receiveLsn ?? o.replayLsn ?? 0n) : null])),
  });

  const fence = await fencing;
  tl.add('old_primary_fenced', { node: failed.id, outcome: fence.outcome });
  const fenceNote = fenceSentence(failed.id, fence);

  if (choice.kind === 'already-promoted') {
    log.info({ step: 'choose', node_id: choice.node, outcome: 'skipped' }, `node ${choice.node} is already the primary: nothing to promote`);
    return { ok: true, summary: `node ${choice.node} is already primary, nothing promoted; ${fenceNote}`, promoted: choice.node, timeline: tl };
  }
  if (choice.kind === 'none') {
    const why = choice.reasons.join('; ');
    log.error({ step: 'choose', outcome: 'failed' }, `no standby fit for promotion: ${why}`);
    return { ok: false, summary: `primary node ${failed.id} lost and no standby fit for promotion (${why}); ${fenceNote}`, timeline: tl };
  }
  const target = nodeById(deps, choice.node.id)!;
  log.info({ step: 'choose', node_id: target.id, outcome: 'ok', reasons: choice.reasons }, `promoting node ${target.id}: ${choice.reasons[0]}`);
  deps.state.journal('failover', { step: 'chosen', failed: failed.id, node: target.id, reasons: choice.reasons });

  if (choice.node.lsn > choice.node.replayLsn) await waitForReplay(deps, target, choice.node.lsn, Math.min(3000, remainingMs() / 4));
  await promote(deps, target, Math.max(1000, remainingMs() - 1000));
  tl.add('promoted', { node: target.id });
  deps.state.journal('failover', { step: 'promoted', failed: failed.id, node: target.id });
  try {
    // pg_rewind against a freshly promoted primary needs the new timeline in a checkpoint (lab-recipe G13).
    await deps.pg.query({ host: target.hostname, port: target.port }, 'CHECKPOINT', [], { timeoutMs: Math.max(1000, remainingMs() - 500) });
  } catch (err) {
    log.warn({ step: 'checkpoint', node_id: target.id, outcome: 'failed' }, `CHECKPOINT on the new primary failed: ${messageOf(err)}`);
  }
  if (config.replication.synchronous.mode !== 'off') {
    // No standby streams from the new primary yet: a synchronous setting would freeze every write until one
    // follows. Relax it now; the failback hook restores it when a standby is attached again.
    const relaxed = await relaxSynchronous(deps, target, undefined);
    if (relaxed) tl.add('synchronous_relaxed', { node: target.id });
  }
  const why = choice.reasons[0]!.replace(/^node \d+:? ?/, '');
  return {
    ok: fence.outcome !== 'still-running',
    summary: `promoted node ${target.id} (${why}); ${fenceNote}`,
    promoted: target.id,
    timeline: tl,
  };
}

function fenceSentence(id: number, f: StopResult): string {
  switch (f.outcome) {
    case 'not-running':
      return `old primary node ${id} is down`;
    case 'stopped-fast':
    case 'stopped-immediate':
      return `stopped old primary node ${id} (${f.outcome === 'stopped-fast' ? 'clean shutdown' : 'immediate'})`;
    case 'still-running':
      return `old primary node ${id} could NOT be stopped: fenced-pending`;
    case 'unreachable':
      return `old primary node ${id} unreachable over ssh: fenced-pending`;
  }
}

async function fenceOldPrimary(deps: Deps, node: NodeConfig, timeoutMs: number): Promise<StopResult> {
  const { log, state, config } = deps;
  const started = deps.clock.now();
  let result: StopResult;
  try {
    result = await stopNode(deps, node, timeoutMs);
  } catch (err) {
    result = { outcome: 'unreachable', detail: messageOf(err) };
  }
  const fields = { step: 'fence', node_id: node.id, duration_ms: deps.clock.now() - started };
  if (result.outcome === 'not-running' || result.outcome === 'stopped-fast' || result.outcome === 'stopped-immediate') {
    log.info({ ...fields, outcome: 'ok' }, `old primary node ${node.id}: ${result.outcome}`);
    state.markFenced({ node: node.id, since: new Date(deps.clock.now()).toISOString(), status: 'stopped', reason: result.outcome });
    return result;
  }
  log.error({ ...fields, outcome: 'failed' }, `old primary node ${node.id} could not be stopped over ssh (${result.detail}): marked fenced-pending; maas-ha will not start it as a primary`);
  state.markFenced({ node: node.id, since: new Date(deps.clock.now()).toISOString(), status: 'pending', reason: result.detail });
  const cmd = config.fencing.command;
  if (cmd) {
    const argv = cmd.map((a) => a.replaceAll('{host}', node.ssh_host).replaceAll('{port}', String(node.port)).replaceAll('{id}', String(node.id)));
    const r = await deps.shell.run(argv, { timeoutMs: config.fencing.timeout_ms });
    if (r.exitCode === 0) {
      log.info({ step: 'fence-command', node_id: node.id, outcome: 'ok', duration_ms: r.durationMs }, `fencing command for node ${node.id} succeeded`);
      state.markFenced({ node: node.id, since: new Date(deps.clock.now()).toISOString(), status: 'stopped', reason: `fencing command ${argv[0]}` });
      return { outcome: 'stopped-immediate', detail: `fencing command ${argv[0]}` };
    }
    log.error({ step: 'fence-command', node_id: node.id, outcome: 'failed', duration_ms: r.durationMs }, `fencing command for node ${node.id} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
  }
  return result;
}

async function waitForReplay(deps: Deps, node: NodeConfig, target: bigint, timeoutMs: number): Promise<void> {
  const deadline = deps.clock.now() + timeoutMs;
  while (deps.clock.now() < deadline) {
    const o = await observeNode(deps, node, Math.max(200, deadline - deps.clock.now()));
    if (o.reachable && (o.replayLsn ?? 0n) >= target) {
      deps.log.info({ step: 'catch-up', node_id: node.id, outcome: 'ok' }, `node ${node.id} replayed all it received (${formatLsn(target)})`);
      return;
    }
    await deps.clock.sleep(50);
  }
  deps.log.warn({ step: 'catch-up', node_id: node.id, outcome: 'failed' }, `node ${node.id} did not replay up to ${formatLsn(target)} within ${timeoutMs} ms; promoting anyway (promotion replays what was received)`);
}

async function promote(deps: Deps, node: NodeConfig, timeoutMs: number): Promise<void> {
  const { log } = deps;
  const started = deps.clock.now();
  const waitS = Math.max(1, Math.min(60, Math.floor(timeoutMs / 1000) - 1));
  try {
    const rows = await deps.pg.query<{ promoted: boolean }>(
      { host: node.hostname, port: node.port },
      'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted',
      [waitS],
      { timeoutMs },
    );
    if (rows[0]?.promoted !== true) throw new Error('pg_promote returned false');
  } catch (err) {
    log.warn({ step: 'promote', node_id: node.id, outcome: 'failed' }, `pg_promote on node ${node.id} failed (${messageOf(err)}); trying ${controlArgv(node, 'promote')[0]} over ssh`);
    const r = await deps.ssh.run(node.ssh_host, controlArgv(node, 'promote', { waitS }), { timeoutMs: Math.max(1000, timeoutMs - (deps.clock.now() - started)) });
    if (r.exitCode !== 0) throw new Error(`promotion of node ${node.id} failed: ${(r.stderr || r.stdout).trim()}`);
  }
  const check = await observeNode(deps, node, 2000);
  if (!check.reachable || check.inRecovery) {
    throw new Error(`node ${node.id} was promoted but ${check.reachable ? 'is still in recovery' : `no longer answers (${check.error})`}`);
  }
  log.info({ step: 'promote', node_id: node.id, outcome: 'ok', duration_ms: deps.clock.now() - started }, `node ${node.id} promoted: timeline ${check.timeline}, accepting writes`);
}

export const slotName = (id: number) => `maas_ha_node_${id}`;
