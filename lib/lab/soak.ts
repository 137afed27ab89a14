// `maas-ha lab soak --cycles N`: the failover cycle, over and over, with nobody at the keyboard. Under one writer
// and one probe for the whole soak (lib/lab/campaign.ts), each cycle kills the current primary's postmaster with
// SIGKILL, lets pgpool and maas-ha's hooks fail over, brings the old primary back with `maas-ha recover` (run
// in-process, exactly as an operator would type it) and waits for full redundancy before the next kill. The
// primary moves with every failover, so the kills go round the nodes.
//
// A cycle "needs a manual step" when `maas-ha recover` fails or redundancy is not back in time: the soak then heals
// the lab itself (recover --force, else a rebuild) and counts the cycle. At the end every acknowledged row must be
// on the final primary and on each standby, and the probe must never have seen two writable nodes at once.

import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createLog, newRunId } from '../adapters/log.ts';
import { loadConfig } from '../config/load.ts';
import { createDeps } from '../wiring.ts';
import { messageOf } from '../errors.ts';
import { logRecords } from '../log-render.ts';
import type { Deps } from '../model/ports.ts';
import { judgePrimaries, observeAll } from '../observe.ts';
import { executeRecover, planRecover } from '../recovery/recover.ts';
import { gatherStatus } from '../status.ts';
import { campaignTarget, startCampaign, violations, type Campaign, type CampaignReport } from './campaign.ts';
import { readPid } from '../adapters/pid-file.ts';
import { labDown, labIsUp, labUp, waitFor, type Say } from './lab.ts';
import { labNodes, labPaths, type LabOptions } from './layout.ts';

/** From the kill until a new primary is promoted and a write sent after the kill is acknowledged. */
const FAILOVER_DEADLINE_MS = 60_000;
/** From the kill until full redundancy, `maas-ha recover` included. */
const REDUNDANCY_DEADLINE_MS = 180_000;
/** Full redundancy after a recover that returned late still gets this long. */
const AFTER_RECOVER_MS = 30_000;

export interface SoakCycle {
  cycle: number;
  killed: number;
  promoted: number | null;
  /** Seconds from the kill to the acknowledgement, by the promoted node, of the first write sent after it. */
  writes_back: number | null;
  /** Seconds from the kill to full redundancy, `maas-ha recover` included (null: not reached by maas-ha alone). */
  redundant: number | null;
  /** How `maas-ha recover` rebuilt the old primary (pg_rewind, base backup, ...), or why it did not. */
  recover: string;
  /** Why the cycle needed a manual step and what the soak did about it; null when maas-ha did it all. */
  manual: string | null;
}

export interface Spread {
  median: number | null;
  p90: number | null;
}

export interface SoakResult {
  ok: boolean;
  cycles: SoakCycle[];
  cycles_without_manual_step: number;
  acknowledged_rows: number;
  lost_rows: number;
  two_primary_samples: number;
  stale_acks: number;
  /** Seconds. */
  write_unavailability: Spread;
  /** Seconds. */
  time_to_redundancy: Spread;
  /** Every broken invariant and every manual step, as sentences. */
  problems: string[];
}

