// The effect seam. Use cases receive a `Deps` value and never import zx, pg, got, pino or node:fs themselves,
// so a unit test builds a fake world from plain objects with no module mocks (e.g. test/unit/failover/sync.test.ts); the hook
// tests keep the real adapters and fake what they talk to (test/support/fake-world.ts, test/support/fake-pg.ts).
// docs/architecture.md, "The Deps seam".

import type { Config } from '../config/types.ts';

export interface RunOptions {
  /** Hard limit; the process tree is killed with SIGKILL when it runs out. Required: no call is unbounded. */
  timeoutMs: number;
  input?: string;
  /** Replaces the environment (PATH is kept unless given). */
  env?: Record<string, string>;
  cwd?: string;
}

export interface RunResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

export interface Shell {
  /** Runs argv without a shell interpreting any element. Resolves for any exit status; rejects only on misuse. */
  run(argv: readonly string[], opts: RunOptions): Promise<RunResult>;
}

export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    readonly result: RunResult,
    what?: string,
  ) {
    const status = result.timedOut
      ? `timed out after ${result.durationMs} ms`
      : result.signal
        ? `killed by ${result.signal}`
        : `exited ${result.exitCode}`;
    const detail = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-3).join(' | ');
    super(`${what ?? result.argv[0]} ${status}${detail ? `: ${detail}` : ''}`);
  }
}

/** The result, or a CommandError carrying it when the command did not exit 0. */
export function checked(result: RunResult, what?: string): RunResult {
  if (result.exitCode !== 0) throw new CommandError(result, what);
  return result;
}

export interface SshTarget {
  host: string;
}

export interface Ssh {
  /** Runs argv on `host` as the configured ssh user; argv is quoted for POSIX sh by lib/shquote.ts. */
  run(host: string, argv: readonly string[], opts: RunOptions): Promise<RunResult>;
}

export interface QueryTarget {
  host: string;
  port: number;
  database?: string;
  user?: string;
  /** A replication connection (replication=database), for IDENTIFY_SYSTEM. */
  replicationConnection?: boolean;
}

export interface Pg {
  /** One short-lived connection, bounded by the configured connect and statement timeouts (or `timeoutMs`). */
  query<R extends Record<string, unknown> = Record<string, unknown>>(
    target: QueryTarget,
    sql: string,
    params?: unknown[],
    /** onSent: called once the statement has been handed to the connection (before its answer). */
    opts?: { timeoutMs?: number; onSent?: () => void },
  ): Promise<R[]>;
}

/** One line of `pcp_node_info`, parsed (pgpool 4.3 prints 12 fields). */
export interface PcpNodeInfo {
  id: number;
  host: string;
  port: number;
  /** 0 init, 1 up (no connections), 2 up (pooled), 3 down. */
  status: number;
  statusName: string;
  weight: number;
  actualStatus: string;
  role: string;
  actualRole: string;
  replicationDelay: string;
  replicationState: string;
  replicationSyncState: string;
  lastStatusChange: string;
}

export interface Pcp {
  nodeInfo(id: number): Promise<PcpNodeInfo>;
  nodeCount(): Promise<number>;
  attach(id: number): Promise<void>;
  detach(id: number, opts?: { gracefully?: boolean }): Promise<void>;
  promote(id: number, opts?: { switchover?: boolean }): Promise<void>;
  recover(id: number, opts?: { timeoutMs?: number }): Promise<void>;
}

export interface LogFields {
  step?: string;
  node_id?: number;
  duration_ms?: number;
  outcome?: 'ok' | 'skipped' | 'failed' | 'started';
  [key: string]: unknown;
}

