// `maas-ha history`: what the journals in this host's state_dir say happened, as events (one failover, one online
// recovery, one move of the VIP), newest last, and the timeline of one of them. Pure: the CLI hands it the journals
// it read (lib/adapters/state.ts keeps them bounded: 90 days, 500 entries each), so the tables below test it.
//
// The journals are the only source, so history knows what the hooks journal today: failovers of a primary
// (failover-node<N>, lib/failover/journal.ts), online recovery (recovery, lib/recovery/hooks.ts) and the VIP hooks
// (vip, lib/vip/escalate.ts). follow_primary, failback and `maas-ha switchover` write no journal: they are not listed.

import { RESUME_WINDOW_MS } from './failover/journal.ts';
import { UsageError } from './errors.ts';

export type EventKind = 'failover' | 'recovery' | 'vip';
/** done: it finished; failed: it said it failed; unfinished: it stopped (or is still running) before its last step. */
export type EventOutcome = 'done' | 'failed' | 'unfinished';

export type JournalEntry = Record<string, unknown>;

export interface HistoryEvent {
  /** Stable while its first entry is kept: the kind and the UTC second it started (`failover-20250301T101502`). */
  id: string;
  kind: EventKind;
  /** What happened, in a few words. */
  what: string;
  /** The nodes (or hosts) it concerned, in words: `node 0 → node 2`. */
  nodes: string;
  started: string;
  ended: string;
  /** From the first entry to the last; null when the event is one entry (nothing to measure). */
  durationMs: number | null;
  outcome: EventOutcome;
  /** The journal it came from and the hook runs it took (failover runs resumed by a retry share one event). */
  journal: string;
  runs: number;
  steps: JournalEntry[];
}

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? v : undefined);
const time = (e: JournalEntry) => Date.parse(str(e.at) ?? '');

/** Entries with a readable time, in time order (appends are in order already; a stable sort keeps equal times so). */
const timed = (entries: readonly JournalEntry[]) => entries.filter((e) => !Number.isNaN(time(e))).sort((a, b) => time(a) - time(b));

function event(kind: EventKind, journal: string, steps: JournalEntry[], what: string, nodes: string, outcome: EventOutcome, runs = 1): Omit<HistoryEvent, 'id'> {
  const first = steps[0]!;
  const last = steps.at(-1)!;
  return {
    kind, what, nodes, outcome, journal, runs, steps,
    started: str(first.at)!,
    ended: str(last.at)!,
    durationMs: steps.length > 1 ? time(last) - time(first) : null,
  };
}

/**
 * A failover journal's events. One run is one hook invocation (its run_id); a run that did not reach `done` is
 * continued by the next run of the same failed node that starts within RESUME_WINDOW_MS (the rule resumeFrom applies
 * when it resumes), so the two are one event.
 */
export function failoverEvents(journal: string, entries: readonly JournalEntry[]): Omit<HistoryEvent, 'id'>[] {
  const runs: JournalEntry[][] = [];
  for (const e of timed(entries)) {
    const run = runs.find((r) => r[0]!.run_id === e.run_id && r[0]!.failed === e.failed);
    if (run) run.push(e);
    else if (typeof e.run_id === 'string') runs.push([e]);
  }
  const groups: JournalEntry[][][] = [];
  for (const run of runs) {
    const prev = groups.at(-1);
    const last = prev?.at(-1);
    const continues =
      last !== undefined &&
      last[0]!.failed === run[0]!.failed &&
      last[0]!.old_primary === run[0]!.old_primary &&
      !last.some((e) => e.step === 'done') &&
      time(run[0]!) - time(last[0]!) <= RESUME_WINDOW_MS;
    if (continues) prev!.push(run);
    else groups.push([run]);
  }
  return groups.map((g) => {
    const steps = g.flat();
    const failed = num(steps[0]!.failed);
    const promoted = num(steps.filter((e) => e.step === 'promoted' || e.step === 'done').at(-1)?.node);
    const fence = str(steps.filter((e) => e.step === 'fenced').at(-1)?.outcome);
    const done = steps.some((e) => e.step === 'done');
    const what = `primary node ${failed ?? '?'} lost${fence ? `, fenced (${fence})` : ''}${promoted !== undefined ? `, node ${promoted} primary` : ''}${g.length > 1 ? ` (${g.length} runs)` : ''}`;
    return event('failover', journal, steps, what, `node ${failed ?? '?'} → ${promoted !== undefined ? `node ${promoted}` : 'none'}`, done ? 'done' : 'unfinished', g.length);
  });
}

