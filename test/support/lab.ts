// End-to-end support: a real lab (PostgreSQL 15 nodes, pgpool-II 4.3, sshd) per test file, reused by every
// scenario in that file. Each file gets its own directory and loopback network (127.0.<net>.x), so ava can run
// files side by side; scenarios inside a file run serially (test.serial) and leave the lab redundant for the next
// one (`healLab`). After each scenario, `unexpectedErrors` scans what pgpool and the hooks logged, in the spirit
// of Patroni's acceptance tests that read every log for bugs afterwards.

import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { createLog, newRunId } from '../../lib/adapters/log.ts';
import { loadConfig } from '../../lib/config/load.ts';
import { createDeps } from '../../lib/wiring.ts';
import { labDown, labIsUp, labUp, waitFor } from '../../lib/lab/lab.ts';
import { readPid } from '../../lib/adapters/pid-file.ts';
import { LAB_PGPOOL_PORT, labNodes, labPaths, pgpoolHost, type LabNode, type LabOptions } from '../../lib/lab/layout.ts';
import type { Deps } from '../../lib/model/ports.ts';
import { gatherStatus, type ClusterStatus } from '../../lib/status.ts';
import { logRecords, type LogRecord } from '../../lib/log-render.ts';
import type { RefusalReason } from '../../lib/recovery/plan.ts';

export { waitFor };

export const ROOT = resolve(import.meta.dirname, '../..');
/** Built by `npm test` (node build.mjs) before ava starts. */
export const DIST_BIN = join(ROOT, 'dist', 'bin');
/** Labs of the test suite live here: not under /tmp, whose mode sshd's StrictModes refuses. */
export const TEST_LAB_ROOT = '/var/lib/maas-ha-test';
/** One initdb for all the suite's labs (lib/lab/lab.ts copies it); a lab rebuilt for a scenario skips initdb. */
export const INITDB_TEMPLATE = join(TEST_LAB_ROOT, '.initdb-template-15');

export interface TestLab {
  o: LabOptions;
  paths: ReturnType<typeof labPaths>;
  nodes: LabNode[];
  pgpool: { host: string; port: number };
  /** Effects for this lab's maas-ha config (pg, pcp, ssh), logging only warnings. */
  deps: Deps;
}

export interface LabRequest {
  /** Directory name below TEST_LAB_ROOT; also names the lab in messages. */
  name: string;
  /** 127.0.<net>.x: unique per test file (the lab CLI default is 0; tests use 100 and up). */
  net: number;
  nodes?: number;
  synchronous?: 'any' | 'off';
}

const quiet = () => {};

export function labOptions(r: LabRequest): LabOptions {
  return {
    dir: join(TEST_LAB_ROOT, r.name),
    net: r.net,
    nodes: r.nodes ?? 3,
    synchronous: r.synchronous ?? 'any',
    hookBinDir: DIST_BIN,
    hooksTemplate: join(ROOT, 'pgpool', 'hooks.conf'),
    pgBinDir: '/usr/lib/postgresql/15/bin',
    initdbTemplate: INITDB_TEMPLATE,
  };
}

/** A fresh lab (any leftover in the same directory is torn down first). */
export async function startLab(r: LabRequest): Promise<TestLab> {
  if (process.getuid?.() !== 0) throw new Error('the end-to-end tests start PostgreSQL, pgpool and sshd: run them as root');
  const o = labOptions(r);
  await labDown(o, quiet, { purge: true });
  await labUp(o, quiet);
  return attach(o);
}

function attach(o: LabOptions): TestLab {
  const paths = labPaths(o.dir);
  return {
    o,
    paths,
    nodes: labNodes(o),
    pgpool: { host: pgpoolHost(o), port: LAB_PGPOOL_PORT },
    deps: createDeps(loadConfig(paths.config), createLog('e2e', newRunId(), 'warn')),
  };
}

/** Stops everything; keeps the directory (logs) when MAAS_HA_KEEP_LAB is set. */
export async function stopLab(lab: TestLab): Promise<void> {
  await labDown(lab.o, quiet, { purge: !process.env.MAAS_HA_KEEP_LAB });
}