/** The nearest-rank percentile (p in 0..100) of the values; null for none. */
export function percentile(xs: readonly number[], p: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const spread = (xs: number[]): Spread => ({ median: percentile(xs, 50), p90: percentile(xs, 90) });

/** `cycle 3/50: killed node 1 (primary), node 2 promoted, writes back after 0.62 s, redundant after 9.1 s (recover: pg_rewind)` */
export function cycleLine(c: SoakCycle, of: number): string {
  const s = (v: number | null, digits: number) => (v === null ? 'never' : `${v.toFixed(digits)} s`);
  const head = `cycle ${c.cycle}/${of}: killed node ${c.killed} (primary), ${c.promoted === null ? 'no node promoted' : `node ${c.promoted} promoted`}, writes back after ${s(c.writes_back, 2)}`;
  if (c.manual === null) return `${head}, redundant after ${s(c.redundant, 1)} (recover: ${c.recover})`;
  return `${head}, MANUAL STEP: ${c.manual}`;
}

/** The summary; the cycle lines were printed as they happened. */
export function renderSoak(r: SoakResult): string {
  const s = (x: Spread, digits: number) => (x.median === null ? 'no samples' : `median ${x.median.toFixed(digits)} s, p90 ${x.p90!.toFixed(digits)} s`);
  return [
    `soak: ${r.cycles.length} cycle${r.cycles.length === 1 ? '' : 's'}, ${r.cycles_without_manual_step} without a manual step`,
    `  write unavailability (kill → first write acknowledged): ${s(r.write_unavailability, 2)}`,
    `  time to redundancy (kill → every node a streaming, attached standby again): ${s(r.time_to_redundancy, 1)}`,
    `  ${r.acknowledged_rows} acknowledged writes, ${r.lost_rows} lost; ${r.two_primary_samples} two-primary probe samples; ${r.stale_acks} writes acknowledged by an old primary`,
    r.ok ? 'soak passed' : `soak FAILED:\n${r.problems.map((x) => `  - ${x}`).join('\n')}`,
  ].join('\n');
}

const labDeps = (o: LabOptions): Deps => createDeps(loadConfig(labPaths(o.dir).config), createLog('soak', newRunId(), 'warn'));

function fencedNodes(deps: Deps): number[] {
  try {
    return deps.state.fenced().map((m) => m.node);
  } catch {
    return [];
  }
}

/** The current primary by the one rule (lib/observe.ts), or undefined. */
async function currentPrimary(deps: Deps): Promise<number | undefined> {
  return judgePrimaries(await observeAll(deps, 2000), { fenced: fencedNodes(deps) }).current;
}

/**
 * What stands between the lab and full redundancy, as phrases (none: redundant): a primary, every other node a
 * standby streaming from it and attached in pgpool, no problem `maas-ha status` would show, and, when the lab
 * runs synchronous replication, commits waiting for a standby again (pgpool's failback hook restores that after
 * the attach: a kill before it could lose acknowledged writes).
 */
async function missingRedundancy(deps: Deps, o: LabOptions): Promise<string[]> {
  const s = await gatherStatus(deps);
  const missing = [...s.problems];
  if (s.primary === null) return missing.length ? missing : ['no primary'];
  if (s.rows.length !== o.nodes) missing.push(`${s.rows.length} of ${o.nodes} nodes in the status`);
  for (const r of s.rows) {
    if (r.pgpoolStatus !== 'up') missing.push(`node ${r.id} is ${r.pgpoolStatus} in pgpool`);
    if (r.id !== s.primary && r.pgRole !== 'standby') missing.push(`node ${r.id} is ${r.pgRole}`);
  }
  if (o.synchronous === 'any' && missing.length === 0) {
    const n = labNodes(o).find((x) => x.id === s.primary)!;
    const [waits] = await deps.pg.query<{ n: number }>(
      { host: n.host, port: n.port },
      "SELECT count(*)::int AS n FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') AND current_setting('synchronous_standby_names') <> ''",
    );
    if (!waits?.n) missing.push('commits are not synchronous yet');
  }
  return missing;
}

/** waitFor (lib/lab/lab.ts) up to an instant, answering undefined instead of throwing when it is not reached. */
const until = <T>(deadline: number, probe: () => Promise<T | undefined>, everyMs = 200): Promise<T | undefined> =>
  waitFor('', Math.max(0, deadline - Date.now()), probe, everyMs).catch(() => undefined);

const HOOK_EXES: Record<string, string> = { 'maas-ha-failover': 'failover', 'maas-ha-follow-primary': 'follow_primary', 'maas-ha-failback': 'failback' };

/**
 * Whether every event hook pgpool started after `offset` of its log has written its closing line: `maas-ha
 * recover` must not race a follow_primary still busy with the same node.
 */
function hooksIdle(logFile: string, offset: number): boolean {
  if (!existsSync(logFile)) return true;
  const size = statSync(logFile).size;
  if (size <= offset) return true;
  const fd = openSync(logFile, 'r');
  const buf = Buffer.alloc(size - offset);
  try {
    readSync(fd, buf, 0, buf.length, offset);
  } finally {
    closeSync(fd);
  }
  const text = buf.toString('utf8');
  const pending = new Map<string, number>();
  for (const m of text.matchAll(/execute command: \S*\/(maas-ha-[a-z-]+) /g)) {
    const hook = HOOK_EXES[m[1]!];
    if (hook) pending.set(hook, (pending.get(hook) ?? 0) + 1);
  }
  for (const r of logRecords(text)) if (r.step === 'done' && typeof r.hook === 'string' && pending.has(r.hook)) pending.set(r.hook, pending.get(r.hook)! - 1);
  return [...pending.values()].every((n) => n <= 0);
}

interface Recovered {
  ok: boolean;
  /** The method on success, the reason on failure. */
  text: string;
}

/** `maas-ha recover NODE --json [...extra] --config <the lab's>`, in this process, its output captured. */
/**
 * `maas-ha recover NODE` as the CLI runs it (lib/recovery/recover.ts: plan, then carry out), without the CLI: the
 * lab sits below lib/cli and imports no command.
 */
async function recover(o: LabOptions, node: number, opts: { force?: boolean } = {}): Promise<Recovered> {
  const deps = labDeps(o);
  const target = deps.config.nodes.find((n) => n.id === node);
  if (!target) return { ok: false, text: `node ${node} is not in ${deps.config.source}` };
  try {
    const d = await planRecover(deps, { node: target, method: 'auto', force: opts.force ?? false, initial: false, direct: false, measure: false });
    if (d.kind === 'refuse') return { ok: false, text: `refused: ${d.why}` };
    const r = await executeRecover(deps, d);
    return r.ok ? { ok: true, text: r.method } : { ok: false, text: r.error.split('\n')[0]! };
  } catch (err) {
    return { ok: false, text: messageOf(err).split('\n')[0]! };
  }
}

export async function runSoak(o: LabOptions, cycles: number, say: Say): Promise<SoakResult> {
  const p = labPaths(o.dir);
  if (!labIsUp(o)) await labUp(o, say);
  let deps = labDeps(o);
  const before = await missingRedundancy(deps, o).catch((err: unknown) => [messageOf(err)]);
  if (before.length) {
    say(`lab is not fully redundant (${before.join('; ')}): rebuilding it`);
    await labDown(o, say, { purge: true });
    await labUp(o, say);
    deps = labDeps(o);
  }

  // The writer and the probe run for the whole soak; only a rebuild of the lab (a manual step) starts new ones.
  const maxMs = cycles * (REDUNDANCY_DEADLINE_MS + 120_000) + 300_000;
  const reports: CampaignReport[] = [];
  const startWriting = async (): Promise<Campaign> => {
    const c = await startCampaign(campaignTarget(o), { maxMs });
    if (!(await until(Date.now() + 20_000, async () => c.acks.length >= 50 || undefined))) throw new Error('the writer got no 50 writes acknowledged through pgpool within 20 s');
    return c;
  };
  let campaign = await startWriting();

  /** The last resort: a fresh lab (and a fresh writer: the old table goes with it). */
  const rebuild = async () => {
    reports.push(await campaign.stop());
    await labDown(o, () => {}, { purge: true });
    await labUp(o, () => {});
    deps = labDeps(o);
    campaign = await startWriting();
  };

  /** Heals a lab that maas-ha did not bring back by itself: recover --force every node that needs it, else rebuild. */
  const heal = async (): Promise<string> => {
    const s = await gatherStatus(deps).catch(() => undefined);
    const broken = s && s.primary !== null ? s.rows.filter((r) => r.id !== s.primary && (r.pgRole !== 'standby' || r.pgpoolStatus !== 'up' || r.problems.length > 0)) : [];
    const did: string[] = [];
    for (const r of broken) {
      const forced = await recover(o, r.id, { force: true });
      did.push(`recover ${r.id} --force ${forced.ok ? `(${forced.text})` : `failed (${forced.text})`}`);
    }
    if (s && s.primary !== null && (await until(Date.now() + 60_000, async () => ((await missingRedundancy(deps, o)).length === 0 ? true : undefined)))) {
      return `healed by ${did.join(', ') || 'waiting'}`;
    }
    await rebuild();
    return `healed by ${[...did, 'rebuilding the lab'].join(', ')}`;
  };

  const done: SoakCycle[] = [];
  for (let i = 1; i <= cycles; i++) {
    // Only after a heal that did not hold is there no primary here: the cycle starts from a fresh lab, as manual.
    const found = await currentPrimary(deps);
    const rebuiltFirst = found === undefined;
    if (rebuiltFirst) await rebuild();
    const killed = found ?? (await currentPrimary(deps));
    if (killed === undefined) throw new Error('a freshly built lab has no primary');
    const node = labNodes(o).find((n) => n.id === killed)!;
    const mark = existsSync(p.pgpoolLog) ? statSync(p.pgpoolLog).size : 0;
    const pid = readPid(join(node.data, 'postmaster.pid'));
    if (!pid) throw new Error(`no postmaster running for ${node.name}`);
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const since = (t: number) => Number(((t - t0) / 1000).toFixed(3));
    const cycle: SoakCycle = { cycle: i, killed, promoted: null, writes_back: null, redundant: null, recover: 'not run', manual: null };

    // 1. Failover: a new primary by the one rule, and a write sent after the kill acknowledged through pgpool by
    //    that primary. (A backend of the killed postmaster lives on until it notices its parent is gone, and may
    //    still acknowledge a row for a few milliseconds: that is not writes being back.)
    const c = campaign;
    const back = await until(t0 + FAILOVER_DEADLINE_MS, async () => {
      if (cycle.promoted === null) {
        const now = await currentPrimary(deps);
        if (now !== undefined && now !== killed) cycle.promoted = now;
      }
      return cycle.promoted === null ? undefined : c.acksAfter(t0, cycle.promoted)[0];
    }, 100);
    if (back) cycle.writes_back = since(back.ackAt);

    if (!back) {
      cycle.manual = `${cycle.promoted === null ? 'no new primary' : 'no write acknowledged'} within ${FAILOVER_DEADLINE_MS / 1000} s of the kill; ${await heal()}`;
    } else {
      // 2. Once the hooks pgpool started are done (follow_primary may still be busy with the old primary), the
      //    operator's one command; then full redundancy.
      await until(t0 + FAILOVER_DEADLINE_MS, async () => hooksIdle(p.pgpoolLog, mark) || undefined);
      const r = await recover(o, killed);
      cycle.recover = r.text;
      const deadline = Math.max(t0 + REDUNDANCY_DEADLINE_MS, Date.now() + AFTER_RECOVER_MS);
      let last: string[] = [];
      const ok =
        r.ok &&
        (await until(deadline, async () => {
          last = await missingRedundancy(deps, o);
          return last.length === 0 || undefined;
        }));
      if (ok) cycle.redundant = since(Date.now());
      else if (!r.ok) cycle.manual = `maas-ha recover ${killed} failed (${r.text}); ${await heal()}`;
      else cycle.manual = `not redundant ${((deadline - t0) / 1000).toFixed(0)} s after the kill (${last.join('; ')}); ${await heal()}`;
    }
    if (rebuiltFirst) cycle.manual = `no primary at the start of the cycle: rebuilt the lab${cycle.manual ? `; then ${cycle.manual}` : ''}`;
    done.push(cycle);
    say(cycleLine(cycle, cycles));
  }

  reports.push(await campaign.stop());
  const problems = [
    ...done.filter((c) => c.manual !== null).map((c) => `cycle ${c.cycle}: manual step: ${c.manual}`),
    ...reports.flatMap((r) => violations(r)),
  ];
  const lostRows = reports.reduce((n, r) => n + new Set(r.lost.flatMap((l) => l.rows)).size, 0);
  const twoPrimaries = reports.reduce((n, r) => n + r.twoPrimaries.length, 0);
  const stale = reports.reduce((n, r) => n + r.staleAcks.length, 0);
  return {
    ok: problems.length === 0,
    cycles: done,
    cycles_without_manual_step: done.filter((c) => c.manual === null).length,
    acknowledged_rows: reports.reduce((n, r) => n + r.acks.length, 0),
    lost_rows: lostRows,
    two_primary_samples: twoPrimaries,
    stale_acks: stale,
    write_unavailability: spread(done.flatMap((c) => (c.writes_back === null ? [] : [c.writes_back]))),
    time_to_redundancy: spread(done.flatMap((c) => (c.manual === null && c.redundant !== null ? [c.redundant] : []))),
    problems,
  };
}
