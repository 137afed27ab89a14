// Fake PostgreSQL servers for the fake pgpool environment (test/support/pgpool-env.ts). The hooks are separate
// processes that talk to PostgreSQL with node-postgres (lib/adapters/pg.ts), so the world they see must be real
// sockets: each fake node is a small PostgreSQL wire-protocol v3 server on its cluster's loopback address (an ephemeral port), with
// just enough of the protocol for node-postgres — SSLRequest/GSSENCRequest refused with 'N', a StartupMessage
// answered with AuthenticationOk, ParameterStatus, BackendKeyData and ReadyForQuery; the simple query protocol
// ('Q') and the extended one (Parse/Bind/Describe/Execute/Sync, which node-postgres uses whenever a query has
// parameters); text-format results; ErrorResponse; Terminate.
//
// Behind the protocol sits a small state model per node (role, timeline, WAL positions, the standby's upstream
// from primary_conninfo, settings, slots) that answers the statements the hooks really send — lib/observe.ts
// OBSERVE_SQL, pg_promote, CHECKPOINT, ALTER SYSTEM + pg_reload_conf, the slot and synchronous-replication
// queries of lib/failover/*.ts — and changes on pg_promote, ALTER SYSTEM etc., so a test reads as a scenario:
// "node 0 is down, node 2 is further ahead than node 1 → pg_promote reached node 2 and nothing else". A standby's
// wal receiver and a primary's pg_stat_replication are derived from the cluster (who points at whom, who is up),
// so repointing a standby makes it show up on the new primary without the test saying so.
//
// Every statement is recorded with its parameters and the session's startup parameters. A statement the model
// does not know is answered with an ERROR naming it (and recorded), so a hook that starts sending something new
// fails loudly instead of getting a made-up answer. Tests can override anything with rules (SQL matcher → rows,
// error, hang, or closing the connection), and a node can be down (port closed: ECONNREFUSED) or black-holed
// (accepts connections, never answers a byte) to test timeouts.

import { createServer, type Server, type Socket } from 'node:net';
import { formatLsn, parseLsn, type Lsn } from '../../lib/model/lsn.ts';
import { OBSERVE_SQL } from '../../lib/observe.ts';
import { slotName } from '../../lib/recovery/standby-conf.ts';

// ---- values and replies ----------------------------------------------------------------------------------------

/** A column value; its PostgreSQL type follows from the JS type (see typeOf). */
export type Value = string | number | boolean | null | string[] | { [k: string]: unknown } | { [k: string]: unknown }[];
export type Row = Record<string, Value>;

export type Reply =
  /** A result set (or none, for a utility command: rows [] and a command tag such as "CHECKPOINT"). */
  | { rows: Row[]; command?: string; delayMs?: number }
  | { error: string; code?: string; delayMs?: number }
  /** Never answer this statement (nor anything after it on this connection). */
  | { hang: true }
  /** Drop the connection instead of answering (a server that dies mid-query). */
  | { close: true };

export interface Statement {
  node: number;
  sql: string;
  /** Bound parameters as node-postgres sent them (text format), null for SQL NULL. */
  params: (string | null)[];
  protocol: 'simple' | 'extended';
  /** The StartupMessage parameters of the session: user, database, application_name, statement_timeout, ... */
  session: Record<string, string>;
  at: number;
}

export type Matcher = string | RegExp | ((sql: string, params: (string | null)[]) => boolean);

interface Rule {
  match: Matcher;
  reply: Reply | ((s: Statement, node: FakeNode) => Reply);
  times: number;
}

// ---- the scenario vocabulary -------------------------------------------------------------------------------------

export type Reach = 'up' | 'down' | 'blackhole';
/** How the node's host answers ssh (used by the fake ssh of test/support/pgpool-env.ts). */
export type SshReach = 'ok' | 'unreachable' | 'hang';

