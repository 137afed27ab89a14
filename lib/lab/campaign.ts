// The fault campaign's instruments, shared by `maas-ha lab soak` (lib/lab/soak.ts) and the e2e fault campaign
// (test/e2e/campaign.test.ts through test/support/campaign.ts): while faults are injected into a lab, a writer
// records every COMMIT pgpool acknowledged (which row, which backend, on which timeline, when) and a probe asks
// every node directly, every 50 ms, whether it accepts writes. After the lab has healed, `stop()` checks the
// writer's acknowledgements against the rows every node holds, and the probe's samples against "one primary at
// a time"; `violations` turns every breach into a sentence that names rows, times and nodes.
//
// Like the rest of lib/lab this is tooling around a lab, run by root: it talks to the nodes with pg directly.
// The faults themselves (a clean stop, a start by hand, a black hole) are the tests' (test/support/campaign.ts).

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { waitFor } from './lab.ts';
import { LAB_PGPOOL_PORT, labNodes, pgpoolHost, type LabOptions } from './layout.ts';

/** A PostgreSQL node as the campaign sees it: its id in pgpool and where it listens. */
export interface CampaignNode {
  id: number;
  host: string;
  port: number;
}

/** What the campaign needs of a lab: pgpool's address (the writer) and every node (the probe, the row check). */
export interface CampaignTarget {
  pgpool: { host: string; port: number };
  nodes: CampaignNode[];
}

export const campaignTarget = (o: LabOptions): CampaignTarget => ({ pgpool: { host: pgpoolHost(o), port: LAB_PGPOOL_PORT }, nodes: labNodes(o) });

/** How often the probe asks every node, and how long it waits for a connection or an answer. */
export const PROBE_EVERY_MS = 50;
const PROBE_TIMEOUT_MS = 400;
/** The issue's grace for an isolated old primary once its partition heals. */
export const ISOLATED_GRACE_MS = 5000;

const TABLE = 'maas_ha_campaign';

export interface Ack {
  seq: number;
  sentAt: number;
  ackAt: number;
  /** The backend that acknowledged it (inet_server_addr() through pgpool), null if the address is not a node. */
  node: number | null;
  /** The timeline that backend wrote the row on. */
  tli: number;
}

export type ProbeState = 'writable' | 'read-only' | 'unreachable';

export interface ProbeSample {
  /** Index of the 50 ms tick that sent the question: samples of one tick were asked at the same moment. */
  tick: number;
  /** When the question was sent. */
  sentAt: number;
  /** When the answer (or the failure) arrived: what a writable answer proves holds at that moment at the latest. */
  t: number;
  node: number;
  state: ProbeState;
  tli?: number;
  error?: string;
}

export interface TwoPrimaries {
  tick: number;
  t: number;
  nodes: number[];
}

export interface StaleAck {
  ack: Ack;
  /** The newer primary the probe had seen writable before the row was sent, and when. */
  newer: { node: number; tli: number; seenAt: number };
}

export interface LostRows {
  node: number;
  role: 'primary' | 'standby';
  rows: number[];
}

export interface CampaignReport {
  startedAt: number;
  stoppedAt: number;
  acks: Ack[];
  writerErrors: number;
  /** The writer's errors by message, most frequent first. */
  writerErrorKinds: [string, number][];
  samples: ProbeSample[];
  /** Acknowledged rows missing on a node, per node checked. */
  lost: LostRows[];
  /** Nodes whose rows were read (the primary and every standby that caught up with it). */
  checked: number[];
  /** Why the rows could not be checked somewhere (no single primary, a standby that did not catch up). */
  uncheckable: string[];
  twoPrimaries: TwoPrimaries[];
  staleAcks: StaleAck[];
}

export interface Campaign {
  readonly startedAt: number;
  readonly acks: readonly Ack[];
  readonly samples: readonly ProbeSample[];
  /** Acknowledged rows sent after `t` (optionally by one backend). */
  acksAfter(t: number, node?: number): Ack[];
  /** The latest sample of a node whose question was sent after `after`. */
  lastSample(node: number, after?: number): ProbeSample | undefined;
  stop(): Promise<CampaignReport>;
}

// ---- pg connections that never hang the campaign

type Client = InstanceType<typeof pg.Client>;

