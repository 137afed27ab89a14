// The use case behind `maas-ha recover NODE`, which a person runs on a pgpool host: bring a node back as a standby
// of the current primary (a failed standby, the old primary after a failover, a brand-new standby with --initial).
// First decide (planRecover: what pgpool and PostgreSQL say, the rebuild plan of ./plan.ts, and which way to run
// it), then act (executeRecover). With pgpool reachable it asks pgpool (pcp_recovery_node), which runs maas-ha's
// recovery hooks (./hooks.ts) inside the primary and attaches the node when it answers; without pgpool, or when a
// method is forced, it runs the very same primitives (./rebuild.ts) itself over ssh, then attaches the node
// through pcp. The CLI (lib/cli/recover.ts) only parses, renders the plan and the outcome, and draws the progress.

import { describeMark } from '../maintenance.ts';
import type { NodeConfig } from '../config/types.ts';
import { messageOf, OperationError } from '../errors.ts';
import type { Deps, PcpNodeInfo } from '../model/ports.ts';
import { observeAll, streamsFrom } from '../observe.ts';
import { shScript } from '../pgctl.ts';
import { isAttached, PCP_CUT } from '../pgpool/pcp-output.ts';
import { ATTACH_WAIT_MS, attachAndWait, waitPgpoolNode } from '../pgpool/wait.ts';
import { describeMethod, describePlan, planRebuild, type RebuildFacts, type RebuildOptions, type RebuildPlan, type RefusalReason } from './plan.ts';
import { pollBasebackup, type ProgressSample } from './progress.ts';
import { gatherFacts, observeDisk, pickPrimary, prepareStandby, startPrepared, unfence, waitStreaming } from './rebuild.ts';
import { LOG_REASON_SCRIPT } from './scripts.ts';

export interface RecoverInput {
  node: NodeConfig;
  method: RebuildOptions['method'];
  /** Rebuild even a healthy standby, or a node running as a second primary (and detach it from pgpool first). */
  force: boolean;
  /** A node that never was a member. */
  initial: boolean;
  /** Leave pgpool out: no pcp_recovery_node, no attach. */
  direct: boolean;
  /** Measure the data directory and the primary too (a dry run shows the sizes). */
  measure: boolean;
}

export interface PgpoolView {
  nodes: Map<number, PcpNodeInfo>;
  primary?: number;
  error?: string;
}

/** Which way the rebuild runs: pgpool's online recovery, or the primitives over ssh from here. */
export type RecoverVia = 'pcp' | 'direct';

export type RecoverDecision =
  | { kind: 'refuse'; node: NodeConfig; why: string; reason: RefusalReason }
  /** A standby that already streams the primary's timeline, which pgpool has down (a host back from a crash whose
   *  PostgreSQL started as a standby, say): nothing to rebuild, pgpool only has to take it back. */
  | { kind: 'attach'; node: NodeConfig; primary: NodeConfig; timeline: number; why: string; startedMs: number }
  | {
      kind: 'rebuild';
      node: NodeConfig;
      primary: NodeConfig;
      facts: RebuildFacts;
      plan: Extract<RebuildPlan, { kind: 'rebuild' }>;
      via: RecoverVia;
      /** What pgpool says about the node; absent when pgpool does not know it or was not asked. */
      info?: PcpNodeInfo;
      /** What pgpool said; absent with `direct`. */
      pgpool?: PgpoolView;
      /** The plan as numbered steps (describePlan). */
      steps: string[];
      /** When the run began (deps.clock), for its duration. */
      startedMs: number;
    };