export interface NodeSpec {
  role: 'primary' | 'standby';
  timeline?: number;
  /** Primary: pg_current_wal_lsn(). */
  lsn?: string;
  /** Standby: pg_last_wal_receive_lsn() / pg_last_wal_replay_lsn(). */
  receive?: string;
  replay?: string;
  /** Standby: the node its primary_conninfo points at (default: the first primary of the cluster); null: none. */
  upstream?: number | null;
  /** false: the standby replayed past the new primary's fork point and cannot stream from it (wal receiver waits). */
  canFollow?: boolean;
  synchronousStandbyNames?: string;
  /** Replication slots on this node (default for a primary: one per standby that streams from it). */
  slots?: string[];
  reach?: Reach;
  ssh?: SshReach;
  /** What pg_controldata says while the server is down: "in production" (crashed, the default) or "shut down". */
  stoppedState?: string;
  /** The timeline of the last checkpoint/restartpoint (default: the node's timeline); older on a standby that replays newer ones. */
  checkpointTimeline?: number;
}

type Common = Pick<NodeSpec, 'timeline' | 'synchronousStandbyNames' | 'slots' | 'reach' | 'ssh' | 'stoppedState' | 'checkpointTimeline'>;

export const primary = (o: Common & { lsn?: string } = {}): NodeSpec => ({ role: 'primary', ...o });
export const standby = (o: Common & { receive?: string; replay?: string; upstream?: number | null; canFollow?: boolean } = {}): NodeSpec => ({
  role: 'standby',
  ...o,
});

/** pgpool's and maas-ha's slot name for a standby (lib/failover/failover.ts slotName). */
/** The slot maas-ha names for a node (one rule, lib/recovery/standby-conf.ts). */
export const slotFor = slotName;

/**
 * Each fake cluster listens on a loopback address of its own: 127.(128 + pid / 256).(pid % 256).(a counter), so no
 * other cluster, in this process or in another test file running beside it, shares it (pids are below 32768
 * here; the counter wraps after 254 clusters, long after the first is gone). A down node's port is closed: on a
 * shared 127.0.0.1 the kernel could hand that very port to a node of another world, and a hook here "reaching"
 * the down node would talk to (and promote) that one; seen with two hook files in parallel. On an address of its
 * own a closed port stays refused, and a node that comes back up gets its port again.
 */
let clusters = 0;
export function nextFakeHost(pid = process.pid): string {
  clusters = (clusters % 254) + 1;
  return `127.${128 + (Math.floor(pid / 256) % 128)}.${pid % 256}.${clusters}`;
}

export const FAKE_SERVER_VERSION = '15.20 (maas-ha fake-pg)';

// ---- one node ----------------------------------------------------------------------------------------------------

export class FakeNode {
  role: 'primary' | 'standby';
  timeline: number;
  lsn: Lsn;
  receive: Lsn | undefined;
  replay: Lsn | undefined;
  canFollow: boolean;
  /** $PGDATA/standby.signal exists (PostgreSQL 12+: the server starts as a standby). */
  standbySignal: boolean;
  /** current_setting(): what the server runs with. */
  readonly settings = new Map<string, string>();
  /** ALTER SYSTEM: written to postgresql.auto.conf, applied by pg_reload_conf(). */
  readonly pending = new Map<string, string>();
  readonly slots = new Set<string>();
  reach: Reach = 'up';
  ssh: SshReach;
  stoppedState: string;
  checkpointTimeline: number | undefined;
  port = 0;
  get host(): string {
    return this.cluster.host;
  }
  readonly name: string;
  private rules: Rule[] = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private nextPid = 1000;
  /** Transaction ids handed out by txid_current() (a primary's first write). */
  private xid = 700;