function newClient(host: string, port: number, timeoutMs: number, name: string): Client {
  const c = new pg.Client({
    host,
    port,
    user: 'postgres',
    database: 'postgres',
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    application_name: name,
    keepAlive: true,
  });
  c.on('error', () => {});
  return c;
}

/** Closes a connection without waiting for the peer: a black-holed server never answers a Terminate. */
function drop(c: Client | undefined): void {
  if (!c) return;
  try {
    (c as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
  } catch {
    // not connected
  }
  void c.end().catch(() => {});
}

/** A polite close (Terminate, then the server hangs up) when the server answers within 500 ms, else `drop`. */
async function close(c: Client): Promise<void> {
  const ended = c.end().then(
    () => true,
    () => true,
  );
  if (!(await Promise.race([ended, sleep(500).then(() => false)]))) drop(c);
}

async function withClient<T>(host: string, port: number, f: (c: Client) => Promise<T>, timeoutMs = 5000): Promise<T> {
  const c = newClient(host, port, timeoutMs, 'maas-ha-campaign-check');
  try {
    await c.connect();
    return await f(c);
  } finally {
    drop(c);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The timeline a primary writes on, from its own current WAL file name (the same rule as lib/observe.ts). */
const CURRENT_TLI = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int";

// ---- the writer

class Writer {
  readonly acks: Ack[] = [];
  errors = 0;
  /** Each error message (numbers masked, so one kind is one entry) and how often it came: what a stall was. */
  readonly errorKinds = new Map<string, number>();
  private stopped = false;
  private client: Client | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly lab: CampaignTarget,
    private readonly deadline: number,
  ) {
    this.done = this.loop();
  }

  /** Lets the statement in flight finish (bounded by its timeout): cutting it would only make pgpool log an error. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private nodeOf(addr: string | null): number | null {
    return this.lab.nodes.find((n) => n.host === addr)?.id ?? null;
  }

  private async loop(): Promise<void> {
    let seq = 0;
    const live = () => !this.stopped && Date.now() < this.deadline;
    while (live()) {
      const c = (this.client = newClient(this.lab.pgpool.host, this.lab.pgpool.port, 2000, 'maas-ha-campaign-writer'));
      try {
        await c.connect();
        while (live()) {
          // A number is never reused: a row whose acknowledgement was lost with its connection may be committed.
          const s = ++seq;
          const sentAt = Date.now();
          const r = await c.query<{ addr: string | null; tli: number }>(
            `INSERT INTO ${TABLE} (seq) VALUES ($1) RETURNING host(inet_server_addr()) AS addr, ${CURRENT_TLI} AS tli`,
            [s],
          );
          const row = r.rows[0]!;
          this.acks.push({ seq: s, sentAt, ackAt: Date.now(), node: this.nodeOf(row.addr), tli: row.tli });
          // A steady stream (some 30 commits a second on the lab), not a load test: the lab shares 2 cores.
          await sleep(20);
        }
      } catch (err) {
        this.errors++;
        const kind = ((err as Error).message ?? String(err)).replace(/\d+/g, 'N').slice(0, 120);
        this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
        await sleep(50);
      } finally {
        await close(c);
      }
    }
  }
}

// ---- the probe

class NodeProbe {
  private client: Client | undefined;
  private busy = false;

  constructor(private readonly node: CampaignNode) {}

  /** One question, unless the previous one is still waiting for its timeout (then this tick has no sample). */
  ask(tick: number, record: (s: ProbeSample) => void): Promise<void> | undefined {
    if (this.busy) return undefined;
    this.busy = true;
    const sentAt = Date.now();
    return this.query()
      .then(
        (r) => record({ tick, sentAt, t: Date.now(), node: this.node.id, state: r.in_recovery ? 'read-only' : 'writable', ...(r.tli !== null ? { tli: r.tli } : {}) }),
        (err: unknown) => {
          drop(this.client);
          this.client = undefined;
          record({ tick, sentAt, t: Date.now(), node: this.node.id, state: 'unreachable', error: (err as Error).message });
        },
      )
      .finally(() => {
        this.busy = false;
      });
  }

  close(): void {
    drop(this.client);
    this.client = undefined;
  }

  private async query(): Promise<{ in_recovery: boolean; tli: number | null }> {
    if (!this.client) {
      const c = newClient(this.node.host, this.node.port, PROBE_TIMEOUT_MS, 'maas-ha-campaign-probe');
      this.client = c;
      await c.connect();
    }
    const r = await this.client.query<{ in_recovery: boolean; tli: number | null }>(
      `SELECT pg_is_in_recovery() AS in_recovery,
              CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver LIMIT 1) ELSE ${CURRENT_TLI} END AS tli`,
    );
    return r.rows[0]!;
  }
}

class Probe {
  readonly samples: ProbeSample[] = [];
  private readonly probes: NodeProbe[];
  private readonly timer: NodeJS.Timeout;
  private readonly pending = new Set<Promise<void>>();
  private tick = 0;

  constructor(nodes: CampaignNode[], deadline: number) {
    this.probes = nodes.map((n) => new NodeProbe(n));
    this.timer = setInterval(() => {
      if (Date.now() > deadline) return this.halt();
      const tick = this.tick++;
      for (const p of this.probes) {
        const q = p.ask(tick, (s) => this.samples.push(s));
        if (q) {
          this.pending.add(q);
          void q.finally(() => this.pending.delete(q));
        }
      }
    }, PROBE_EVERY_MS);
  }

  private halt(): void {
    clearInterval(this.timer);
  }

  async stop(): Promise<void> {
    this.halt();
    await Promise.allSettled([...this.pending]);
    for (const p of this.probes) p.close();
  }
}

// ---- the campaign

/**
 * Starts the writer (through pgpool, into a fresh table) and the probe (every node directly). Both stop on
 * `stop()`, and by themselves after `maxMs` whatever happens to the caller (a test that died, a soak that hung).
 */
export async function startCampaign(lab: CampaignTarget, opts: { maxMs?: number } = {}): Promise<Campaign> {
  await waitFor('a fresh campaign table through pgpool', 20_000, () =>
    withClient(lab.pgpool.host, lab.pgpool.port, async (c) => {
      await c.query(`CREATE TABLE IF NOT EXISTS ${TABLE} (seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`);
      await c.query(`TRUNCATE ${TABLE}`);
      return true;
    }),
  );
  const startedAt = Date.now();
  const deadline = startedAt + (opts.maxMs ?? 150_000);
  const probe = new Probe(lab.nodes, deadline);
  const writer = new Writer(lab, deadline);
  let stopped: Promise<CampaignReport> | undefined;
  return {
    ...liveView(startedAt, writer.acks, probe.samples),
    stop: () =>
      (stopped ??= (async () => {
        await Promise.all([writer.stop(), probe.stop()]);
        const stoppedAt = Date.now();
        const samples = [...probe.samples].sort((a, b) => a.t - b.t);
        const data = await checkRows(lab, writer.acks);
        return {
          startedAt,
          stoppedAt,
          acks: writer.acks,
          writerErrors: writer.errors,
          writerErrorKinds: [...writer.errorKinds].sort((a, b) => b[1] - a[1]),
          samples,
          ...data,
          twoPrimaries: twoPrimaryTicks(samples),
          staleAcks: staleAcks(writer.acks, samples),
        };
      })()),
  };
}

/** What a running campaign shows of itself, over arrays its writer and probe (or its agent's lines) append to. */
function liveView(startedAt: number, acks: Ack[], samples: ProbeSample[]): Omit<Campaign, 'stop'> {
  return {
    startedAt,
    acks,
    samples,
    acksAfter: (t, node) => acks.filter((a) => a.sentAt > t && (node === undefined || a.node === node)),
    lastSample: (node, after = 0) => samples.findLast((s) => s.node === node && s.sentAt > after),
  };
}

// ---- the campaign inside another network namespace

/**
 * What the campaign agent (`maas-ha lab vip campaign`, run inside the VIP lab's client namespace, where the VIP and
 * the nodes are reachable and the root namespace's tests are not) prints, one JSON object per line: when it
 * started, every acknowledgement and probe sample as it comes, and the report once asked to stop.
 */
type AgentLine = { started: number } | { ack: Ack } | { sample: ProbeSample } | { report: CampaignReport } | { error: string };

/** The agent's side: runs the campaign here and streams it; stops on `stopRequested` (or after maxMs). */
export async function runCampaignAgent(target: CampaignTarget, opts: { maxMs?: number }, io: { write(line: string): void; stopRequested: Promise<void> }): Promise<void> {
  const emit = (l: AgentLine) => io.write(JSON.stringify(l));
  let c: Campaign;
  try {
    c = await startCampaign(target, opts);
  } catch (err) {
    emit({ error: (err as Error).message });
    return;
  }
  emit({ started: c.startedAt });
  let acks = 0;
  let samples = 0;
  const flush = () => {
    for (; acks < c.acks.length; acks++) emit({ ack: c.acks[acks]! });
    for (; samples < c.samples.length; samples++) emit({ sample: c.samples[samples]! });
  };
  const timer = setInterval(flush, 100);
  let timeout: NodeJS.Timeout | undefined;
  await Promise.race([io.stopRequested, new Promise<void>((r) => (timeout = setTimeout(r, (opts.maxMs ?? 150_000) + 5000)))]);
  clearTimeout(timeout);
  const report = await c.stop();
  clearInterval(timer);
  flush();
  emit({ report });
}

/**
 * The tests' side: starts the agent with `argv` (e.g. under `ip netns exec`) and mirrors its lines into a live
 * Campaign; `stop()` asks the agent for its report. The agent's own deadline ends it if this process dies.
 */
export async function remoteCampaign(argv: string[]): Promise<Campaign> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  const acks: Ack[] = [];
  const samples: ProbeSample[] = [];
  let onStarted: (t: number) => void = () => {};
  let onReport: (r: CampaignReport) => void = () => {};
  let onFailure: (e: Error) => void = () => {};
  const started = new Promise<number>((res, rej) => ((onStarted = res), (onFailure = rej)));
  const reported = new Promise<CampaignReport>((res, rej) => {
    onReport = res;
    const previous = onFailure;
    onFailure = (e) => (previous(e), rej(e));
  });
  started.catch(() => {});
  reported.catch(() => {});
  createInterface({ input: child.stdout }).on('line', (line) => {
    let m: AgentLine;
    try {
      m = JSON.parse(line) as AgentLine;
    } catch {
      return;
    }
    if ('ack' in m) acks.push(m.ack);
    else if ('sample' in m) samples.push(m.sample);
    else if ('started' in m) onStarted(m.started);
    else if ('report' in m) onReport(m.report);
    else if ('error' in m) onFailure(new Error(`the campaign agent: ${m.error}`));
  });
  child.on('exit', (code, signal) => onFailure(new Error(`the campaign agent exited (${signal ?? `exit ${code}`}) without its report: ${stderr.trim() || 'no output'}`)));
  child.on('error', (err) => onFailure(err));
  const within = <T>(p: Promise<T>, ms: number, what: string) => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([p, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
  };
  try {
    const startedAt = await within(started, 30_000, 'the campaign agent to start');
    let stopped: Promise<CampaignReport> | undefined;
    return {
      ...liveView(startedAt, acks, samples),
      stop: () =>
        (stopped ??= (async () => {
          child.stdin.end('stop\n');
          try {
            return await within(reported, 90_000, 'the campaign agent\'s report');
          } finally {
            child.kill('SIGKILL');
          }
        })()),
    };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}

/**
 * The rows every node holds against what was acknowledged: on the primary, and on each standby once it has
 * replayed up to the primary's position (a standby that lags is not "missing" rows, it is late).
 */
async function checkRows(lab: CampaignTarget, acks: Ack[]): Promise<Pick<CampaignReport, 'lost' | 'checked' | 'uncheckable'>> {
  const uncheckable: string[] = [];
  type Role = { node: CampaignNode; inRecovery: boolean };
  const roles = (
    await Promise.all(
      lab.nodes.map(async (node) => {
        try {
          const r = await withClient(node.host, node.port, (c) => c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r'), 3000);
          return [{ node, inRecovery: r.rows[0]!.r }];
        } catch (err) {
          uncheckable.push(`node ${node.id} not checked: it does not answer (${(err as Error).message})`);
          return [] as Role[];
        }
      }),
    )
  ).flat();
  const primaries = roles.filter((r) => !r.inRecovery);
  if (primaries.length !== 1) {
    uncheckable.push(`rows not checked: ${primaries.length === 0 ? 'no node' : `nodes ${primaries.map((p) => p.node.id).join(' and ')}`} answer as primary after the heal`);
    return { lost: [], checked: [], uncheckable };
  }
  const primary = primaries[0]!.node;
  const lsn = await withClient(primary.host, primary.port, async (c) => (await c.query<{ l: string }>('SELECT pg_current_wal_lsn()::text AS l')).rows[0]!.l);
  const readable: { node: CampaignNode; role: 'primary' | 'standby' }[] = [{ node: primary, role: 'primary' }];
  for (const s of roles.filter((r) => r.inRecovery)) {
    try {
      await waitFor(`node ${s.node.id} replays up to the primary's ${lsn}`, 15_000, () =>
        withClient(s.node.host, s.node.port, async (c) => {
          const r = await c.query<{ ok: boolean | null }>('SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), $1::pg_lsn) >= 0 AS ok', [lsn]);
          return r.rows[0]!.ok === true || undefined;
        }),
      );
      readable.push({ node: s.node, role: 'standby' });
    } catch (err) {
      uncheckable.push(`node ${s.node.id} (standby) not checked: ${(err as Error).message}`);
    }
  }
  const lost: LostRows[] = [];
  for (const { node, role } of readable) {
    const present = await withClient(node.host, node.port, async (c) => {
      const exists = await c.query<{ t: string | null }>(`SELECT to_regclass('${TABLE}')::text AS t`);
      if (exists.rows[0]!.t === null) return new Set<number>();
      return new Set((await c.query<{ seq: string }>(`SELECT seq FROM ${TABLE}`)).rows.map((r) => Number(r.seq)));
    });
    const missing = acks.filter((a) => !present.has(a.seq)).map((a) => a.seq);
    if (missing.length) lost.push({ node: node.id, role, rows: missing });
  }
  return { lost, checked: readable.map((r) => r.node.id), uncheckable };
}

/** Ticks in which more than one node answered that it accepts writes. */
export function twoPrimaryTicks(samples: readonly ProbeSample[]): TwoPrimaries[] {
  const byTick = new Map<number, ProbeSample[]>();
  for (const s of samples) if (s.state === 'writable') byTick.set(s.tick, [...(byTick.get(s.tick) ?? []), s]);
  return [...byTick.entries()]
    .filter(([, w]) => w.length > 1)
    .map(([tick, w]) => ({ tick, t: Math.min(...w.map((s) => s.sentAt)), nodes: w.map((s) => s.node).sort() }))
    .sort((a, b) => a.tick - b.tick);
}

/**
 * Acknowledgements by an old primary: the row was sent after the probe had already seen another node writable
 * on a newer timeline, and the backend that acknowledged it wrote it on an older one. (A row sent before the
 * newer primary was seen may have committed before the promotion: not counted.)
 */
export function staleAcks(acks: readonly Ack[], samples: readonly ProbeSample[]): StaleAck[] {
  // Only the first writable sample of each (node, timeline) can be the earliest match, so a soak of an hour
  // (tens of thousands of samples and rows) compares each row with a handful of samples, not with all of them.
  const firsts = new Map<string, ProbeSample & { tli: number }>();
  for (const s of [...samples].sort((a, b) => a.t - b.t)) {
    if (s.state === 'writable' && s.tli !== undefined && !firsts.has(`${s.node}/${s.tli}`)) firsts.set(`${s.node}/${s.tli}`, s as ProbeSample & { tli: number });
  }
  const promotions = [...firsts.values()];
  const out: StaleAck[] = [];
  for (const ack of acks) {
    const newer = promotions.find((s) => s.t < ack.sentAt && s.tli > ack.tli && s.node !== ack.node);
    if (newer) out.push({ ack, newer: { node: newer.node, tli: newer.tli, seenAt: newer.t } });
  }
  return out;
}

// ---- the verdict

/** "12, 15-40, 43": row numbers as ranges. */
export function ranges(ns: readonly number[]): string {
  const sorted = [...new Set(ns)].sort((a, b) => a - b);
  const out: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    out.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

export interface Allowance {
  /** A node cut off from everyone (clients included) that may stay writable until `healedAt` + 5 s. */
  allowIsolatedPrimary?: { node: number; healedAt: number };
}

/**
 * Before a campaign that allows an isolated primary stops: waits until the probe has asked that node once after
 * the grace (the verdict needs one such sample), at most 10 s past it. A scenario that healed quickly used to stop
 * inside the grace and be judged "cannot tell whether it was demoted".
 */
export async function probePastGrace(c: Campaign, allow: Allowance): Promise<void> {
  const iso = allow.allowIsolatedPrimary;
  if (!iso) return;
  const graceEnd = iso.healedAt + ISOLATED_GRACE_MS;
  const left = graceEnd + 10_000 - Date.now();
  await waitFor(`a probe of node ${iso.node} after the grace`, Math.max(left, 0), async () => c.lastSample(iso.node, graceEnd), 100).catch(() => undefined);
}

/** Every broken invariant of a campaign, as sentences; empty when the scenario was safe. */
export function violations(report: CampaignReport, allow: Allowance = {}): string[] {
  const at = (t: number) => `+${((t - report.startedAt) / 1000).toFixed(2)} s`;
  const out: string[] = [];
  for (const l of report.lost) {
    out.push(`LOST: ${l.rows.length} acknowledged row(s) missing on node ${l.node} (${l.role}): rows ${ranges(l.rows)}`);
  }
  out.push(...report.uncheckable.map((u) => `UNCHECKED: ${u}`));

  const iso = allow.allowIsolatedPrimary;
  const graceEnd = iso ? iso.healedAt + ISOLATED_GRACE_MS : 0;
  const tolerated = (x: TwoPrimaries) => iso !== undefined && x.t <= graceEnd && x.nodes.includes(iso.node) && x.nodes.length === 2;
  // Consecutive ticks with the same writable nodes form one run: one sentence each.
  const runs: { nodes: number[]; from: number; to: number; ticks: number }[] = [];
  for (const x of report.twoPrimaries.filter((x) => !tolerated(x))) {
    const last = runs.at(-1);
    if (last && last.nodes.join() === x.nodes.join() && x.t - last.to <= 1000) {
      last.to = x.t;
      last.ticks++;
    } else runs.push({ nodes: x.nodes, from: x.t, to: x.t, ticks: 1 });
  }
  for (const r of runs) {
    out.push(`TWO PRIMARIES: nodes ${r.nodes.join(' and ')} ${r.nodes.length === 2 ? 'both' : 'all'} answered writable from ${at(r.from)} to ${at(r.to)} (${r.ticks} probe tick(s))`);
  }
  if (iso) {
    const after = report.samples.filter((s) => s.node === iso.node && s.sentAt > graceEnd);
    const writable = after.filter((s) => s.state === 'writable');
    if (after.length === 0) out.push(`ISOLATED: node ${iso.node} was not probed after the 5 s grace (heal at ${at(iso.healedAt)}): cannot tell whether it was demoted`);
    else if (writable.length) {
      out.push(
        `ISOLATED: old primary node ${iso.node} still writable ${((writable[0]!.sentAt - iso.healedAt) / 1000).toFixed(2)} s after the heal at ${at(iso.healedAt)} ` +
          `(${writable.length} writable sample(s) after the 5 s grace, the last at ${at(writable.at(-1)!.t)}); it must be demoted or stopped within 5 s`,
      );
    }
  }
  for (const s of report.staleAcks) {
    out.push(
      `STALE ACK: row ${s.ack.seq} acknowledged by node ${s.ack.node ?? '?'} on timeline ${s.ack.tli} at ${at(s.ack.ackAt)} (sent ${at(s.ack.sentAt)}), ` +
        `after node ${s.newer.node} was seen writable on timeline ${s.newer.tli} at ${at(s.newer.seenAt)}`,
    );
  }
  return out;
}

/** One line for a log: how much the campaign saw. */
export function summary(r: CampaignReport): string {
  const byNode = new Map<string, number>();
  for (const a of r.acks) byNode.set(`node ${a.node ?? '?'} tl ${a.tli}`, (byNode.get(`node ${a.node ?? '?'} tl ${a.tli}`) ?? 0) + 1);
  const unreachable = r.samples.filter((s) => s.state === 'unreachable').length;
  return (
    `campaign ${((r.stoppedAt - r.startedAt) / 1000).toFixed(1)} s: ${r.acks.length} rows acknowledged (${[...byNode].map(([k, v]) => `${v} by ${k}`).join(', ')}), ` +
    `${r.writerErrors} writer errors${r.writerErrorKinds.length ? ` (${r.writerErrorKinds.slice(0, 3).map(([k, n]) => `${n}x ${k}`).join('; ')})` : ''}; ${r.samples.length} probe samples (${unreachable} unreachable); rows checked on nodes ${r.checked.join(', ') || 'none'}`
  );
}

