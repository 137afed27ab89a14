// The guard's use case: observe (this node from its own host, its peers over libpq), plan (./plan.ts), act.
// Everything it does to the world goes through GuardDeps: PostgreSQL queries (pg), local commands (shell:
// pg_ctl / pg_ctlcluster as the node's configured control method builds them, pg_controldata) and the
// standby.signal file (./files.ts). Every call is bounded, so one pass ends within a few seconds whatever the
// network does; a demotion in particular ends within DEMOTE_BUDGET_MS.

import type { Config, NodeConfig } from '../config/types.ts';
import { messageOf } from '../errors.ts';
import type { Clock, Log, Pg, Shell } from '../model/ports.ts';
import { observeNode, type NodeObservation } from '../observe.ts';
import { controlArgv } from '../pgctl.ts';
import type { GuardFiles } from './files.ts';
import { planCheck, planStartCheck, type GuardFacts, type GuardPlan, type LocalState } from './plan.ts';

export interface GuardDeps {
  config: Config;
  log: Log;
  shell: Shell;
  pg: Pg;
  clock: Clock;
  files: GuardFiles;
}

/** Each peer gets this long to answer; they are asked at the same time. */
export const PEER_TIMEOUT_MS = 2000;
/** This node's own PostgreSQL, on the same host: it answers at once or is not fit to decide from. */
export const SELF_TIMEOUT_MS = 1500;
/** Local commands (pg_ctl status, pg_controldata). */
export const LOCAL_TIMEOUT_MS = 3000;
/** From the decision to a stopped PostgreSQL: standby.signal, fast stop, immediate stop if fast did not finish. */
export const DEMOTE_BUDGET_MS = 5000;

export type GuardMode = 'check' | 'start-check';

export interface GuardRun {
  facts: GuardFacts;
  plan: GuardPlan;
  /** false: the action the plan asked for failed (the summary says how). */
  ok: boolean;
  /** The run in one sentence: what it saw and what it did. */
  summary: string;
  dryRun: boolean;
}

/** Pure: "Latest checkpoint's TimeLineID" from pg_controldata's output (run with LC_ALL=C). */
export function parseCheckpointTimeline(controldata: string): number | undefined {
  const m = /^Latest checkpoint's TimeLineID:\s*(\d+)\s*$/m.exec(controldata);
  return m ? Number(m[1]) : undefined;
}

type RunState = { kind: 'running' } | { kind: 'stopped' } | { kind: 'unknown'; why: string };