  constructor(
    readonly id: number,
    readonly cluster: FakeCluster,
    spec: NodeSpec,
  ) {
    this.name = `node${id}`;
    this.role = spec.role;
    this.timeline = spec.timeline ?? 1;
    const fallback = spec.lsn ?? spec.receive ?? spec.replay ?? '0/3000000';
    this.lsn = parseLsn(spec.lsn ?? fallback);
    this.receive = spec.role === 'standby' ? parseLsn(spec.receive ?? spec.replay ?? fallback) : undefined;
    this.replay = spec.role === 'standby' ? parseLsn(spec.replay ?? spec.receive ?? fallback) : undefined;
    this.canFollow = spec.canFollow ?? true;
    this.standbySignal = spec.role === 'standby';
    this.settings.set('synchronous_standby_names', spec.synchronousStandbyNames ?? '');
    for (const s of spec.slots ?? []) this.slots.add(s);
    this.ssh = spec.ssh ?? 'ok';
    this.stoppedState = spec.stoppedState ?? 'in production';
    this.checkpointTimeline = spec.checkpointTimeline;
  }

  // -- scripting

  /** Answers statements matching `match` with `reply` (before the state model), `times` times (default: always). */
  on(match: Matcher, reply: Rule['reply'], times = Infinity): this {
    this.rules.push({ match, reply, times });
    return this;
  }

  /** Every statement this node received, in order. */
  get statements(): Statement[] {
    return this.cluster.statements.filter((s) => s.node === this.id);
  }

  // -- reachability

  /** Port closed: connecting fails with ECONNREFUSED, open sessions are cut. */
  async down(stoppedState?: string): Promise<void> {
    if (stoppedState) this.stoppedState = stoppedState;
    this.reach = 'down';
    await this.closeServer();
  }

  /** Accepts connections and never answers a byte (a hung host, a half-open network path). */
  async blackhole(): Promise<void> {
    this.reach = 'blackhole';
    for (const s of this.sockets) s.destroy();
    await this.listen();
  }

  async up(): Promise<void> {
    this.reach = 'up';
    await this.listen();
  }

  // -- derived replication state

  /** The node this standby's primary_conninfo points at, if it is one of the cluster's nodes. */
  upstream(): FakeNode | undefined {
    const ci = parseConninfo(this.settings.get('primary_conninfo') ?? '');
    return this.cluster.nodes.find((n) => n.host === ci.host && String(n.port) === ci.port);
  }

  /** pg_stat_wal_receiver, as this standby would show it; null without a row. */
  walReceiver(): { status: string; sender_host: string | null; sender_port: number | null; received_tli: number | null; slot_name: string | null } | null {
    // A stopped standby has no wal receiver; a black-holed one (hung, not dead) keeps streaming.
    if (this.role !== 'standby' || this.reach === 'down') return null;
    const ci = parseConninfo(this.settings.get('primary_conninfo') ?? '');
    const up = this.upstream();
    // A wal receiver whose sender is gone exits; PostgreSQL shows no row until the next attempt connects.
    if (!up || up.reach !== 'up') return null;
    const slot = this.settings.get('primary_slot_name') || null;
    const senderPort = Number(ci.port);
    if (!this.canFollow) return { status: 'waiting', sender_host: ci.host ?? null, sender_port: senderPort, received_tli: this.timeline, slot_name: slot };
    return { status: 'streaming', sender_host: ci.host ?? null, sender_port: senderPort, received_tli: up.timeline, slot_name: slot };
  }

  /** The standbys that stream from this node (pg_stat_replication). */
  replication(): { application_name: string; client_addr: string; state: string; sync_state: string; flush_lsn: string; replay_lsn: string }[] {
    if (this.reach !== 'up') return [];
    const streaming = this.cluster.nodes.filter((n) => n !== this && n.reach === 'up' && n.upstream() === this && n.walReceiver()?.status === 'streaming');
    const names = streaming.map((n) => n.applicationName());
    return streaming.map((n, i) => ({
      application_name: names[i]!,
      client_addr: this.cluster.host,
      state: 'streaming',
      sync_state: syncState(this.settings.get('synchronous_standby_names') ?? '', names, names[i]!),
      flush_lsn: formatLsn(n.receive ?? this.lsn),
      replay_lsn: formatLsn(n.replay ?? this.lsn),
    }));
  }

  /** The application_name a standby connects with: primary_conninfo's, or its node name. */
  applicationName(): string {
    return parseConninfo(this.settings.get('primary_conninfo') ?? '').application_name ?? this.name;
  }

