// The failover_command use case. pgpool runs it on its leader, as postgres, once per failed node, and waits for
// it with no timeout while no client can reach the primary; it ignores the exit code (docs/pgpool-hooks.md,
// "failover_command"). So: act only when the failed node is the primary (%d == %P); observe; let the pure plan
// (./plan.ts) decide the fence order, the split-brain fences and whom to promote; execute it inside the budget;
// say what happened. A journal of steps (./journal.ts) lets a re-run of the same event continue; runHook holds
// the `failover` lock, so two failover hooks on one pgpool host never run their steps at the same time.

import type { Config, NodeConfig } from '../config/types.ts';
import { causeCode, messageOf } from '../errors.ts';
import { CommandError, type Deps } from '../model/ports.ts';
import { formatLsn } from '../model/lsn.ts';
import { isWritable, observeNode, type NodeObservation } from '../observe.ts';
import { stopNode, controlArgv, type StopResult } from '../pgctl.ts';
import { failoverJournal, journalName, resumeFrom, type Resume } from './journal.ts';
import { fenceOrder, planFailover, type FailoverFacts, type FailoverPlan, type PortProbe } from './plan.ts';
import { Timeline } from './timeline.ts';
import { relaxSynchronous } from './sync.ts';
import { settleFollowers } from './followers.ts';
import { slotName } from '../recovery/standby-conf.ts';
import { failoverGate, markedNodes } from '../maintenance.ts';

export interface FailoverInput {
  failedNode: number;
  oldPrimary?: number;
  newMain?: number;
  /** This run's id, for the journal. */
  runId: string;
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
  const primaryLost = input.oldPrimary !== undefined && input.oldPrimary === input.failedNode;
  const marks = deps.state.maintenance();
  const gate = failoverGate(marks, failed.id, primaryLost);
  if (gate.kind === 'nothing') {
    tl.add('in_maintenance', { node: failed.id });
    deps.log.warn({ step: 'maintenance', node_id: failed.id, outcome: 'skipped' }, gate.why);
    return { ok: true, summary: `in maintenance: ${gate.why}`, timeline: tl };
  }
  if (!primaryLost) return standbyLost(deps, failed, nodeById(deps, input.oldPrimary), tl, gate.kind === 'standby-in-maintenance' ? gate.why : undefined);
  tl.add('primary_lost', { node: failed.id });
  return lostPrimary(deps, failed, input, remainingMs, tl, markedNodes(marks));
}

