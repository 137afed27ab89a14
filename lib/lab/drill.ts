// `maas-ha lab drill`: a failover rehearsal on the lab with real traffic. A writer inserts numbered rows through
// pgpool; the primary's postmaster is killed with SIGKILL; pgpool notices, runs maas-ha's hooks; the drill
// measures, in seconds from the kill, when failover started, when the new primary was promoted, when the first
// write sent after the kill was acknowledged, and when every surviving standby streamed again and was attached.
// Finally it counts acknowledged rows the new primary does not have (lost_rows; zero is the only good answer).

import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../config/load.ts';
import { createLog, newRunId } from '../adapters/log.ts';
import { createDeps } from '../wiring.ts';
import { messageOf } from '../errors.ts';
import type { Deps } from '../model/ports.ts';
import { formatLsn } from '../model/lsn.ts';
import { observeAll } from '../observe.ts';
import { gatherStatus } from '../status.ts';
import { logRecords, type LogRecord } from '../log-render.ts';
import { readPid } from '../adapters/pid-file.ts';
import { labDown, labUp, type Say } from './lab.ts';
import { LAB_PGPOOL_PORT, labNodes, labPaths, pgpoolHost, type LabOptions } from './layout.ts';

export interface DrillResult {
  ok: boolean;
  killed_node: number;
  promoted_node: number | null;
  /** Seconds from the kill. */
  failover_started: number | null;
  promoted: number | null;
  first_write_ok: number | null;
  redundancy_restored: number | null;
  /** Each standby's received WAL position just before the kill. */
  standby_lsns: Record<string, string | null>;
  acknowledged_rows: number;
  lost_rows: number;
  problems: string[];
}

interface Ack {
  seq: number;
  sentAt: number;
  ackAt: number;
}

type PgModule = typeof import('pg');

/** The drill's table, empty: numbered rows, so that a lost acknowledged row has a number to be missed by. */
export async function resetDrillTable(c: { query(sql: string): Promise<unknown> }): Promise<void> {
  await c.query('CREATE TABLE IF NOT EXISTS maas_ha_drill (seq bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())');
  await c.query('TRUNCATE maas_ha_drill');
}

/** Writes numbered rows through pgpool until stopped, reconnecting after every error. */
export class Writer {
  readonly acks: Ack[] = [];
  errors = 0;
  private stopped = false;
  private done: Promise<void> | undefined;
  constructor(
    private readonly pg: Pick<PgModule, 'Client'>,
    private readonly host: string,
  ) {}

  start(): void {
    this.done = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }

  private async loop(): Promise<void> {
    let seq = 0;
    while (!this.stopped) {
      const client = new this.pg.Client({
        host: this.host,
        port: LAB_PGPOOL_PORT,
        user: 'postgres',
        database: 'postgres',
        connectionTimeoutMillis: 1000,
        query_timeout: 2000,
        application_name: 'maas-ha-drill',
      });
      client.on('error', () => {});
      try {
        await client.connect();
        while (!this.stopped) {
          const s = ++seq;
          const sentAt = Date.now();
          await client.query('INSERT INTO maas_ha_drill (seq) VALUES ($1)', [s]);
          this.acks.push({ seq: s, sentAt, ackAt: Date.now() });
          await new Promise((r) => setTimeout(r, 10));
        }
      } catch {
        this.errors++;
        await new Promise((r) => setTimeout(r, 50));
      } finally {
        await client.end().catch(() => {});
      }
    }
  }
}

/** maas-ha's records that pgpool copied into its log after `offset`. */
function hookLines(logFile: string, offset: number): LogRecord[] {
  const size = statSync(logFile).size;
  if (size <= offset) return [];
  const fd = openSync(logFile, 'r');
  try {
    const buf = Buffer.alloc(size - offset);
    readSync(fd, buf, 0, buf.length, offset);
    return logRecords(buf.toString('utf8'));
  } finally {
    closeSync(fd);
  }
}

async function healthy(deps: Deps): Promise<string[]> {
  const s = await gatherStatus(deps);
  return s.problems;
}