/** `pg_ctl status` (or pg_ctlcluster's): exit 0 running, 3 not running (both tools), anything else unknown. */
async function runState(deps: Pick<GuardDeps, 'shell'>, node: NodeConfig, timeoutMs = LOCAL_TIMEOUT_MS): Promise<RunState> {
  const r = await deps.shell.run(controlArgv(node, 'status'), { timeoutMs });
  if (r.exitCode === 0) return { kind: 'running' };
  if (r.exitCode === 3) return { kind: 'stopped' };
  const detail = r.timedOut ? `timed out after ${r.durationMs} ms` : (r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.exitCode}`;
  return { kind: 'unknown', why: `${r.argv[0]} status: ${detail}` };
}

async function checkpointTimeline(deps: Pick<GuardDeps, 'shell' | 'log'>, node: NodeConfig): Promise<number | undefined> {
  const r = await deps.shell.run([`${node.bin_dir}/pg_controldata`, '-D', node.data_directory], { timeoutMs: LOCAL_TIMEOUT_MS, env: { LC_ALL: 'C', LANG: 'C' } });
  const tli = r.exitCode === 0 ? parseCheckpointTimeline(r.stdout) : undefined;
  if (tli === undefined) deps.log.warn({ step: 'controldata', node_id: node.id }, `pg_controldata -D ${node.data_directory} gave no timeline: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`);
  return tli;
}

/** This node as its own host sees it: over libpq first (role and timeline), its control tool when it does not answer. */
async function localState(deps: GuardDeps, node: NodeConfig, mode: GuardMode): Promise<LocalState> {
  const o = await observeNode(deps, node, SELF_TIMEOUT_MS);
  if (o.reachable) return o.inRecovery ? { kind: 'standby', timeline: o.timeline } : { kind: 'primary', timeline: o.timeline };
  const state = await runState(deps, node);
  if (state.kind === 'unknown') return { kind: 'unknown', why: state.why };
  if (state.kind === 'running') return { kind: 'unknown', why: `running but does not answer over libpq (${o.error})` };
  return mode === 'start-check' ? { kind: 'stopped', checkpointTimeline: await checkpointTimeline(deps, node) } : { kind: 'stopped' };
}

export async function gatherFacts(deps: GuardDeps, node: NodeConfig, mode: GuardMode): Promise<GuardFacts> {
  const others = deps.config.nodes.filter((n) => n.id !== node.id);
  const local = await localState(deps, node, mode);
  // The periodic check acts only on a running primary: a standby, stopped or unknown node needs no peer's word,
  // so the guards of a healthy cluster cost one local query each per interval.
  const needPeers = mode === 'start-check' || local.kind === 'primary';
  const peers = needPeers ? await Promise.all(others.map((n) => observeNode(deps, n, PEER_TIMEOUT_MS))) : [];
  return { node: node.id, local, standbySignal: deps.files.hasStandbySignal(node.data_directory), peers };
}

function writeSignal(deps: GuardDeps, node: NodeConfig): { ok: true; text: string } | { ok: false; text: string } {
  try {
    const r = deps.files.writeStandbySignal(node.data_directory);
    const text = r === 'written' ? `wrote ${node.data_directory}/standby.signal` : 'standby.signal already there';
    deps.log.info({ step: 'standby-signal', node_id: node.id, outcome: r === 'written' ? 'ok' : 'skipped' }, text);
    return { ok: true, text };
  } catch (err) {
    const text = `could not write standby.signal: ${messageOf(err)}`;
    deps.log.error({ step: 'standby-signal', node_id: node.id, outcome: 'failed' }, text);
    return { ok: false, text };
  }
}

/**
 * standby.signal first (so whatever starts this node next starts a standby), then stop: fast (a clean shutdown
 * checkpoint, docs/lab.md, "A clean stop"), immediate when fast has not finished, all within budgetMs. The node is left
 * stopped; `maas-ha recover` rewinds or rebuilds it to follow the current primary.
 */
export async function demote(deps: GuardDeps, node: NodeConfig, budgetMs = DEMOTE_BUDGET_MS): Promise<{ ok: boolean; text: string }> {
  const started = deps.clock.now();
  const left = () => budgetMs - (deps.clock.now() - started);
  const signal = writeSignal(deps, node);
  const done: string[] = [signal.text];
  const stop = async (mode: 'fast' | 'immediate', timeoutMs: number): Promise<boolean> => {
    // pg_ctl's own wait ends before our hard limit kills it, so it reports what it saw.
    const waitS = Math.max(1, Math.floor((timeoutMs - 400) / 1000));
    const r = await deps.shell.run(controlArgv(node, 'stop', { mode, waitS }), { timeoutMs });
    if (r.exitCode === 0) {
      deps.log.info({ step: `stop-${mode}`, node_id: node.id, outcome: 'ok', duration_ms: r.durationMs }, `stopped PostgreSQL (${mode})`);
      return true;
    }
    const state = await runState(deps, node, Math.max(300, Math.min(1000, left())));
    const detail = r.timedOut ? `timed out after ${r.durationMs} ms` : (r.stderr || r.stdout).trim().split('\n').pop() ?? `exit ${r.exitCode}`;
    deps.log.warn({ step: `stop-${mode}`, node_id: node.id, outcome: state.kind === 'stopped' ? 'ok' : 'failed', duration_ms: r.durationMs }, `${mode} stop: ${detail}; now ${state.kind}`);
    return state.kind === 'stopped';
  };
  // Half the budget for the fast stop, what is left (less a margin for the last status) for the immediate one.
  if (await stop('fast', Math.max(1500, Math.floor(budgetMs / 2)))) {
    done.push('stopped (fast)');
  } else if (await stop('immediate', Math.max(1000, left() - 500))) {
    done.push('stopped (immediate: fast did not finish)');
  } else {
    done.push(`STILL RUNNING after ${deps.clock.now() - started} ms`);
    return { ok: false, text: done.join(', ') };
  }
  return { ok: signal.ok, text: done.join(', ') };
}

/** One pass: observe, plan, act (or only say what it would do). */
export async function runGuard(deps: GuardDeps, node: NodeConfig, mode: GuardMode, opts: { dryRun: boolean }): Promise<GuardRun> {
  const facts = await gatherFacts(deps, node, mode);
  const plan = mode === 'check' ? planCheck(facts) : planStartCheck(facts);
  const base = { facts, plan, dryRun: opts.dryRun };
  if (plan.action === 'none') return { ...base, ok: true, summary: plan.reason };
  if (opts.dryRun) {
    const would =
      plan.action === 'demote'
        ? `write standby.signal into ${node.data_directory}, then stop PostgreSQL fast (immediate if fast has not finished), within ${DEMOTE_BUDGET_MS / 1000} s`
        : `write standby.signal into ${node.data_directory}`;
    return { ...base, ok: true, summary: `dry run, nothing done: ${plan.reason}; would ${would}` };
  }
  deps.log.warn({ step: 'plan', node_id: node.id }, plan.reason);
  if (plan.action === 'demote') {
    const r = await demote(deps, node);
    return { ...base, ok: r.ok, summary: `${r.ok ? 'demoted' : 'demotion FAILED'}: ${plan.reason}: ${r.text}` };
  }
  const r = writeSignal(deps, node);
  return { ...base, ok: r.ok, summary: `${plan.reason}: ${r.text}` };
}

/** Compact, JSON-safe view of a run (LSNs are bigints; peers reduced to what the decision used). */
export function runJson(node: NodeConfig, mode: GuardMode, r: GuardRun): Record<string, unknown> {
  const peer = (o: NodeObservation) =>
    o.reachable ? { id: o.id, reachable: true, role: o.inRecovery ? 'standby' : 'primary', timeline: o.timeline } : { id: o.id, reachable: false, error: o.error };
  return {
    mode,
    node: node.id,
    dry_run: r.dryRun,
    local: r.facts.local,
    standby_signal: r.facts.standbySignal,
    peers: r.facts.peers.map(peer),
    plan: r.plan,
    ok: r.ok,
    summary: r.summary,
  };
}

/**
 * `watch`: the check every intervalMs until stopped. A run's closing line is logged when it says something new,
 * when it acted or failed, and otherwise once a minute, so a quiet cluster does not flood the log.
 */
export async function watch(
  deps: GuardDeps,
  node: NodeConfig,
  opts: { intervalMs: number; dryRun: boolean; stopped: () => boolean; sleep: (ms: number) => Promise<void> },
): Promise<void> {
  let last = '';
  let lastAt = 0;
  while (!opts.stopped()) {
    const t0 = deps.clock.now();
    let line: { level: 'info' | 'warn' | 'error'; text: string; ok: boolean; acted: boolean };
    try {
      const r = await runGuard(deps, node, 'check', { dryRun: opts.dryRun });
      line = { level: !r.ok ? 'error' : r.plan.level, text: r.summary, ok: r.ok, acted: r.plan.action !== 'none' };
    } catch (err) {
      line = { level: 'error', text: `check failed: ${messageOf(err)}`, ok: false, acted: false };
    }
    const now = deps.clock.now();
    if (line.acted || !line.ok || line.text !== last || now - lastAt >= 60_000) {
      deps.log[line.level]({ step: 'done', node_id: node.id, outcome: line.ok ? 'ok' : 'failed', duration_ms: now - t0 }, `guard check: ${line.text}`);
      last = line.text;
      lastAt = now;
    }
    if (!opts.stopped()) await opts.sleep(Math.max(0, opts.intervalMs - (deps.clock.now() - t0)));
  }
}