export interface Log {
  debug(fields: LogFields, msg: string): void;
  info(fields: LogFields, msg: string): void;
  warn(fields: LogFields, msg: string): void;
  error(fields: LogFields, msg: string): void;
  child(fields: LogFields): Log;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface NotifyEvent {
  hook: string;
  run_id: string;
  outcome: 'ok' | 'failed';
  summary: string;
  timeline: { at: string; event: string; [key: string]: unknown }[];
}

export interface Notify {
  /** Never throws: a failing webhook must not fail a hook. */
  send(event: NotifyEvent): Promise<void>;
}

/** A primary that failover could not stop: nothing in maas-ha may start it as a primary again. */
export interface FencedMarker {
  node: number;
  since: string;
  status: 'stopped' | 'pending';
  reason: string;
  /**
   * The newest timeline the cluster was on when it was fenced. Fencing never advances a node's timeline, only a
   * promotion does: a node writable on a newer timeline was promoted since, and the marker no longer applies.
   */
  timeline?: number;
}

/**
 * Planned work (`maas-ha maintenance on`): the hooks neither fence, rebuild nor promote a marked node, and do
 * nothing at all while the whole cluster is marked (lib/maintenance.ts).
 */
export interface MaintenanceMark {
  /** undefined: the whole cluster. */
  node?: number;
  /** Who set it (user@host) and when (ISO 8601). */
  by: string;
  since: string;
  reason: string;
}

export interface StateStore {
  /** Waits up to waitMs for the named lock; returns its release function. */
  lock(name: string, waitMs: number): Promise<() => void>;
  journal(run: string, entry: Record<string, unknown>): void;
  readJournal(run: string): Record<string, unknown>[];
  markFenced(marker: FencedMarker): void;
  clearFenced(node: number): void;
  fenced(): FencedMarker[];
  setMaintenance(mark: MaintenanceMark): void;
  /** Removes the node's mark (undefined: the cluster's); false when there was none. */
  clearMaintenance(node?: number): boolean;
  maintenance(): MaintenanceMark[];
}

/** One DNS answer as the VIP checks need it (lib/model/dns-wire.ts decodes it). */
export interface DnsResponse {
  id: number;
  /** 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED. */
  rcode: number;
  authoritative: boolean;
  truncated: boolean;
  /** The TYPE of each answer record, in order. */
  answerTypes: number[];
  /** The serial of the first SOA record among the answers (the zone's version), when there is one. */
  soaSerial?: number;
}

/** Network probes for the VIP health checks (lib/adapters/net.ts); each bounded, each rejects with a readable reason. */
export interface Net {
  httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }>;
  dnsQuery(server: string, port: number, name: string, type: 'A' | 'NS' | 'SOA', timeoutMs: number): Promise<DnsResponse>;
  tcpConnect(host: string, port: number, timeoutMs: number): Promise<void>;
}

export interface Deps {
  config: Config;
  state: StateStore;
  log: Log;
  shell: Shell;
  ssh: Ssh;
  pg: Pg;
  pcp: Pcp;
  notify: Notify;
  clock: Clock;
  /** VIP health checks (lib/vip); optional so that fakes for other use cases need not build one. */
  net?: Net;
}

// ---- files written with care (lib/adapters/safe-write.ts)

export type WriteOutcome = 'written' | 'unchanged';
/** With `dryRun`: every check passed and the file differs ('would-write'), or it is as wanted; nothing written. */
export type DryRunOutcome = 'would-write' | 'unchanged';

export interface SafeWriteOptions {
  /** The file's permission bits (e.g. 0o600). */
  mode: number;
  /**
   * Who must own the file. Absent: whoever owns the directory. In a directory another user owns, the file can only
   * be that user's, so a different owner is refused there.
   */
  owner?: { uid: number; gid: number };
  /** Refuse unless the directory is one only root can change (a file root later trusts, like the fence ruleset). */
  rootDirectory?: boolean;
  /** Every check and the comparison a write makes, then stop before the temporary file: says what a write would do. */
  dryRun?: boolean;
}

/** Where a use case writes a file that must not be written through a planted link (lib/adapters/safe-write.ts's hostFiles). */
export interface SafeFiles {
  isFile(path: string): boolean;
  write(path: string, text: string, opts: SafeWriteOptions): WriteOutcome;
}