  // -- the state model: statement → reply, with its effects

  answer(s: Statement): Reply {
    const sql = s.sql.trim();
    if (s.sql === OBSERVE_SQL) return { rows: [this.observeRow()] };
    // A replication connection (replication=database): IDENTIFY_SYSTEM reports the timeline the node is on (on
    // a standby, the one it replays) and its WAL position. A normal session does not know the command.
    if (/^IDENTIFY_SYSTEM$/i.test(sql)) {
      if (s.session.replication !== 'database') return { error: 'syntax error at or near "IDENTIFY_SYSTEM"', code: '42601' };
      const pos = this.role === 'standby' ? (this.receive ?? this.replay ?? this.lsn) : this.lsn;
      return { rows: [{ systemid: '7300000000000000001', timeline: this.timeline, xlogpos: formatLsn(pos), dbname: 'postgres' }] };
    }
    if (/^SELECT 1$/i.test(sql)) return { rows: [{ '?column?': 1 }] };
    if (/^SELECT pg_is_in_recovery\(\)$/i.test(sql)) return { rows: [{ pg_is_in_recovery: this.role === 'standby' }] };
    if (/^SELECT pg_promote\(/i.test(sql)) {
      if (this.role !== 'standby') return { error: 'recovery is not in progress', code: '55000' };
      this.promote();
      const col = /\bAS (\w+)\s*$/i.exec(sql)?.[1] ?? 'pg_promote';
      return { rows: [{ [col]: true }] };
    }
    if (/^CHECKPOINT$/i.test(sql)) return { rows: [], command: 'CHECKPOINT' };
    // A transaction id is a write: a standby refuses it, in PostgreSQL's words.
    if (/^SELECT (set_config\('synchronous_commit', 'local', true\) AS sc, )?txid_current\(\)::text AS xid$/i.test(sql)) {
      if (this.role === 'standby') return { error: 'cannot assign TransactionIds during recovery', code: '25006' };
      return { rows: [{ xid: String(++this.xid) }] };
    }
    let m = /^ALTER SYSTEM SET (\w+)\s*(?:=|TO)\s*'((?:[^']|'')*)'$/i.exec(sql);
    if (m) {
      this.pending.set(m[1]!.toLowerCase(), m[2]!.replace(/''/g, "'"));
      return { rows: [], command: 'ALTER SYSTEM' };
    }
    if (/^SELECT pg_reload_conf\(\)$/i.test(sql)) {
      for (const [k, v] of this.pending) this.settings.set(k, v);
      this.pending.clear();
      return { rows: [{ pg_reload_conf: true }] };
    }
    m = /^SELECT current_setting\('(\w+)'\)(?: AS (\w+))?$/i.exec(sql);
    if (m) return { rows: [{ [m[2] ?? 'current_setting']: this.settings.get(m[1]!.toLowerCase()) ?? '' }] };
    if (/current_setting\('synchronous_standby_names'\) AS current,[\s\S]*array_agg\(application_name::text\) FROM pg_stat_replication WHERE state = 'streaming'/.test(sql)) {
      const streaming = this.replication().filter((r) => r.state === 'streaming').map((r) => r.application_name);
      return { rows: [{ current: this.settings.get('synchronous_standby_names') ?? '', streaming }] };
    }
    if (/pg_drop_replication_slot\(slot_name\) FROM pg_replication_slots WHERE slot_name = \$1 AND NOT active/.test(sql)) {
      const slot = s.params[0] ?? '';
      if (!this.slots.has(slot) || this.slotActive(slot)) return { rows: [], command: 'SELECT 0' };
      this.slots.delete(slot);
      return { rows: [{ pg_drop_replication_slot: '' }] };
    }
    if (/pg_create_physical_replication_slot\(\$1, true\) WHERE NOT EXISTS \(SELECT 1 FROM pg_replication_slots WHERE slot_name = \$1\)/.test(sql)) {
      const slot = s.params[0] ?? '';
      if (this.slots.has(slot)) return { rows: [], command: 'SELECT 0' };
      this.slots.add(slot);
      return { rows: [{ pg_create_physical_replication_slot: `(${slot},${formatLsn(this.lsn)})` }] };
    }
    return { error: `fake-pg node ${this.id}: no scripted answer for: ${sql}`, code: '0A000' };
  }

  /** pg_promote(): a new timeline, writable, no longer following anyone. */
  promote(): void {
    this.role = 'primary';
    this.standbySignal = false; // the startup process removes it at the end of recovery
    this.timeline += 1;
    const r = this.receive ?? 0n;
    const p = this.replay ?? 0n;
    this.lsn = r > p ? r : p;
  }

  slotActive(slot: string): boolean {
    return this.cluster.nodes.some((n) => n.upstream() === this && n.settings.get('primary_slot_name') === slot && n.walReceiver()?.status === 'streaming');
  }

  /** The row OBSERVE_SQL returns on this node. */
  observeRow(): Row {
    const isStandby = this.role === 'standby';
    return {
      in_recovery: isStandby,
      primary_tli: isStandby ? null : this.timeline,
      checkpoint_tli: this.checkpointTimeline ?? this.timeline,
      current_lsn: isStandby ? null : formatLsn(this.lsn),
      receive_lsn: this.receive === undefined ? null : formatLsn(this.receive),
      replay_lsn: this.replay === undefined ? null : formatLsn(this.replay),
      wal_receiver: this.walReceiver(),
      replication: this.replication(),
      synchronous_standby_names: this.settings.get('synchronous_standby_names') ?? '',
    };
  }

  // -- the server

  async listen(): Promise<void> {
    if (this.server) return;
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async closeServer(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.setNoDelay(true);
    if (this.reach === 'blackhole') {
      socket.on('data', () => {}); // read and ignore: the client's own timeout must end this
      return;
    }
    new Session(this, socket, this.nextPid++).start();
  }

  /** Rules first (consuming their count), then the model. */
  reply(s: Statement): Reply {
    const rule = this.rules.find((r) => r.times > 0 && matches(r.match, s.sql, s.params));
    if (rule) {
      rule.times -= 1;
      return typeof rule.reply === 'function' ? rule.reply(s, this) : rule.reply;
    }
    return this.answer(s);
  }
}