/** `inMaintenance`: the node is marked (lib/maintenance.ts): its slot is kept for its return, whatever the config says. */
async function standbyLost(deps: Deps, failed: NodeConfig, primary: NodeConfig | undefined, tl: Timeline, inMaintenance?: string): Promise<FailoverResult> {
  const { log, config } = deps;
  tl.add('standby_lost', { node: failed.id });
  const notes: string[] = inMaintenance ? [inMaintenance] : [];
  if (primary) {
    const slot = slotName(failed.id);
    if (config.replication.use_slots && config.replication.drop_slot_on_standby_loss && !inMaintenance) {
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

/** How long the old primary's port is probed: a refused connect answers in microseconds on any host. */
export const PORT_PROBE_MS = 500;

/** One TCP connect to the old primary's PostgreSQL port: refused (no postmaster), open, or silent. */
async function probePort(deps: Deps, node: NodeConfig, timeoutMs: number): Promise<PortProbe> {
  if (!deps.net) return 'silent';
  try {
    await deps.net.tcpConnect(node.hostname, node.port, timeoutMs);
    return 'open';
  } catch (err) {
    return ((err as Error).cause as { code?: unknown } | undefined)?.code === 'ECONNREFUSED' ? 'refused' : 'silent';
  }
}

const logObservation = (deps: Deps, o: NodeObservation) =>
  deps.log.info(
    { step: 'observe', node_id: o.id, outcome: o.reachable ? 'ok' : 'failed' },
    o.reachable
      ? `node ${o.id}: ${o.inRecovery ? 'standby' : 'primary'} timeline ${o.timeline}${o.timelineSource === 'checkpoint' ? ' (from its last checkpoint: unsure)' : ''}, received ${o.receiveLsn !== undefined ? formatLsn(o.receiveLsn) : '-'}, replayed ${o.replayLsn !== undefined ? formatLsn(o.replayLsn) : '-'}`
      : `node ${o.id}: unreachable (${o.error})`,
  );

/** `maintenance`: the nodes in maintenance (read once, by runFailover's gate). */
async function lostPrimary(deps: Deps, failed: NodeConfig, input: FailoverInput, remainingMs: () => number, tl: Timeline, maintenance: number[]): Promise<FailoverResult> {
  const { log, config } = deps;
  const journal = failoverJournal(deps.state, input.runId, failed.id, failed.id);
  const resume = resumeFrom(deps.state.readJournal(journalName(failed.id)), failed.id, failed.id, deps.clock.now());
  if (resume) {
    log.info(
      { step: 'resume', node_id: failed.id, outcome: 'started', resumed_run: resume.runId },
      `continuing the unfinished failover run ${resume.runId} of ${resume.since}: ${describeResume(resume)}`,
    );
  }
  journal('started');

  // Observe every other node and probe the old primary's port at once; the fence order depends on the probe
  // alone, so a fence that must come first starts as soon as the probe has answered.
  const perNode = Math.min(2000, remainingMs() / 5);
  const others = config.nodes.filter((n) => n.id !== failed.id);
  const observing = Promise.all(others.map((n) => observeNode(deps, n, perNode)));
  const oldPort = await probePort(deps, failed, Math.min(PORT_PROBE_MS, perNode));
  // A fence that comes first gets half of what is left (the promotion, which must not fail, keeps the other
  // half); one that runs alongside the promotion may use all but the closing margin.
  const sshBound = config.ssh.connect_timeout_s * 1000 + 5000;
  const fenceBudget = (alongside = false) => Math.min(alongside ? remainingMs() - 1500 : remainingMs() / 2, sshBound);
  const order = fenceOrder(oldPort, failed.id, resume);
  let fencing: Promise<StopResult> | undefined;
  const startFence = (): Promise<StopResult> =>
    (fencing ??=
      order.order === 'skip'
        ? Promise.resolve({ outcome: resume!.fenced as StopResult['outcome'], detail: `fenced by run ${resume!.runId}` })
        : fenceNode(deps, failed, 'old primary', fenceBudget(order.order === 'alongside'), () => clusterTimeline));
  if (order.order === 'first') startFence();
  log.info({ step: 'fence-order', node_id: failed.id }, order.why);

  // The marker a fence leaves records the cluster's timeline: a promotion later (a newer timeline) outdates it.
  let clusterTimeline: number | undefined;
  observing.then((obs) => (clusterTimeline = Math.max(0, ...obs.map((o) => (o.reachable ? o.timeline : 0))) || undefined)).catch(() => {});
  let observations = await observing;
  observations.forEach((o) => logObservation(deps, o));
  const facts: FailoverFacts = { config, failedNode: failed.id, oldPrimary: input.oldPrimary, newMain: input.newMain, observations, oldPort, resume, fenced: deps.state.fenced(), maintenance };
  let plan = planFailover(facts);

  // A split brain: a writable node that is not the current primary (fenced, or on a timeline the cluster left)
  // is stopped, with standby.signal, before anything is promoted.
  const staleNotes: string[] = [];
  if (plan.staleFences.length) {
    for (const s of plan.staleFences) log.error({ step: 'split-brain', node_id: s.node, outcome: 'started' }, `split brain: ${s.why}; fencing it before promoting`);
    tl.add('split_brain', { nodes: plan.staleFences.map((s) => s.node), reasons: plan.staleFences.map((s) => s.why) });
    const results = await Promise.all(
      plan.staleFences.map((s) => {
        const o = observations.find((x) => x.id === s.node);
        return fenceNode(deps, nodeById(deps, s.node)!, 'stale primary', fenceBudget(), () => (o?.reachable ? o.timeline : undefined));
      }),
    );
    plan.staleFences.forEach((s, i) => staleNotes.push(`split brain: ${fenceSentence(s.node, 'stale primary', results[i]!)}`));
  }
  let fence: StopResult | undefined;
  if (order.order === 'first') {
    fence = await startFence();
    // A primary that was still running (pcp_promote_node -s, or one pgpool gave up on) sent its last WAL, the
    // shutdown checkpoint included, as it stopped: compare the positions the standbys have now.
    if (fence.outcome === 'stopped-fast' || fence.outcome === 'stopped-immediate') {
      observations = await Promise.all(others.map((n) => observeNode(deps, n, perNode)));
      observations.forEach((o) => logObservation(deps, o));
    }
    plan = planFailover({ ...facts, observations, fenceOutcome: fence.outcome });
  }
  const fenced = async (): Promise<{ fence: StopResult; note: string }> => {
    fence ??= await startFence();
    journal('fenced', { node: failed.id, outcome: fence.outcome });
    tl.add('old_primary_fenced', { node: failed.id, outcome: fence.outcome, standby_signal: fence.standbySignal ?? null });
    return { fence, note: [fenceSentence(failed.id, 'old primary', fence), ...staleNotes].join('; ') };
  };
  const decision = plan.decision;
  tl.add('candidate_chosen', {
    choice: decision.kind,
    why: decision.why,
    lsns: Object.fromEntries(observations.map((o) => [o.id, o.reachable ? formatLsn(o.receiveLsn ?? o.replayLsn ?? o.currentLsn ?? 0n) : null])),
  });

  if (decision.kind === 'adopt') {
    const { note: fenceNote } = await fenced();
    const target = nodeById(deps, decision.node)!;
    log.info({ step: 'choose', node_id: target.id, outcome: 'skipped' }, `${decision.why}: nothing to promote`);
    // An earlier run may have died between promotion and its last steps: finish them (both are idempotent).
    if (!plan.checkpoint.skip) await checkpoint(deps, target, remainingMs, journal);
    const [syncNote, attachNote] = await Promise.all([settleFollowers(deps, plan.followers!, followersBudget(remainingMs), tl), queueAttach(deps, plan.attachInPgpool)]);
    journal('done', { node: target.id });
    return { ok: true, summary: `node ${target.id} is already primary, nothing promoted; ${fenceNote}${andAlso(syncNote, attachNote)}`, promoted: target.id, timeline: tl };
  }
  let candidate: { node: number; why: string; lsn: bigint; replayLsn: bigint } | undefined;
  let noneWhy: string | undefined;
  let noneSummary: string | undefined;
  if (decision.kind === 'none') [noneWhy, noneSummary] = [decision.why, decision.summary];
  else if (decision.kind === 'await-target') {
    log.warn({ step: 'choose', node_id: decision.node, outcome: 'started' }, decision.why);
    // The target streamed from the stopped primary: its last WAL is on the way. Wait as long as the promotion can spare.
    const caughtUp = await waitForReceive(deps, nodeById(deps, decision.node)!, decision.lsn, Math.max(1000, remainingMs() / 2));
    if (caughtUp) candidate = { node: decision.node, why: `pgpool's new main node after a clean stop, caught up to ${formatLsn(decision.lsn)}`, lsn: decision.lsn, replayLsn: decision.candidate.replayLsn };
    else noneWhy = `${decision.why}; it did not catch up: promoting nobody (pgpool expects node ${decision.node} as the primary)`;
  } else {
    candidate = { node: decision.node, why: decision.why, lsn: decision.candidate.lsn, replayLsn: decision.candidate.replayLsn };
  }
  if (!candidate) {
    const { note: fenceNote } = await fenced();
    log.error({ step: 'choose', outcome: 'failed' }, noneWhy!);
    return { ok: false, summary: `primary node ${failed.id} lost and ${noneSummary ?? noneWhy}; ${fenceNote}`, timeline: tl };
  }
  const target = nodeById(deps, candidate.node)!;
  log.info({ step: 'choose', node_id: target.id, outcome: 'ok', reasons: decision.kind === 'promote' ? decision.reasons : [] }, `promoting node ${target.id}: ${candidate.why}`);
  if (resume?.chosen !== undefined && resume.chosen !== target.id) {
    log.info({ step: 'choose', node_id: target.id }, `the unfinished run ${resume.runId} had chosen node ${resume.chosen}; the data now points at node ${target.id}`);
  }
  journal('chosen', { node: target.id });
  const doubt = quorumDoubt(config, decision.kind === 'promote' ? decision.considered.length : 1, plan.synchronousNames);
  if (doubt) {
    log.warn({ step: 'choose', node_id: target.id, outcome: 'ok' }, doubt);
    tl.add('zero_loss_unproven', { reason: doubt });
  }

  if (candidate.lsn > candidate.replayLsn) await waitForReplay(deps, target, candidate.lsn, Math.min(3000, remainingMs() / 4));
  // The fence (when it was not needed first) starts as soon as the promotion request is on its way: PostgreSQL
  // promotes on its own while this process loads what the fence needs (the command runner).
  await promote(deps, target, Math.max(1000, remainingMs() - 800), () => void startFence());
  tl.add('promoted', { node: target.id });
  journal('promoted', { node: target.id });
  // A node maas-ha once fenced and has now promoted is the primary: its old marker says nothing any more.
  if (deps.state.fenced().some((m) => m.node === target.id)) deps.state.clearFenced(target.id);
  // The fence (an ssh round trip), the checkpoint and the standbys' repointing run side by side; pgpool sends no
  // client to the new primary before this hook ends.
  const [{ fence: f, note: fenceNote }, , , syncNote, attachNote] = await Promise.all([
    fenced(),
    checkpoint(deps, target, remainingMs, journal),
    firstWrite(deps, target, tl),
    settleFollowers(deps, plan.followers!, followersBudget(remainingMs), tl),
    queueAttach(deps, plan.attachInPgpool),
  ]);
  journal('done', { node: target.id });
  return {
    ok: f.outcome !== 'still-running',
    summary: `promoted node ${target.id} (${candidate.why}); ${fenceNote}${andAlso(doubt, syncNote, attachNote)}`,
    promoted: target.id,
    timeline: tl,
  };
}

function describeResume(r: Resume): string {
  const done = [
    r.fenced && `old primary ${r.fenced}`,
    r.chosen !== undefined && `chose node ${r.chosen}`,
    r.promoted !== undefined && `promoted node ${r.promoted}`,
    r.checkpointed && 'checkpointed',
  ].filter(Boolean);
  return done.length ? `it had ${done.join(', ')}` : 'it had done nothing yet';
}

/**
 * pg_rewind against a freshly promoted primary needs the new timeline in a checkpoint (docs/lab.md, "pg_rewind
 * needs a checkpoint on the new primary"). pgpool waits for this hook while no client can write, and a CHECKPOINT
 * of a busy database can take seconds: it gets CHECKPOINT_WAIT_MS, after which the checkpointer finishes it on its
 * own (dropping the connection does not stop a checkpoint) and the rewind in follow_primary, which checkpoints
 * again before it rewinds, is no worse off.
 */
const CHECKPOINT_WAIT_MS = 1500;

async function checkpoint(deps: Deps, target: NodeConfig, remainingMs: () => number, journal: ReturnType<typeof failoverJournal>): Promise<void> {
  const waitMs = Math.max(300, Math.min(CHECKPOINT_WAIT_MS, remainingMs() - 500));
  try {
    await deps.pg.query({ host: target.hostname, port: target.port }, 'CHECKPOINT', [], { timeoutMs: waitMs });
    journal('checkpointed', { node: target.id });
  } catch (err) {
    deps.log.warn(
      { step: 'checkpoint', node_id: target.id, outcome: 'failed' },
      `CHECKPOINT on the new primary not finished within ${waitMs} ms (${messageOf(err)}): left to the checkpointer; follow_primary checkpoints again before any rewind`,
    );
  }
}

/**
 * Proof that the new primary accepts writes, for the timeline: assigning a transaction id is a write that a
 * standby refuses ("cannot assign TransactionIds during recovery"). Reported, never fatal: the promotion stands.
 */
async function firstWrite(deps: Deps, target: NodeConfig, tl: Timeline): Promise<void> {
  try {
    // Committed locally: the standbys may not stream yet, and this proof must not wait for them.
    const [row] = await deps.pg.query<{ xid: string }>(
      { host: target.hostname, port: target.port },
      "SELECT set_config('synchronous_commit', 'local', true) AS sc, txid_current()::text AS xid",
      [],
      { timeoutMs: 1000 },
    );
    tl.add('first_write_accepted', { node: target.id, xid: row?.xid });
  } catch (err) {
    deps.log.warn({ step: 'first-write', node_id: target.id, outcome: 'failed' }, `node ${target.id} did not take a first write: ${messageOf(err)}`);
    tl.add('first_write_failed', { node: target.id, error: messageOf(err) });
  }
}

/**
 * Carries out plan.attachInPgpool: pcp_attach_node of the promoted node, which pgpool queues and performs once the
 * failover that runs this hook has ended (it then finds the node's role itself). Returns the closing line's phrase.
 */
async function queueAttach(deps: Deps, a: FailoverPlan['attachInPgpool']): Promise<string | undefined> {
  if (!a) return undefined;
  try {
    await deps.pcp.attach(a.node);
    deps.log.info({ step: 'pgpool-attach', node_id: a.node, outcome: 'ok' }, a.why);
    return `pgpool had no backend up: asked it to attach node ${a.node}`;
  } catch (err) {
    deps.log.error(
      { step: 'pgpool-attach', node_id: a.node, outcome: 'failed' },
      `${a.why}, but pcp_attach_node failed: ${messageOf(err)}; pgpool has no primary until someone runs pcp_attach_node -n ${a.node}`,
    );
    return `pgpool has no backend up and would not attach node ${a.node} (${messageOf(err)}): run pcp_attach_node -n ${a.node}`;
  }
}

/** The closing line's further phrases, each after "; " (none when there are none). */
const andAlso = (...notes: (string | undefined)[]) => notes.filter(Boolean).map((x) => `; ${x}`).join('');

/**
 * How long the new primary's standbys may take to stream from it: what the budget leaves, less the margin the
 * closing steps need. Past it synchronous replication is relaxed rather than making pgpool wait.
 */
const followersBudget = (remainingMs: () => number) => Math.max(1000, remainingMs() - 2000);

/**
 * With `ANY k (s1..sn)` (or FIRST k) an acknowledged commit is on at least k of the n listed standbys, but which
 * ones is unknown once the primary is gone. Only when at least n-k+1 of them answered is one of them sure to
 * hold every acknowledged commit; otherwise say so: the promotion goes ahead (a MAAS without a database is down),
 * but nobody may claim zero data loss.
 */
export function quorumDoubt(config: Config, answered: number, synchronousNames: string[] | undefined): string | undefined {
  if (!synchronousNames) return undefined;
  const n = synchronousNames.length;
  const k = config.replication.synchronous.count;
  const needed = n - k + 1;
  if (answered >= needed) return undefined;
  return `only ${answered} of ${n} synchronous standbys answered (${config.replication.synchronous.mode.toUpperCase()} ${k} needs ${needed} to be sure every acknowledged commit is on one of them): zero data loss cannot be proven`;
}

function fenceSentence(id: number, what: string, f: StopResult): string {
  const signal = f.standbySignal === false ? ' (standby.signal NOT written: it could start writable again)' : '';
  switch (f.outcome) {
    case 'not-running':
      return `${what} node ${id} is down${signal}`;
    case 'stopped-fast':
    case 'stopped-immediate':
      return `stopped ${what} node ${id} (${f.outcome === 'stopped-fast' ? 'clean shutdown' : 'immediate'})${signal}`;
    case 'still-running':
      return `${what} node ${id} could NOT be stopped: fenced-pending`;
    case 'unreachable':
      return `${what} node ${id} unreachable over ssh: fenced-pending`;
  }
}

/**
 * Stops a node that must not take writes (the old primary, or a stale one in a split brain) and leaves
 * standby.signal in its data directory; marks it fenced. When ssh cannot do it, the configured fencing command
 * (a power switch, a cloud API) is the last resort.
 */
async function fenceNode(deps: Deps, node: NodeConfig, what: string, timeoutMs: number, timeline: () => number | undefined): Promise<StopResult> {
  const { log, state, config } = deps;
  const started = deps.clock.now();
  let result: StopResult;
  try {
    result = await stopNode(deps, node, timeoutMs, { fence: true });
  } catch (err) {
    result = { outcome: 'unreachable', detail: messageOf(err) };
  }
  const fields = { step: 'fence', node_id: node.id, duration_ms: deps.clock.now() - started };
  const mark = (status: 'stopped' | 'pending', reason: string) => {
    const tli = timeline();
    state.markFenced({ node: node.id, ...(tli ? { timeline: tli } : {}), since: new Date(deps.clock.now()).toISOString(), status, reason });
  };
  if (result.outcome === 'not-running' || result.outcome === 'stopped-fast' || result.outcome === 'stopped-immediate') {
    log.info({ ...fields, outcome: 'ok' }, `${what} node ${node.id}: ${result.outcome}${result.standbySignal ? ', standby.signal written' : ''}`);
    mark('stopped', result.outcome);
    return result;
  }
  log.error({ ...fields, outcome: 'failed' }, `${what} node ${node.id} could not be stopped over ssh (${result.detail}): marked fenced-pending; maas-ha will not start it as a primary`);
  mark('pending', result.detail);
  const cmd = config.fencing.command;
  if (cmd) {
    const argv = cmd.map((a) => a.replaceAll('{host}', node.ssh_host).replaceAll('{port}', String(node.port)).replaceAll('{id}', String(node.id)));
    const r = await deps.shell.run(argv, { timeoutMs: config.fencing.timeout_ms });
    if (r.exitCode === 0) {
      log.info({ step: 'fence-command', node_id: node.id, outcome: 'ok', duration_ms: r.durationMs }, `fencing command for node ${node.id} succeeded`);
      mark('stopped', `fencing command ${argv[0]}`);
      return { outcome: 'stopped-immediate', detail: `fencing command ${argv[0]}` };
    }
    log.error({ step: 'fence-command', node_id: node.id, outcome: 'failed', duration_ms: r.durationMs }, `fencing command for node ${node.id} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
  }
  return result;
}

/** Waits until `node` has received WAL up to `target`; false when it has not within timeoutMs. */
async function waitForReceive(deps: Deps, node: NodeConfig, target: bigint, timeoutMs: number): Promise<boolean> {
  const deadline = deps.clock.now() + timeoutMs;
  for (;;) {
    const o = await observeNode(deps, node, Math.max(200, deadline - deps.clock.now()));
    if (o.reachable && (o.receiveLsn ?? o.replayLsn ?? 0n) >= target) return true;
    if (deps.clock.now() >= deadline) return false;
    await deps.clock.sleep(100);
  }
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

/**
 * pg_promote over a direct connection, else `pg_ctl promote` over ssh; then confirm. The time is split so that
 * both attempts and the confirmation fit in `timeoutMs` whatever hangs: pg_promote gets 60 % of it, the fallback
 * what is left but the confirmation's share.
 */
async function promote(deps: Deps, node: NodeConfig, timeoutMs: number, onRequested: () => void = () => {}): Promise<void> {
  const { log } = deps;
  const started = deps.clock.now();
  const confirmMs = Math.min(2000, Math.max(300, Math.floor(timeoutMs / 5)));
  const left = () => timeoutMs - (deps.clock.now() - started);
  const directMs = Math.max(500, Math.floor((timeoutMs - confirmMs) * 0.6));
  try {
    const rows = await deps.pg.query<{ promoted: boolean }>(
      { host: node.hostname, port: node.port },
      'SELECT pg_promote(wait => true, wait_seconds => $1) AS promoted',
      [Math.max(1, Math.floor(directMs / 1000))],
      { timeoutMs: directMs, onSent: onRequested },
    );
    if (rows[0]?.promoted !== true) throw new Error('pg_promote returned false');
  } catch (err) {
    // "recovery is not in progress" (SQLSTATE 55000): the node left recovery before this request arrived. Another
    // run promoted it (a second pgpool host's hook, an operator): the very node chosen here, so it stands.
    if (causeCode(err) === '55000') {
      const now = await observeNode(deps, node, Math.max(300, Math.min(confirmMs, left())));
      if (isWritable(now)) {
        log.info({ step: 'promote', node_id: node.id, outcome: 'ok', duration_ms: deps.clock.now() - started }, `node ${node.id} was already promoted (by another run): timeline ${now.timeline}, accepting writes`);
        onRequested();
        return;
      }
    }
    log.warn({ step: 'promote', node_id: node.id, outcome: 'failed' }, `pg_promote on node ${node.id} failed (${messageOf(err)}); trying ${controlArgv(node, 'promote')[0]} over ssh`);
    const sshMs = Math.max(500, left() - confirmMs);
    const argv = controlArgv(node, 'promote', { waitS: Math.max(1, Math.floor(sshMs / 1000) - 1) });
    onRequested();
    const r = await deps.ssh.run(node.ssh_host, argv, { timeoutMs: sshMs });
    // CommandError says "timed out after N ms" when ssh was killed at its deadline, which prints nothing itself.
    if (r.exitCode !== 0) throw new Error(`promotion of node ${node.id} failed: ${messageOf(err)}; then ${new CommandError(r, `${argv[0]} promote over ssh`).message}`);
  }
  const check = await observeNode(deps, node, Math.max(300, Math.min(confirmMs, left())));
  if (!isWritable(check)) {
    throw new Error(`node ${node.id} was promoted but ${check.reachable ? 'is still in recovery' : `no longer answers (${check.error})`}`);
  }
  log.info({ step: 'promote', node_id: node.id, outcome: 'ok', duration_ms: deps.clock.now() - started }, `node ${node.id} promoted: timeline ${check.timeline}, accepting writes`);
}