/**
 * The recovery journal's events: `planned` (recovery_1st_stage) opens one for its node; `prepared` and `streaming`
 * (pgpool_remote_start) join the open one of the same node; `streaming` ends it. A `streaming` with nothing open (a
 * journal pruned in between) is an event of its own.
 */
export function recoveryEvents(journal: string, entries: readonly JournalEntry[]): Omit<HistoryEvent, 'id'>[] {
  const events: JournalEntry[][] = [];
  const open = new Map<number, JournalEntry[]>();
  for (const e of timed(entries)) {
    const node = num(e.node);
    if (node === undefined) continue;
    let current = e.step === 'planned' ? undefined : open.get(node);
    if (!current) {
      current = [];
      events.push(current);
      open.set(node, current);
    }
    current.push(e);
    if (e.step === 'streaming') open.delete(node);
  }
  return events.map((steps) => {
    const node = num(steps[0]!.node)!;
    const primary = num(steps.filter((e) => e.primary !== undefined).at(-1)?.primary);
    const method = str(steps.filter((e) => e.method !== undefined).at(-1)?.method);
    const streams = steps.find((e) => e.step === 'streaming');
    const what = `node ${node} rebuilt${method ? ` (${method})` : ''}${streams ? `, streams timeline ${num(streams.timeline) ?? '?'}` : ''}`;
    return event('recovery', journal, steps, what, `node ${node}${primary !== undefined ? ` from node ${primary}` : ''}`, streams ? 'done' : 'unfinished');
  });
}

/** The VIP journal's events: each escalation (this host took the VIP) and de-escalation (it gave it up) is one entry. */
export function vipEvents(journal: string, entries: readonly JournalEntry[]): Omit<HistoryEvent, 'id'>[] {
  return timed(entries)
    .filter((e) => e.event === 'escalated' || e.event === 'de-escalated')
    .map((e) => {
      const unreachable = Array.isArray(e.unreachable) ? e.unreachable.filter((u): u is string => typeof u === 'string') : [];
      const what =
        e.event === 'escalated'
          ? `this host took the VIP${e.via === 'arping' ? ' (from arping_cmd)' : ''}${unreachable.length ? `; peers not answering: ${unreachable.join(', ')}` : ''}`
          : 'this host gave up the VIP';
      return event('vip', journal, [e], what, 'this host', e.ok === false ? 'failed' : 'done');
    });
}

/** Which events a journal holds, by its name (lib/adapters/state.ts journalNames); undefined for a journal history does not read. */
function eventsOf(journal: string, entries: readonly JournalEntry[]): Omit<HistoryEvent, 'id'>[] | undefined {
  if (/^failover-node\d+$/.test(journal)) return failoverEvents(journal, entries);
  if (journal === 'recovery') return recoveryEvents(journal, entries);
  if (journal === 'vip') return vipEvents(journal, entries);
  return undefined;
}

/** `failover-20250301T101502`: the kind and the UTC second the event started. */
const idOf = (kind: EventKind, started: string) => `${kind}-${new Date(started).toISOString().slice(0, 19).replace(/[-:]/g, '')}`;