/** The built `maas-ha` CLI with these arguments: exit code and everything it printed (stdout, then stderr). */
export function runCli(args: string[], timeoutMs = 60_000): { code: number; out: string } {
  try {
    return { code: 0, out: execFileSync(join(DIST_BIN, 'maas-ha'), args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { status: number | null; stdout: string; stderr: string };
    return { code: e.status ?? -1, out: `${e.stdout}${e.stderr}` };
  }
}

export const clusterStatus = (lab: TestLab): Promise<ClusterStatus> => gatherStatus(lab.deps);

/** Every node answers, exactly one primary, every standby streams its timeline and pgpool has all of them up. */
export function redundant(s: ClusterStatus, nodes: number): boolean {
  return s.primary !== null && s.rows.length === nodes && s.problems.length === 0 && s.rows.every((r) => r.pgpoolStatus === 'up');
}

/**
 * Brings the lab back to full redundancy for the next scenario, with node `primary` (default 0) as the primary,
 * since scenarios name nodes by role. Rebuilding costs about 3 s; a scenario that leaves the lab redundant with
 * that primary costs nothing here.
 */
export async function healLab(lab: TestLab, opts: { primary?: number } = {}): Promise<void> {
  if (labIsUp(lab.o)) {
    const s = await clusterStatus(lab);
    if (redundant(s, lab.o.nodes) && s.primary === (opts.primary ?? 0)) return;
  }
  // Stopped, then moved aside and deleted while the new lab comes up (the deletion took about a second).
  await labDown(lab.o, quiet, { purge: false });
  const trash = `${lab.o.dir}.trash-${process.pid}-${++trashed}`;
  renameSync(lab.o.dir, trash);
  const gone = rm(trash, { recursive: true, force: true });
  await labUp(lab.o, quiet);
  await gone;
  Object.assign(lab, attach(lab.o));
}
let trashed = 0;

/**
 * How often a wait asks for the cluster's status. A status is a connection to every node and a pcp process per
 * node: asked every 200 ms by two labs at once, that alone kept a 2-core host busy enough to slow the recoveries
 * the scenarios wait for. Half a second costs a wait at most that much.
 */
export const STATUS_POLL_MS = 500;

/**
 * Polls the cluster's status until `ok` holds; a wait that gives up says what the status was last. `wait` is the
 * polling loop (a scenario passes its own, which traces).
 */
export async function waitStatus(
  lab: TestLab,
  what: string,
  timeoutMs: number,
  ok: (s: ClusterStatus) => boolean | Promise<boolean>,
  wait: typeof waitFor = waitFor,
): Promise<ClusterStatus> {
  let last: ClusterStatus | undefined;
  try {
    return await wait(what, timeoutMs, async () => {
      last = await clusterStatus(lab);
      return (await ok(last)) ? last : undefined;
    }, STATUS_POLL_MS);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status: ${describeStatus(last)}`);
  }
}

export function waitRedundant(lab: TestLab, timeoutMs = 30_000): Promise<ClusterStatus> {
  return waitStatus(lab, 'full redundancy', timeoutMs, (s) => redundant(s, lab.o.nodes));
}

export function postmasterPid(node: LabNode): number | undefined {
  return readPid(join(node.data, 'postmaster.pid'));
}

/** SIGKILL of the postmaster: PostgreSQL's own crash, the way the drill does it. */
export function killPostmaster(node: LabNode): void {
  const pid = postmasterPid(node);
  if (!pid) throw new Error(`${node.name} has no running postmaster`);
  process.kill(pid, 'SIGKILL');
}

/** Where pgpool's log ends now: pass it to hookRecords / unexpectedErrors to read only what came after. */
export function logMark(lab: TestLab): number {
  return existsSync(lab.paths.pgpoolLog) ? statSync(lab.paths.pgpoolLog).size : 0;
}

function logSince(lab: TestLab, mark: number): string {
  return readFileSync(lab.paths.pgpoolLog).subarray(mark).toString('utf8');
}

export type HookRecord = LogRecord;

/** maas-ha's JSON log lines (pgpool copies its hooks' stderr into its log) written after `mark`. */
export function hookRecords(lab: TestLab, mark: number): HookRecord[] {
  return logRecords(logSince(lab, mark));
}

/** The closing sentence of each hook run after `mark`, in order. */
export function closingLines(lab: TestLab, mark: number): HookRecord[] {
  return hookRecords(lab, mark).filter((r) => r.step === 'done');
}

/**
 * What pgpool and the hooks did after `mark`, one line each, for a scenario that gave up waiting: every hook
 * record (hook, step, node, message) and pgpool's own lines about failover, follow, primary and node status.
 */
export function whatHappened(lab: TestLab, mark: number): string[] {
  return logSince(lab, mark)
    .split('\n')
    .flatMap((l) => {
      if (l.startsWith('{')) {
        const [r] = logRecords(l);
        return r ? [`${r.hook ?? '?'} ${r.step ?? ''}${r.node_id !== undefined ? ` node ${String(r.node_id)}` : ''}: ${r.msg}`] : [];
      }
      return /failover|follow|primary|degenerat|failback|quarantine|execute command|find_primary|health check/i.test(l) ? [l.slice(0, 300)] : [];
    });
}

/**
 * Errors nobody expected after `mark`: maas-ha records at level error, pgpool ERROR/FATAL/PANIC lines and
 * PostgreSQL PANICs, minus the lines a scenario expects (a killed node's connection errors, say).
 */
export function unexpectedErrors(lab: TestLab, mark: number, expected: RegExp[] = []): string[] {
  const lines = logSince(lab, mark).split('\n');
  const bad = lines.filter((l) => {
    if (l.startsWith('{')) return /"level":"(error|fatal)"/.test(l);
    return /\b(ERROR|FATAL|PANIC):/.test(l);
  });
  return bad.filter((l) => !expected.some((re) => re.test(l)));
}

/** The connection errors pgpool logs while a backend is down: expected in any failover scenario. */
export const NODE_DOWN_NOISE = [
  // pgpool's replication-delay check (sr_check_worker) loses its connection to a node that was just killed or
  // attached and says so at ERROR/FATAL level, while the node itself is fine; a pcp child asking a node that is
  // being stopped (a switchover's clean stop) ends the same way.
  /sr_check_worker pid \d+: (ERROR: {2}Failed to check replication time lag|FATAL: {2}Backend throw an error message)/,
  /pcp_child pid \d+: FATAL: {2}Backend throw an error message/,
  // pgpool 4.3.5's child serving a client whose backend dies or is stopped under a query in flight (a kill, a
  // clean stop, a fence) sometimes reports an internal memory-context error for that session and ends it; the
  // client reconnects. pgpool's own bug, seen with every writer; nothing maas-ha can act on.
  /pid \d+: ERROR: {2}could not find block containing chunk 0x[0-9a-f]+/,
  // A pgpool child whose backend shut down (a clean stop, a fence) under a session cannot read the next
  // message from it and ends that session; the client reconnects.
  /pid \d+: ERROR: {2}unable to read message kind/,
  // The same, seen from a session's side when the backend that died was a standby pgpool also held for it.
  /pid \d+: FATAL: {2}failed to read kind from backend/,
  /failed to make persistent db connection|unable to read data from DB node|failed to create a backend( \d+)? connection|connect\(\) failed|Connection refused|health check failed|is not valid|failed to connect to PostgreSQL server|server closed the connection unexpectedly|unable to forward message to frontend|unable to read data from frontend/,
];

// ---- online recovery helpers (test/e2e/recovery.test.ts)

/** Where a node's PostgreSQL server log ends now: the recovery hooks write into the *primary's* server log. */
export function serverLogMark(node: LabNode): number {
  return existsSync(node.log) ? statSync(node.log).size : 0;
}

/** maas-ha's JSON lines in a node's PostgreSQL server log after `mark` (what pgpool_recovery's scripts wrote). */
export function serverLogHookRecords(node: LabNode, mark: number): HookRecord[] {
  return existsSync(node.log) ? logRecords(readFileSync(node.log).subarray(mark).toString('utf8')) : [];
}

/** Stops the lab's pgpool only (SIGINT through its pid file), so nothing reacts to what a scenario does to nodes. */
export async function stopPgpool(lab: TestLab): Promise<void> {
  const pid = readPid(lab.paths.pgpoolPid);
  if (!pid) return;
  process.kill(pid, 'SIGINT');
  await waitFor('pgpool to exit', 20_000, async () => (readPid(lab.paths.pgpoolPid) === pid ? undefined : true));
}

/** After the primary `down` was lost: a new primary, every other node streaming from it and attached, `down` detached. */
export function waitRedundantWithout(lab: TestLab, down: number, timeoutMs = 45_000): Promise<ClusterStatus> {
  return waitStatus(
    lab,
    `failover away from node ${down} settled`,
    timeoutMs,
    (s) => s.primary !== null && s.primary !== down && s.rows.every((r) => (r.id === down ? r.pgpoolStatus === 'down' : r.pgpoolStatus === 'up' && r.problems.length === 0)),
  );
}

/** One line per node of a status, for a wait that gave up: what pgpool and the node said last. */
export function describeStatus(s: ClusterStatus | undefined): string {
  if (!s) return 'none';
  const pgpool = s.rows.map((r) => `node ${r.id} ${r.pgpoolStatus}`).join(', ');
  return `primary ${s.primary ?? 'none'}; pgpool: ${pgpool}; ${s.problems.length ? `problems: ${s.problems.join('; ')}` : 'no problem'}`;
}

/** The command line pgpool logged (`LOG: execute command: ...`) for an executable, after `mark`. */
export function executedLine(lab: TestLab, executable: string, mark: number): string {
  const text = readFileSync(lab.paths.pgpoolLog).subarray(mark).toString('utf8');
  const line = text
    .split('\n')
    .map((l) => /execute command: (.*)$/.exec(l)?.[1])
    .find((l) => l?.includes(`/${executable} `));
  if (!line) throw new Error(`pgpool logged no execute command for ${executable}`);
  // The lab runs its own copy of the hooks, not the checkout's dist/bin.
  if (!line.startsWith(`${lab.paths.bin}/`)) throw new Error(`unexpected hook path in ${line} (expected ${lab.paths.bin}, not ${DIST_BIN})`);
  return line;
}

/** Every file below a data directory with its size and mtime: equal snapshots mean nothing was touched. */
export function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        out.push(`${relative(dir, p)} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** The one JSON object `maas-ha recover --json` prints last: an outcome, or a refusal with its typed reason. */
export interface RecoverJson {
  ok: boolean;
  node: number;
  reason?: RefusalReason;
  refused?: string;
  error?: string;
  method?: string;
}

/** Parses recover --json's last line; undefined when there is none (the command died before it could say). */
export function recoverJson(stdout: string): RecoverJson | undefined {
  const last = stdout.trim().split('\n').at(-1);
  if (!last?.startsWith('{')) return undefined;
  try {
    return JSON.parse(last) as RecoverJson;
  } catch {
    return undefined;
  }
}
