// The two online-recovery use cases pgpool reaches through the primary's PostgreSQL (docs/pgpool-hooks.md, "Online recovery"):
// recovery_1st_stage rebuilds the target as a standby of this primary, pgpool_remote_start starts it and proves
// it streams. Both run on the primary's host, as the PostgreSQL user, inside a backend; a non-zero exit aborts
// the recovery and pgpool reports only "pgpool_recovery failed", so every failure here ends in one sentence
// (in the PostgreSQL log, where pgpool's error points) that says what happened to the data and what to do.

import type { NodeConfig } from '../config/types.ts';
import { messageOf, OperationError } from '../errors.ts';
import type { Deps } from '../model/ports.ts';
import { observeAll, observeNode } from '../observe.ts';
import type { RecoveryArgs, RemoteStartArgs } from '../pgpool/args.ts';
import { describeMethod, planRebuild, primaryCandidates, resolveRemoteStart, resolveTarget } from './plan.ts';
import { gatherFacts, pickPrimary, prepareStandby, settle, startStandby } from './rebuild.ts';

export interface RecoveryOutcome {
  ok: boolean;
  summary: string;
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);

function journal(deps: Deps, entry: Record<string, unknown>): void {
  // The journal lives in state_dir, which a database host may not have: a record is not worth failing for.
  try {
    deps.state.journal('recovery', entry);
  } catch (err) {
    deps.log.debug({ step: 'journal', outcome: 'skipped' }, `no journal entry: ${messageOf(err)}`);
  }
}

function asOperation<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    throw new OperationError(messageOf(err), { cause: err });
  }
}

/** The node pgpool names as the primary: by host and port (4.3+), else the candidate that answers as a primary. */
async function findPrimary(deps: Deps, args: RecoveryArgs, target: NodeConfig): Promise<NodeConfig> {
  const candidates = primaryCandidates(deps.config.nodes, args, target);
  if (candidates.length === 1) return candidates[0]!;
  if (candidates.length === 0) {
    throw new OperationError(
      `no node in maas-ha's configuration is the primary pgpool names (${args.primaryHost ?? args.primaryDataDir}, port ${args.primaryPort}); keep pgpool's backend_* settings and nodes[] identical`,
    );
  }
  const pick = pickPrimary(await Promise.all(candidates.map((n) => observeNode(deps, n, 3000))));
  if ('error' in pick) throw new OperationError(`cannot tell which of nodes ${candidates.map((n) => n.id).join(', ')} is the primary running this recovery`);
  return candidates.find((n) => n.id === pick.id)!;
}

/** recovery_1st_stage: rebuild the target (pg_rewind, else a base backup beside its data directory). */
export async function runFirstStage(deps: Deps, args: RecoveryArgs, remainingMs: () => number): Promise<RecoveryOutcome> {
  const target = asOperation(() => resolveTarget(deps.config.nodes, args));
  const primary = await findPrimary(deps, args, target);
  const facts = await gatherFacts(deps, target, primary);
  // pgpool only recovers a node it has detached; whatever runs there now is what the operator asked to replace.
  const plan = planRebuild(facts, { method: 'auto', force: true, initial: false, basebackup: true, now: new Date(deps.clock.now()) });
  if (plan.kind === 'refuse') return { ok: false, summary: `node ${target.id} not recovered: ${plan.why}` };
  journal(deps, { step: 'planned', node: target.id, primary: primary.id, method: plan.method, why: plan.why });
  const r = await prepareStandby(deps, facts, plan, { budgetMs: Math.max(30_000, remainingMs() - 10_000), now: () => new Date(deps.clock.now()) });
  journal(deps, { step: 'prepared', node: target.id, method: r.method, old_dir: r.oldDir ?? null });
  const how = describeMethod(r.method, r.rewindFailure);
  return {
    ok: true,
    summary:
      (r.method === 'start'
        ? `node ${target.id} needs no rebuild (${plan.why}); its standby settings name node ${primary.id} (${seconds(r.durationMs)} s)`
        : `node ${target.id} rebuilt by ${how} from node ${primary.id} in ${seconds(r.durationMs)} s`) +
      `${r.oldDir ? `; its previous data directory is kept at ${r.oldDir}` : ''}; pgpool_remote_start starts it next`,
  };
}

/** pgpool_remote_start: start the rebuilt node, prove it streams the primary's timeline, then tidy up. */
export async function runRemoteStart(deps: Deps, args: RemoteStartArgs, remainingMs: () => number): Promise<RecoveryOutcome> {
  const { config } = deps;
  const node = asOperation(() => resolveRemoteStart(config.nodes, args.targetHost, args.targetDataDir));
  const obs = await observeAll(deps, 3000);
  const pick = pickPrimary(obs.filter((o) => o.id !== node.id));
  if ('error' in pick) return { ok: false, summary: `node ${node.id} not started: ${pick.error}` };
  const primary = config.nodes.find((n) => n.id === pick.id)!;
  const budget = () => Math.max(5000, remainingMs() - 5000);
  const { timeline } = await startStandby(deps, node, primary, {
    startTimeoutMs: Math.min(config.recovery.start_timeout_ms, budget()),
    streamTimeoutMs: Math.min(config.recovery.stream_timeout_ms, budget()),
  });
  const { kept, pruned } = await settle(deps, node).catch((err: unknown) => {
    deps.log.warn({ step: 'settle', node_id: node.id, outcome: 'failed' }, `tidying up failed: ${messageOf(err)}`);
    return { kept: [] as string[], pruned: [] as string[] };
  });
  journal(deps, { step: 'streaming', node: node.id, primary: primary.id, timeline, kept, pruned });
  return {
    ok: true,
    summary:
      `node ${node.id} started and streams timeline ${timeline} from node ${primary.id}` +
      `${kept.length ? `; kept ${kept.join(', ')}` : ''}${pruned.length ? `; deleted ${pruned.join(', ')}` : ''}`,
  };
}
