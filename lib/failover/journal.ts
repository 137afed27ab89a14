// The failover journal: one JSON line per step a failover run completed, kept per failed node in the state
// directory. pgpool re-runs failover_command when it retries a failover, an operator re-runs it by hand, and a
// hook killed at its budget leaves a half-done failover behind; the next run reads what the last one finished
// and continues from there instead of starting over (an unreachable old primary is not fenced twice, which
// would cost a second ssh connect timeout). Pure, apart from the StateStore it is given.

import type { StateStore } from '../model/ports.ts';

export type FailoverStep = 'started' | 'fenced' | 'chosen' | 'promoted' | 'checkpointed' | 'done';

export interface FailoverEntry {
  at: string;
  run_id: string;
  /** The event: failed node and the primary before it. A new failover of the same node is a new event. */
  failed: number;
  old_primary: number;
  step: FailoverStep;
  /** chosen / promoted: the node; fenced: the old primary. */
  node?: number;
  /** fenced: how (not-running, stopped-fast, ...). */
  outcome?: string;
}

/** What an unfinished earlier run of the same event got done. */
export interface Resume {
  runId: string;
  since: string;
  fenced?: string;
  chosen?: number;
  promoted?: number;
  checkpointed: boolean;
}

/** How long an unfinished run stays worth continuing: a retry comes within seconds, not hours. */
export const RESUME_WINDOW_MS = 15 * 60_000;

export const journalName = (failed: number) => `failover-node${failed}`;

/**
 * The last run of this event that did not reach `done`, if it started within the window. A run that finished
 * (done) leaves nothing to resume: a later failover of the same node is a new event.
 */
export function resumeFrom(entries: readonly Record<string, unknown>[], failed: number, oldPrimary: number, now: number): Resume | undefined {
  const mine = entries.filter((e): e is Record<string, unknown> & FailoverEntry => e.failed === failed && e.old_primary === oldPrimary && typeof e.run_id === 'string');
  const last = mine.at(-1);
  if (!last || last.step === 'done') return undefined;
  const run = mine.filter((e) => e.run_id === last.run_id);
  const started = run[0]!;
  if (now - Date.parse(started.at) > RESUME_WINDOW_MS) return undefined;
  const step = (s: FailoverStep) => run.filter((e) => e.step === s).at(-1);
  return {
    runId: last.run_id,
    since: started.at,
    fenced: step('fenced')?.outcome,
    chosen: step('chosen')?.node,
    promoted: step('promoted')?.node,
    checkpointed: step('checkpointed') !== undefined,
  };
}

/** Appends this run's steps to the event's journal. */
export function failoverJournal(state: StateStore, runId: string, failed: number, oldPrimary: number) {
  return (step: FailoverStep, fields: { node?: number; outcome?: string } = {}) =>
    state.journal(journalName(failed), { run_id: runId, failed, old_primary: oldPrimary, step, ...fields });
}