function matches(m: Matcher, sql: string, params: (string | null)[]): boolean {
  if (typeof m === 'string') return sql.includes(m);
  if (m instanceof RegExp) return m.test(sql);
  return m(sql, params);
}

/** host/port/application_name of a libpq key=value conninfo (values without quotes, as maas-ha writes them). */
export function parseConninfo(ci: string): { host?: string; port?: string; application_name?: string } {
  const out: Record<string, string> = {};
  for (const m of ci.matchAll(/(\w+)\s*=\s*('((?:[^'\\]|\\.)*)'|\S+)/g)) out[m[1]!] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]!;
  return out;
}

/** pg_stat_replication.sync_state of `name` under synchronous_standby_names `ssn`, with `streaming` connected. */
export function syncState(ssn: string, streaming: string[], name: string): string {
  const s = ssn.trim();
  if (s === '') return 'async';
  const m = /^(ANY|FIRST)?\s*(\d+)?\s*\((.*)\)$/is.exec(s);
  const kind = m?.[1]?.toUpperCase() ?? 'FIRST';
  const count = m?.[2] ? Number(m[2]) : 1;
  const list = (m ? m[3]! : s).split(',').map((x) => x.trim().replace(/^"(.*)"$/, '$1'));
  const listed = (n: string) => list.includes('*') || list.includes(n);
  if (!listed(name)) return 'async';
  if (kind === 'ANY') return 'quorum';
  const order = list.includes('*') ? streaming : list.filter((n) => streaming.includes(n));
  return order.indexOf(name) < count ? 'sync' : 'potential';
}

// ---- the protocol ----------------------------------------------------------------------------------------------

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/** PostgreSQL type OIDs of the values we send (node-postgres parses text by OID). */
const OID = { bool: 16, int4: 23, text: 25, json: 114, textArray: 1009 } as const;