export async function runDrill(o: LabOptions, say: Say): Promise<DrillResult> {
  const p = labPaths(o.dir);
  let deps = createDeps(loadConfig(p.config), createLog('drill', newRunId(), 'warn'));
  const before = await healthy(deps);
  if (before.length) {
    say(`lab is not fully redundant (${before.join('; ')}): rebuilding it`);
    await labDown(o, say, { purge: true });
    await labUp(o, say);
    deps = createDeps(loadConfig(p.config), createLog('drill', newRunId(), 'warn'));
  }
  const obs = await observeAll(deps, 3000);
  const primary = obs.find((x) => x.reachable && !x.inRecovery);
  if (!primary) throw new Error('the lab has no primary');
  const killed = labNodes(o).find((n) => n.id === primary.id)!;

  const pgMod = ((await import('pg')) as unknown as { default: PgModule }).default;
  const setup = new pgMod.Client({ host: pgpoolHost(o), port: LAB_PGPOOL_PORT, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000 });
  await setup.connect();
  await resetDrillTable(setup);
  await setup.end();

  const writer = new Writer(pgMod, pgpoolHost(o));
  writer.start();
  await new Promise((r) => setTimeout(r, 1000));
  const standbyObs = await observeAll(deps, 2000);
  const standby_lsns = Object.fromEntries(
    standbyObs.filter((x) => x.id !== killed.id).map((x) => [String(x.id), x.reachable && x.receiveLsn !== undefined ? formatLsn(x.receiveLsn) : null]),
  );
  const logOffset = statSync(p.pgpoolLog).size;
  const pid = readPid(join(killed.data, 'postmaster.pid'));
  if (!pid) throw new Error(`no postmaster running for ${killed.name}`);
  say(`killing the primary ${killed.name} (node ${killed.id}, postmaster pid ${pid}) with SIGKILL while writes flow through pgpool`);
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  const since = (ms: number | null) => (ms === null ? null : Number(((ms - t0) / 1000).toFixed(3)));

  const problems: string[] = [];
  let redundancyAt: number | null = null;
  let promotedNode: number | null = null;
  const deadline = t0 + 60_000;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const s = await gatherStatus(deps);
    const survivors = s.rows.filter((r) => r.id !== killed.id);
    if (s.primary !== null && s.primary !== killed.id) promotedNode = s.primary;
    // pgpool must agree too (no problem on any survivor, the new primary's included): the failover hook repoints
    // the other standbys before pgpool has finished its failover, and pgpool detaches them for its follow after.
    const ok =
      promotedNode !== null &&
      survivors.every((r) => r.pgpoolStatus === 'up' && r.problems.length === 0 && (r.id === promotedNode ? r.pgRole === 'primary' : r.pgRole === 'standby'));
    if (ok) {
      redundancyAt = Date.now();
      break;
    }
  }
  await new Promise((r) => setTimeout(r, 300));
  await writer.stop();
  if (redundancyAt === null) problems.push('redundancy not restored within 60 s');

  const lines = hookLines(p.pgpoolLog, logOffset);
  const timeOf = (pred: (l: Record<string, unknown>) => boolean) => {
    const l = lines.find(pred);
    return l && typeof l.time === 'string' ? Date.parse(l.time) : null;
  };
  const failoverStarted = timeOf((l) => l.hook === 'failover');
  const promotedAt = timeOf((l) => l.hook === 'failover' && l.step === 'promote' && l.outcome === 'ok');
  for (const l of lines) if (l.level === 'error') problems.push(`${String(l.hook)}: ${String(l.msg)}`);
  const firstWrite = writer.acks.find((a) => a.sentAt > t0);

  let lost = 0;
  if (promotedNode !== null) {
    const n = labNodes(o).find((x) => x.id === promotedNode)!;
    const have = await deps.pg.query<{ seq: string }>({ host: n.host, port: n.port }, 'SELECT seq FROM maas_ha_drill');
    const present = new Set(have.map((r) => Number(r.seq)));
    lost = writer.acks.filter((a) => !present.has(a.seq)).length;
    if (lost) problems.push(`${lost} acknowledged rows are missing on the new primary`);
  } else problems.push('no new primary');

  return {
    ok: problems.length === 0,
    killed_node: killed.id,
    promoted_node: promotedNode,
    failover_started: since(failoverStarted),
    promoted: since(promotedAt),
    first_write_ok: firstWrite ? since(firstWrite.ackAt) : null,
    redundancy_restored: since(redundancyAt),
    standby_lsns,
    acknowledged_rows: writer.acks.length,
    lost_rows: lost,
    problems,
  };
}

export function renderDrill(r: DrillResult): string {
  const row = (label: string, v: number | null) => `  ${v === null ? '     -' : `${v.toFixed(3).padStart(6)} s`}  ${label}`;
  return [
    `failover drill: killed node ${r.killed_node} (primary) with SIGKILL under write load`,
    `  standby LSNs at the kill: ${Object.entries(r.standby_lsns).map(([k, v]) => `node ${k} ${v ?? 'unknown'}`).join(', ')}`,
    row('pgpool started maas-ha-failover', r.failover_started),
    row(`node ${r.promoted_node ?? '?'} promoted`, r.promoted),
    row('first write through pgpool acknowledged', r.first_write_ok),
    row('redundancy restored (every surviving standby streaming and attached)', r.redundancy_restored),
    `  ${r.acknowledged_rows} rows acknowledged, ${r.lost_rows} lost`,
    r.ok ? 'drill passed' : `drill FAILED:\n${r.problems.map((x) => `  - ${x}`).join('\n')}`,
  ].join('\n');
}