/** Observe pgpool and PostgreSQL, plan the rebuild, pick the way. Throws OperationError when there is no primary. */
export async function planRecover(deps: Deps, input: RecoverInput): Promise<RecoverDecision> {
  const { config } = deps;
  const { node } = input;
  const startedMs = deps.clock.now();
  // A node under planned work is the operator's until `maas-ha maintenance off`, which runs this use case itself.
  const mark = deps.state.maintenance().find((m) => m.node === node.id);
  if (mark) return { kind: 'refuse', node, why: `node ${node.id} is in maintenance (${describeMark(mark)}): maas-ha maintenance off ${node.id} brings it back`, reason: 'maintenance' };
  // What pgpool thinks (when it answers) and what PostgreSQL says.
  const pgpool = input.direct ? undefined : await pgpoolView(deps);
  const obs = await observeAll(deps, 3000);
  const pick = pickPrimary(obs, pgpool?.primary);
  if ('error' in pick) throw new OperationError(pick.error);
  const primary = config.nodes.find((n) => n.id === pick.id)!;
  const facts = await gatherFacts(deps, node, primary, { sizes: input.measure });
  const info = pgpool?.nodes.get(node.id);
  const timeline = facts.primaryFacts.timeline;
  if (info && !isAttached(info) && !input.force && streamsFrom(facts.observation, primary, timeline)) {
    const why = `node ${node.id} already streams timeline ${timeline} from node ${primary.id} and pgpool has it ${info.statusName}: nothing to rebuild, attach it (pcp_attach_node)`;
    return { kind: 'attach', node, primary, timeline, why, startedMs };
  }
  const plan = planRebuild(facts, { method: input.method, force: input.force, initial: input.initial, basebackup: true, now: new Date(deps.clock.now()) });
  if (plan.kind === 'refuse') return { kind: 'refuse', node, why: plan.why, reason: plan.reason };
  // pgpool runs its own choice of method; a forced method is carried out here and attached through pcp after.
  const via: RecoverVia = info && input.method === 'auto' ? 'pcp' : 'direct';
  const steps = describePlan(facts, plan, config.recovery.keep_old_data_dirs);
  return { kind: 'rebuild', node, primary, facts, plan, via, info, pgpool, steps, startedMs };
}

/** What the person watching is told while it runs; every one optional (--json listens to none). */
export interface RecoverEvents {
  /** pgpool has the node up (reachable only with --force): it is detached first. */
  detaching?(node: number): void;
  /** The direct path's rebuild step (stop, rewind or copy and swap) is done; the node is started next. */
  prepared?(how: string, seconds: number): void;
  /** A base backup's progress; the copy is polled only when this is given. */
  progress?(sample: ProgressSample): void;
  /** The copy is over (or failed): whatever draws the progress ends its line. */
  progressEnd?(): void;
}

/** What became of pgpool's view of the node. */
export type PgpoolOutcome = 'attached' | 'unanswered' | 'unknown-node' | 'not-asked';

export type RecoverOutcome =
  | {
      ok: true;
      node: number;
      /** The primary it streams from: the one it was rebuilt from, or a new one after a failover meanwhile. */
      primary: number;
      rebuiltFrom: number;
      via: RecoverVia;
      /** The method carried out, in the operator's words (describeMethod). */
      method: string;
      timeline: number;
      attached: boolean;
      pgpool: PgpoolOutcome;
      /** Replaced data directories beside the data directory now. */
      kept: string[];
      /** Of those, what this run moved aside. */
      moved: string[];
      seconds: number;
      /** The rebuild step alone (stop, rewind or copy and swap), when this process ran it. */
      rebuildSeconds?: number;
    }
  | { ok: false; node: number; error: string; seconds: number; cause: unknown };

interface Done {
  method: string;
  timeline: number;
  streamsFrom: NodeConfig;
  kept: string[];
  attached: boolean;
  rebuildSeconds?: number;
}

/** Carry out a decision to rebuild. A failure is an outcome (with its cause), not a throw. */
export async function executeRecover(deps: Deps, d: Exclude<RecoverDecision, { kind: 'refuse' }>, events: RecoverEvents = {}): Promise<RecoverOutcome> {
  if (d.kind === 'attach') return executeAttach(deps, d);
  const { node, plan, facts, info } = d;
  const copying = plan.method === 'basebackup' || plan.fallback;
  const poller = events.progress && copying ? pollBasebackup(deps, node, plan.copyBytes ?? facts.primaryFacts.sizeBytes, events.progress) : undefined;
  const endProgress = async () => {
    await poller?.stop();
    events.progressEnd?.();
  };
  const seconds = () => (deps.clock.now() - d.startedMs) / 1000;
  let done: Done;
  try {
    if (info && isAttached(info)) {
      // Only reachable with --force: pgpool refuses to recover a node it has up, and must not send clients to a
      // node that is about to stop; take it out first (failover_command runs for a lost standby: no promotion).
      events.detaching?.(node.id);
      await deps.pcp.detach(node.id);
      await waitPgpool(deps, node.id, (i) => i.status === 3, 15_000, 'detached');
    }
    done = d.via === 'pcp' ? await throughPgpool(deps, d, endProgress) : await directly(deps, d, endProgress, events);
  } catch (err) {
    await endProgress();
    return { ok: false, node: node.id, error: messageOf(err), seconds: seconds(), cause: err };
  }
  // Only what this run moved aside; older copies (kept by recovery.keep_old_data_dirs) are in `kept`.
  const moved = done.kept.filter((x) => !facts.disk.oldDirs.includes(x));
  const pgpool: PgpoolOutcome = done.attached ? 'attached' : d.pgpool?.error ? 'unanswered' : d.pgpool ? 'unknown-node' : 'not-asked';
  return {
    ok: true,
    node: node.id,
    primary: done.streamsFrom.id,
    rebuiltFrom: d.primary.id,
    via: d.via,
    method: done.method,
    timeline: done.timeline,
    attached: done.attached,
    pgpool,
    kept: done.kept,
    moved,
    seconds: seconds(),
    rebuildSeconds: done.rebuildSeconds,
  };
}