function typeOf(v: Value): number {
  if (typeof v === 'boolean') return OID.bool;
  if (typeof v === 'number') return OID.int4;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return OID.textArray;
  if (v !== null && typeof v === 'object') return OID.json;
  return OID.text;
}

function textOf(v: Value, oid: number): string | null {
  if (v === null) return null;
  if (oid === OID.bool) return v ? 't' : 'f';
  if (oid === OID.textArray) return `{${(v as string[]).map((x) => `"${x.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
  if (oid === OID.json) return JSON.stringify(v);
  return String(v);
}

function message(type: string, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

const cstr = (s: string) => Buffer.from(`${s}\0`, 'utf8');
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};

function rowDescription(columns: { name: string; oid: number }[]): Buffer {
  return message(
    'T',
    Buffer.concat([int16(columns.length), ...columns.map((c) => Buffer.concat([cstr(c.name), int32(0), int16(0), int32(c.oid), int16(-1), int32(-1), int16(0)]))]),
  );
}

function dataRow(values: (string | null)[]): Buffer {
  return message(
    'D',
    Buffer.concat([
      int16(values.length),
      ...values.map((v) => {
        if (v === null) return int32(-1);
        const b = Buffer.from(v, 'utf8');
        return Buffer.concat([int32(b.length), b]);
      }),
    ]),
  );
}

function errorResponse(msg: string, code = 'XX000'): Buffer {
  return message('E', Buffer.concat([cstr('SERROR'), cstr('VERROR'), cstr(`C${code}`), cstr(`M${msg}`), Buffer.from([0])]));
}

const readyForQuery = () => message('Z', Buffer.from('I'));

/** A result, encoded: RowDescription (or NoData) + DataRows + CommandComplete. */
interface Encoded {
  /** RowDescription; undefined for a statement that returns no rows (NoData in the extended protocol). */
  description: Buffer | undefined;
  rows: Buffer[];
  complete: Buffer;
}

function encode(reply: { rows: Row[]; command?: string }, sql: string): Encoded {
  const first = reply.rows[0];
  const columns = first ? Object.keys(first).map((name) => ({ name, oid: typeOf(reply.rows.find((r) => r[name] !== null)?.[name] ?? null) })) : [];
  const tag = reply.command ?? (/^\s*select/i.test(sql) ? `SELECT ${reply.rows.length}` : sql.trim().split(/\s+/)[0]!.toUpperCase());
  return {
    description: columns.length ? rowDescription(columns) : undefined,
    rows: reply.rows.map((r) => dataRow(columns.map((c) => textOf(r[c.name] ?? null, c.oid)))),
    complete: message('C', cstr(tag)),
  };
}