/** Every event of these journals, oldest first, each with its id (a second event of a kind in the same second gets -2, -3…). */
export function buildHistory(journals: readonly { name: string; entries: readonly JournalEntry[] }[]): HistoryEvent[] {
  const all = journals.flatMap((j) => eventsOf(j.name, j.entries) ?? []);
  all.sort((a, b) => Date.parse(a.started) - Date.parse(b.started) || a.journal.localeCompare(b.journal));
  const seen = new Map<string, number>();
  return all.map((e) => {
    const base = idOf(e.kind, e.started);
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { id: n === 1 ? base : `${base}-${n}`, ...e };
  });
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * `--since`: an ISO 8601 date or date-time (`2025-03-01`, `2025-03-01T10:00`, `2025-03-01T10:00:00Z`; without a
 * zone, UTC: the journals are UTC and so is the output) or a duration back from now (`90m`, `2h`, `3d`, `1w`).
 */
export function parseSince(text: string, now: number): number {
  const t = text.trim();
  const rel = /^(\d+)([smhdw])$/.exec(t);
  if (rel) return now - Number(rel[1]) * UNITS[rel[2]!]!;
  const iso = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/.exec(t);
  if (iso) {
    const at = Date.parse(`${iso[1]}T${iso[2] ?? '00:00'}${iso[3] ?? 'Z'}`);
    if (!Number.isNaN(at)) return at;
  }
  throw new UsageError(`--since: expected an ISO date or time (2025-03-01, 2025-03-01T10:00Z) or a duration like 90m, 2h, 3d, 1w; got "${text}"`);
}

/** The events that ended at or after `since`. */
export const historySince = (events: readonly HistoryEvent[], since: number | undefined) =>
  since === undefined ? [...events] : events.filter((e) => Date.parse(e.ended) >= since);

export const formatDuration = (ms: number | null) => (ms === null ? '-' : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : ms < 3_600_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 3_600_000).toFixed(1)} h`);

const when = (iso: string) => `${iso.slice(0, 19).replace('T', ' ')}Z`;

/** One line per event: WHEN, ID, WHAT, NODES, TOOK, OUTCOME. */
export function renderHistory(events: readonly HistoryEvent[], stateDir: string): string {
  if (events.length === 0) return `no events in the journals of ${stateDir}`;
  const head = ['WHEN (UTC)', 'ID', 'NODES', 'TOOK', 'OUTCOME', 'WHAT'];
  const rows = events.map((e) => [when(e.started), e.id, e.nodes, formatDuration(e.durationMs), e.outcome, e.what]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line), '', `the timeline of one: maas-ha history ID`].join('\n');
}

/** The fields of a step worth showing beside its name (what every entry of the event carries is left out). */
const OMIT = new Set(['at', 'cluster', 'step', 'event', 'run_id', 'failed', 'old_primary']);

/** The event's journal steps, each at its offset from the first. */
export function renderTimeline(e: HistoryEvent): string {
  const t0 = Date.parse(e.started);
  const out = [`${e.id}: ${e.what}`, `  ${e.kind}, ${e.nodes}, ${e.outcome}, took ${formatDuration(e.durationMs)}; journal ${e.journal}${e.runs > 1 ? `, ${e.runs} runs` : ''}`];
  let run: unknown;
  for (const s of e.steps) {
    if (e.runs > 1 && s.run_id !== run) {
      run = s.run_id;
      out.push(`  run ${String(run)}:`);
    }
    const fields = Object.entries(s)
      .filter(([k, v]) => !OMIT.has(k) && v !== null && !(Array.isArray(v) && v.length === 0))
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
    const offset = `+${((Date.parse(str(s.at)!) - t0) / 1000).toFixed(2)} s`.padStart(11);
    out.push(`  ${when(str(s.at)!)} ${offset}  ${String(s.step ?? s.event ?? '?').padEnd(12)}${fields.join(' ')}`.trimEnd());
  }
  return out.join('\n');
}

/** --json: the events as they are (times in ISO 8601 UTC); their steps only when asked for one event's timeline. */
export const historyJson = (events: readonly HistoryEvent[], withSteps: boolean): unknown[] => events.map(({ steps, ...e }) => (withSteps ? { ...e, steps } : e));

const ID = /^(failover|recovery|vip)-\d{8}T\d{6}(-\d+)?$/;

/** The event `maas-ha history ID` names: a malformed id, or one the journals do not hold, is a usage error naming it. */
export function findEvent(events: readonly HistoryEvent[], id: string, stateDir: string): HistoryEvent {
  if (!ID.test(id)) throw new UsageError(`history: "${id}" is not an event id (like failover-20250301T101502; \`maas-ha history\` lists them)`);
  const e = events.find((x) => x.id === id);
  if (!e) throw new UsageError(`history: no event ${id} in the journals of ${stateDir} (\`maas-ha history\` lists them; old entries are pruned)`);
  return e;
}