/** Carry out an attach decision: pcp_attach_node, then wait until pgpool shows the node up. */
async function executeAttach(deps: Deps, d: Extract<RecoverDecision, { kind: 'attach' }>): Promise<RecoverOutcome> {
  const seconds = () => (deps.clock.now() - d.startedMs) / 1000;
  try {
    await attach(deps, d.node.id, ATTACH_WAIT_MS);
  } catch (err) {
    return { ok: false, node: d.node.id, error: messageOf(err), seconds: seconds(), cause: err };
  }
  unfence(deps, d.node);
  return {
    ok: true,
    node: d.node.id,
    primary: d.primary.id,
    rebuiltFrom: d.primary.id,
    via: 'pcp',
    method: ATTACH_ONLY,
    timeline: d.timeline,
    attached: true,
    pgpool: 'attached',
    kept: [],
    moved: [],
    seconds: seconds(),
  };
}

/** The method of an attach decision, in the operator's words. */
const ATTACH_ONLY = 'an attach (it already streamed; nothing rebuilt)';

/** pcp_recovery_node: pgpool runs the recovery hooks inside the primary, then attaches the node. */
async function throughPgpool(deps: Deps, d: Extract<RecoverDecision, { kind: 'rebuild' }>, endProgress: () => Promise<void>): Promise<Done> {
  const { config } = deps;
  const { node, primary, plan, facts } = d;
  const budget = config.budgets_ms.recovery_1st_stage + config.budgets_ms.remote_start + 60_000;
  try {
    // pcp_recovery_node waits for both recovery hooks and for pgpool's attach; the 4.3.5 PCP worker can hang for
    // ever (docs/pgpool-hooks.md, "PCP"), hence the bound.
    await sendRecovery(deps, node.id, budget);
  } catch (err) {
    await endProgress();
    const reason = await reasonFromPrimaryLog(deps, primary, d.startedMs);
    throw new OperationError(
      `${messageOf(err)}${reason ? `\n  maas-ha's recovery hook on node ${primary.id} says: ${reason}` : `\n  the reason is in node ${primary.id}'s PostgreSQL log (lines with "hook":"recovery_1st_stage" or "remote_start")`}`,
      { cause: err },
    );
  }
  await endProgress();
  const { timeline, primary: streamsFrom } = await waitStreaming(deps, node, primary, config.recovery.stream_timeout_ms);
  await waitPgpool(deps, node.id, isAttached, 15_000, 'attached');
  const after = await observeDisk(deps, node);
  // pgpool ran the rebuild, so only the disk tells how: a directory moved aside during a planned pg_rewind means
  // pg_rewind failed and a base backup replaced it (pg_rewind's words are in the primary's log).
  const fellBack = plan.method === 'rewind' && after.oldDirs.some((x) => !facts.disk.oldDirs.includes(x));
  const method = fellBack ? describeMethod('basebackup', '') : describeMethod(plan.method);
  unfence(deps, node);
  return { method, timeline, streamsFrom, kept: after.oldDirs, attached: true };
}

/**
 * pcp_recovery_node, sent a second time only when pgpool cut its connection (PCP_CUT: its PCP process restarts
 * about a second after every failover and failback, which is when an operator runs `maas-ha recover`) and pgpool,
 * asked again, still has the node down. Sending it again is safe whatever the first one got to do: a preparation
 * still running on the database host holds the node's rebuild lock, so the second fails there and changes
 * nothing; a node the first one prepared but never started is planned afresh from what is on its disk (a start,
 * or a rewind once more). A node pgpool shows up meanwhile was recovered: the caller checks that it streams. Anything else, or a
 * second cut, is the command's failure.
 */