/** One client connection: a sequential loop over its messages. */
class Session {
  private buf = Buffer.alloc(0);
  private started = false;
  private params: Record<string, string> = {};
  private readonly prepared = new Map<string, string>();
  private readonly portals = new Map<string, { sql: string; params: (string | null)[]; result?: Encoded | 'failed' }>();
  /** After an error in the extended protocol, everything up to Sync is skipped (as PostgreSQL does). */
  private skipToSync = false;
  private hung = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly node: FakeNode,
    private readonly socket: Socket,
    private readonly pid: number,
  ) {}

  start(): void {
    this.socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.drain();
    });
  }

  private drain(): void {
    for (;;) {
      if (!this.started) {
        if (this.buf.length < 4) return;
        const len = this.buf.readInt32BE(0);
        if (this.buf.length < len) return;
        const body = this.buf.subarray(4, len);
        this.buf = this.buf.subarray(len);
        this.enqueue(() => this.startup(body));
        continue;
      }
      if (this.buf.length < 5) return;
      const type = String.fromCharCode(this.buf[0]!);
      const len = this.buf.readInt32BE(1);
      if (this.buf.length < len + 1) return;
      const body = this.buf.subarray(5, len + 1);
      this.buf = this.buf.subarray(len + 1);
      this.enqueue(() => this.handle(type, body));
    }
  }

  private enqueue(f: () => void | Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.hung || this.socket.destroyed) return;
      await f();
    });
  }

  private send(...bufs: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(bufs));
  }

  private startup(body: Buffer): void {
    const code = body.readInt32BE(0);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.socket.write('N');
      return; // the StartupMessage follows, again length-prefixed without a type byte
    }
    if (code === CANCEL_REQUEST) {
      this.socket.destroy();
      return;
    }
    if (code !== PROTOCOL_3) {
      this.send(errorResponse(`unsupported frontend protocol ${code >> 16}.${code & 0xffff}`, '0A000'));
      this.socket.end();
      return;
    }
    const parts = body.subarray(4).toString('utf8').split('\0');
    for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) this.params[parts[i]!] = parts[i + 1]!;
    this.started = true;
    const status = (k: string, v: string) => message('S', Buffer.concat([cstr(k), cstr(v)]));
    this.send(
      message('R', int32(0)),
      status('server_version', FAKE_SERVER_VERSION),
      status('server_encoding', 'UTF8'),
      status('client_encoding', 'UTF8'),
      status('DateStyle', 'ISO, MDY'),
      status('integer_datetimes', 'on'),
      status('standard_conforming_strings', 'on'),
      status('TimeZone', 'UTC'),
      status('is_superuser', 'on'),
      status('session_authorization', this.params.user ?? 'postgres'),
      status('application_name', this.params.application_name ?? ''),
      message('K', Buffer.concat([int32(this.pid), int32(0x5eed)])),
      readyForQuery(),
    );
  }

  private record(sql: string, params: (string | null)[], protocol: Statement['protocol']): Statement {
    const s: Statement = { node: this.node.id, sql, params, protocol, session: { ...this.params }, at: Date.now() };
    this.node.cluster.statements.push(s);
    return s;
  }

  /** Runs a statement: a rule's or the model's reply, after its delay. undefined: the session hung or closed. */
  private async run(s: Statement): Promise<Encoded | { error: Buffer } | undefined> {
    const reply = this.node.reply(s);
    if ('hang' in reply) {
      this.hung = true;
      return undefined;
    }
    if ('close' in reply) {
      this.socket.destroy();
      return undefined;
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if ('error' in reply) return { error: errorResponse(reply.error, reply.code) };
    return encode(reply, s.sql);
  }

  private async handle(type: string, body: Buffer): Promise<void> {
    if (this.skipToSync && type !== 'S') return;
    switch (type) {
      case 'Q': {
        const sql = body.toString('utf8', 0, body.length - 1);
        if (sql.trim() === '') {
          this.send(message('I'), readyForQuery());
          return;
        }
        const r = await this.run(this.record(sql, [], 'simple'));
        if (!r) return;
        this.send(...('error' in r ? [r.error] : [r.description ?? Buffer.alloc(0), ...r.rows, r.complete]), readyForQuery());
        return;
      }
      case 'P': {
        const [name, sql] = cstrings(body, 2);
        this.prepared.set(name!, sql!);
        this.send(message('1'));
        return;
      }
      case 'B': {
        let at = 0;
        const [portal, stmt] = cstrings(body, 2);
        at = Buffer.byteLength(portal!) + Buffer.byteLength(stmt!) + 2;
        const nFormats = body.readInt16BE(at);
        at += 2 + 2 * nFormats;
        const nParams = body.readInt16BE(at);
        at += 2;
        const params: (string | null)[] = [];
        for (let i = 0; i < nParams; i++) {
          const len = body.readInt32BE(at);
          at += 4;
          if (len < 0) params.push(null);
          else {
            params.push(body.toString('utf8', at, at + len));
            at += len;
          }
        }
        const sql = this.prepared.get(stmt!);
        if (sql === undefined) return this.extendedError(`prepared statement "${stmt}" does not exist`, '26000');
        this.portals.set(portal!, { sql, params });
        this.send(message('2'));
        return;
      }
      case 'D': {
        const kind = String.fromCharCode(body[0]!);
        const [name] = cstrings(body.subarray(1), 1);
        if (kind === 'S') {
          this.send(message('t', int16(0)), message('n'));
          return;
        }
        const result = await this.execute(name!);
        if (result) this.send(result.description ?? message('n'));
        return;
      }
      case 'E': {
        const [name] = cstrings(body, 1);
        const result = await this.execute(name!);
        if (result) this.send(...result.rows, result.complete);
        return;
      }
      case 'S':
        this.skipToSync = false;
        this.send(readyForQuery());
        return;
      case 'H':
        return;
      case 'C':
        this.send(message('3'));
        return;
      case 'X':
        this.socket.end();
        return;
      default:
        this.send(errorResponse(`fake-pg: unsupported message type ${JSON.stringify(type)}`, '08P01'));
    }
  }

  /** A portal's result, computed once (at Describe or Execute, whichever comes first) so effects happen once. */
  private async execute(name: string): Promise<Encoded | undefined> {
    const portal = this.portals.get(name);
    if (!portal) {
      this.extendedError(`portal "${name}" does not exist`, '34000');
      return undefined;
    }
    if (portal.result === 'failed') return undefined;
    if (!portal.result) {
      const r = await this.run(this.record(portal.sql, portal.params, 'extended'));
      if (!r) return undefined;
      if ('error' in r) {
        portal.result = 'failed';
        this.send(r.error);
        this.skipToSync = true;
        return undefined;
      }
      portal.result = r;
    }
    return portal.result;
  }

  private extendedError(msg: string, code: string): void {
    this.send(errorResponse(msg, code));
    this.skipToSync = true;
  }
}