export async function sendRecovery(deps: Pick<Deps, 'pcp' | 'log'>, id: number, timeoutMs: number): Promise<void> {
  try {
    await deps.pcp.recover(id, { timeoutMs });
    return;
  } catch (err) {
    if (!PCP_CUT.test(messageOf(err))) throw err;
    let info: PcpNodeInfo;
    try {
      info = await deps.pcp.nodeInfo(id);
    } catch {
      throw err;
    }
    if (isAttached(info)) return;
    deps.log.warn(
      { step: 'pcp_recovery_node', node_id: id, outcome: 'failed' },
      `pgpool cut pcp_recovery_node's connection (its PCP process restarts about a second after a failover or failback) and still has node ${id} down: sending it once more`,
    );
  }
  await deps.pcp.recover(id, { timeoutMs });
}

/** The rebuild primitives over ssh from here, then attach through pcp when pgpool knows the node. */
async function directly(deps: Deps, d: Extract<RecoverDecision, { kind: 'rebuild' }>, endProgress: () => Promise<void>, events: RecoverEvents): Promise<Done> {
  const { config } = deps;
  const { node, facts, plan, info } = d;
  const prepared = await prepareStandby(deps, facts, plan, { budgetMs: config.budgets_ms.recovery_1st_stage, now: () => new Date(deps.clock.now()) });
  await endProgress();
  const method = describeMethod(prepared.method, prepared.rewindFailure);
  const rebuildSeconds = prepared.durationMs / 1000;
  events.prepared?.(method, rebuildSeconds);
  const { timeline, primary: streamsFrom, kept } = await startPrepared(deps, facts, prepared, {
    startTimeoutMs: config.recovery.start_timeout_ms,
    streamTimeoutMs: config.recovery.stream_timeout_ms,
  });
  let attached = false;
  if (info) {
    await attach(deps, node.id, 15_000);
    attached = true;
  }
  return { method, timeline, streamsFrom, kept, attached, rebuildSeconds };
}

/**
 * pcp_node_info for every node; an unreachable pgpool is not an error here (the direct path is the answer), and a
 * node pgpool does not know (a new standby not yet in pgpool.conf: "invalid node ID") is absent from `nodes`. Any
 * other failure (pgpool shutting down, say) counts as pgpool not answering.
 */
async function pgpoolView(deps: Deps): Promise<PgpoolView> {
  const results = await Promise.allSettled(deps.config.nodes.map((n) => deps.pcp.nodeInfo(n.id)));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !/invalid node/i.test(messageOf(r.reason)));
  if (failure) return { nodes: new Map(), error: messageOf(failure.reason).split('\n')[0] };
  const infos = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const nodes = new Map(infos.map((i) => [i.id, i]));
  return { nodes, primary: infos.find((i) => i.role === 'primary' && isAttached(i))?.id };
}

/** pcp_attach_node, then the wait (lib/pgpool/wait.ts); an OperationError when pgpool does not show it up in time. */
async function attach(deps: Deps, id: number, timeoutMs: number): Promise<void> {
  const last = await attachAndWait(deps, id, timeoutMs);
  if (last !== undefined) throw new OperationError(`pgpool does not show node ${id} attached after ${timeoutMs} ms (${last})`);
}

async function waitPgpool(deps: Deps, id: number, ok: (i: PcpNodeInfo) => boolean, timeoutMs: number, what: string): Promise<void> {
  const last = await waitPgpoolNode(deps, id, ok, timeoutMs);
  if (last !== undefined) throw new OperationError(`pgpool does not show node ${id} ${what} after ${timeoutMs} ms (${last})`);
}

/** The last error line maas-ha's recovery hooks wrote into the primary's server log since `since` (best effort). */
async function reasonFromPrimaryLog(deps: Deps, primary: NodeConfig, since: number): Promise<string | undefined> {
  const file = primary.control.method === 'pg_ctl' ? primary.control.log_file : `/var/log/postgresql/postgresql-${primary.control.version}-${primary.control.name}.log`;
  const r = await deps.ssh.run(primary.ssh_host, shScript(LOG_REASON_SCRIPT, file), { timeoutMs: deps.config.ssh.connect_timeout_s * 1000 + 5000 }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  const records = r.stdout
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l.slice(l.indexOf('{'))) as { time?: string; msg?: string; step?: string }];
      } catch {
        return [];
      }
    })
    .filter((x) => x.msg && (!x.time || Date.parse(x.time) >= since - 5000));
  return (records.filter((x) => x.step === 'done').pop() ?? records.pop())?.msg;
}