function cstrings(body: Buffer, n: number): string[] {
  const out: string[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    const end = body.indexOf(0, at);
    out.push(body.toString('utf8', at, end));
    at = end + 1;
  }
  return out;
}

// ---- the cluster -------------------------------------------------------------------------------------------------

export class FakeCluster {
  readonly nodes: FakeNode[] = [];
  /** The loopback address every node of this cluster listens on (nextFakeHost). */
  readonly host = nextFakeHost();
  /** Every statement any node received, in arrival order. */
  readonly statements: Statement[] = [];

  /** Starts one server per spec; node ids are the indexes. Standbys point at their upstream (default: the first primary). */
  static async start(specs: NodeSpec[]): Promise<FakeCluster> {
    const c = new FakeCluster();
    specs.forEach((spec, id) => c.nodes.push(new FakeNode(id, c, spec)));
    // Every node gets a port first (a down node too: its port is then closed, so connecting is refused).
    await Promise.all(c.nodes.map((n) => n.listen()));
    const firstPrimary = specs.findIndex((s) => s.role === 'primary');
    specs.forEach((spec, id) => {
      const n = c.nodes[id]!;
      if (spec.role !== 'standby') return;
      const upId = spec.upstream === undefined ? (firstPrimary >= 0 ? firstPrimary : null) : spec.upstream;
      const up = upId === null ? undefined : c.nodes[upId];
      if (!up) return;
      n.settings.set('primary_conninfo', `host=${up.host} port=${up.port} user=replicator application_name=${n.name}`);
      n.settings.set('primary_slot_name', slotFor(id));
      if (!specs[upId!]!.slots) up.slots.add(slotFor(id));
    });
    await Promise.all(
      specs.map(async (spec, id) => {
        if (spec.reach === 'down') await c.nodes[id]!.down();
        else if (spec.reach === 'blackhole') await c.nodes[id]!.blackhole();
      }),
    );
    return c;
  }

  node(id: number): FakeNode {
    const n = this.nodes[id];
    if (!n) throw new Error(`fake cluster has no node ${id}`);
    return n;
  }

  /** Ids of the nodes that received pg_promote(), in order. */
  promoted(): number[] {
    return this.statements.filter((s) => /^\s*SELECT pg_promote\(/i.test(s.sql)).map((s) => s.node);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.closeServer()));
  }
}

export { formatLsn, parseLsn };
