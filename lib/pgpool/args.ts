// What pgpool passes to our hooks, parsed into meaning-level values. Pure: no I/O.
//
// pgpool builds each hook's command line by pasting placeholder values into the configured string and hands it to
// `/bin/sh -c` (docs/pgpool-hooks.md, "Who runs what, where" and "Placeholders"). The lines in pgpool/hooks.conf
// therefore pass every placeholder as the value of a named flag, double-quoted (`--failed-node "%d"`), so that:
// - a value that is empty (pgpool writes the two characters `""` for a missing node's host, port and data
//   directory) still is one argument and cannot shift the others;
// - the `execute command:` line in pgpool's log says what each value is;
// - a line wired into the wrong hook setting fails loudly (unknown flag) instead of being misread.
// The flag names are per hook, because the letters mean different things per hook (docs/pgpool-hooks.md,
// "Placeholders"): in failover `%m` is merely the new *main* node (lowest live id, possibly a standby), in
// follow_primary it is the new *primary*.
//
// Value rules, the same for every flag: surrounding whitespace is trimmed; the empty string, the literal `""` and
// `-1` mean "absent" (pgpool's way of saying there is no such node); anything else must be a valid node id
// (0..127, pgpool's MAX_NUM_BACKENDS), port (1..65535), host or absolute path, or it is a UsageError that names
// the flag. The positional form of pgpool's sample scripts (`%d %h %p %D %m %H %M %P %r %R [%N %S]`) is still
// accepted so an existing wiring keeps working, but it cannot survive an empty unquoted value; the flag form can.
// Only ASCII whitespace is trimmed, and nothing longer than a real value (a node id of 3 digits, a port of 5, a
// host of 255 characters, a path of 4095) or holding invisible Unicode (bidi overrides, zero-width spaces) is
// taken; messages quote a value escaped and cut short, so a hostile one cannot forge or flood a log line.

import { parseFlags, type FlagsSpec } from '../flags.ts';
import { UsageError } from '../errors.ts';

/** pgpool's placeholder letters, in the order of the sample scripts' positional arguments. */
export const PLACEHOLDERS = ['d', 'h', 'p', 'D', 'm', 'H', 'M', 'P', 'r', 'R', 'N', 'S'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

export type EventKind = 'failover' | 'follow_primary' | 'failback';

/** The flag (without `--`) that carries each placeholder, per hook. pgpool/hooks.conf uses exactly these. */
export const EVENT_FLAGS: Readonly<Record<EventKind, Readonly<Record<Placeholder, string>>>> = {
  failover: {
    d: 'failed-node',
    h: 'failed-host',
    p: 'failed-port',
    D: 'failed-data-dir',
    m: 'new-main',
    H: 'new-main-host',
    r: 'new-main-port',
    R: 'new-main-data-dir',
    M: 'old-main',
    P: 'old-primary',
    N: 'old-primary-host',
    S: 'old-primary-port',
  },
  follow_primary: {
    d: 'node',
    h: 'node-host',
    p: 'node-port',
    D: 'node-data-dir',
    m: 'new-primary',
    H: 'new-primary-host',
    r: 'new-primary-port',
    R: 'new-primary-data-dir',
    M: 'old-main',
    P: 'old-primary',
    N: 'old-primary-host',
    S: 'old-primary-port',
  },
  failback: {
    d: 'attached-node',
    h: 'attached-host',
    p: 'attached-port',
    D: 'attached-data-dir',
    m: 'new-main',
    H: 'new-main-host',
    r: 'new-main-port',
    R: 'new-main-data-dir',
    M: 'old-main',
    P: 'old-primary',
    N: 'old-primary-host',
    S: 'old-primary-port',
  },
};

/** `%N` and `%S` exist since pgpool 4.1; a 3.x line leaves them out. Every other flag must be on the line. */
const OPTIONAL_PLACEHOLDERS: ReadonlySet<Placeholder> = new Set(['N', 'S']);

/** A backend as pgpool describes it: backend_hostnameN / backend_portN / backend_data_directoryN. */
export interface NodeRef {
  id: number;
  /** Absent when backend_hostnameN is empty (Unix socket). */
  host?: string;
  port?: number;
  /** Absent when backend_data_directoryN is not set. */
  dataDir?: string;
}

/** The old primary: `%P`, `%N`, `%S`. */
export interface PrimaryRef {
  id: number;
  host?: string;
  port?: number;
}

export interface FailoverArgs {
  kind: 'failover';
  /** `%d %h %p %D`: the node pgpool just detached. */
  failedNode: NodeRef;
  /** `%m %H %r %R`: pgpool's new *main* node, the lowest live id. NOT necessarily a primary (docs/pgpool-hooks.md,
   *  "Placeholders"). */
  newMain?: NodeRef;
  /** `%M`. */
  oldMain?: number;
  /** `%P %N %S`: the primary before this failover; absent when there was none. */
  oldPrimary?: PrimaryRef;
}

export interface FollowPrimaryArgs {
  kind: 'follow_primary';
  /** `%d %h %p %D`: the down node being processed (pgpool runs the hook once per down node, the failed one too). */
  node: NodeRef;
  /** `%m %H %r %R`: the new primary. */
  newPrimary: NodeRef;
  /** `%M`: the old primary in 4.2+ (equal to `%P`), the old master in 3.x. */
  oldMain?: number;
  oldPrimary?: PrimaryRef;
}

export interface FailbackArgs {
  kind: 'failback';
  /** `%d %h %p %D`: the node just attached. */
  attachedNode: NodeRef;
  /** `%m %H %r %R`: new main node after the attach (lowest live id). */
  newMain?: NodeRef;
  oldMain?: number;
  oldPrimary?: PrimaryRef;
}

export type EventArgs = FailoverArgs | FollowPrimaryArgs | FailbackArgs;

interface Raw {
  value: string;
  /** How an error message names this value: `--failed-port`, or `argument 3 (%p, --failed-port)`. */
  label: string;
}

type Raws = Map<Placeholder, Raw>;

/**
 * Parses the argv of maas-ha-failover, maas-ha-follow-primary or maas-ha-failback (flags as in pgpool/hooks.conf,
 * or the sample scripts' 10 or 12 positional arguments).
 */
export function parseEventArgs(argv: readonly string[], kind: 'failover'): FailoverArgs;
export function parseEventArgs(argv: readonly string[], kind: 'follow_primary'): FollowPrimaryArgs;
export function parseEventArgs(argv: readonly string[], kind: 'failback'): FailbackArgs;
export function parseEventArgs(argv: readonly string[], kind: EventKind): EventArgs;
export function parseEventArgs(argv: readonly string[], kind: EventKind): EventArgs {
  const raws = argv.length > 0 && !(argv[0] ?? '').startsWith('--') ? positional(argv, kind) : flagged(argv, kind);
  const at = (p: Placeholder) => raws.get(p);
  const node = (required: boolean) => nodeRef(at('d'), at('h'), at('p'), at('D'), required);
  const main = (required: boolean) => nodeRef(at('m'), at('H'), at('r'), at('R'), required);
  const oldMain = optionalId(at('M'));
  const oldPrimary = primaryRef(at('P'), at('N'), at('S'));
  switch (kind) {
    case 'failover':
      return compact({ kind, failedNode: node(true)!, newMain: main(false), oldMain, oldPrimary });
    case 'follow_primary':
      return compact({ kind, node: node(true)!, newPrimary: main(true)!, oldMain, oldPrimary });
    case 'failback':
      return compact({ kind, attachedNode: node(true)!, newMain: main(false), oldMain, oldPrimary });
  }
}

function flagged(argv: readonly string[], kind: EventKind): Raws {
  const flags = EVENT_FLAGS[kind];
  // Every flag optional here: a value that is wrong is reported before a flag that is missing, because a
  // person trying one flag by hand (`--failed-node x`) needs to hear about the value they typed.
  const spec: Record<string, { type: 'string' }> = {};
  for (const p of PLACEHOLDERS) spec[flags[p]] = { type: 'string' };
  let values: Record<string, string | undefined>;
  try {
    values = parseFlags(argv, spec as FlagsSpec).values as Record<string, string | undefined>;
  } catch (err) {
    // The likely cause of an unknown flag is a line pasted into the wrong pgpool setting: say which flags fit.
    if (err instanceof UsageError && err.message.endsWith(': unknown flag')) {
      throw new UsageError(`${err.message}; the ${kind} hook takes ${PLACEHOLDERS.map((p) => `--${flags[p]}`).join(' ')}`);
    }
    throw err;
  }
  const raws: Raws = new Map();
  for (const p of PLACEHOLDERS) {
    const value = values[flags[p]];
    if (value !== undefined) raws.set(p, { value, label: `--${flags[p]}` });
  }
  for (const [p, raw] of raws) checkValue(p, raw);
  const missing = PLACEHOLDERS.filter((p) => !OPTIONAL_PLACEHOLDERS.has(p) && !raws.has(p)).map((p) => `--${flags[p]}`);
  if (missing.length) throw new UsageError(`${missing.join(', ')}: missing (required)`);
  return raws;
}

/** Checks a value by what its placeholder holds (node id, host, port, data directory); throws naming the flag. */
function checkValue(p: Placeholder, raw: Raw): void {
  if ('dmMP'.includes(p)) optionalId(raw);
  else if ('hHN'.includes(p)) optionalHost(raw);
  else if ('prS'.includes(p)) optionalPort(raw);
  else optionalDataDir(raw);
}

/** The sample scripts' order: 10 arguments (3.x, and follow_primary.sh.sample) or 12 (4.1+ with `%N %S`). */
function positional(argv: readonly string[], kind: EventKind): Raws {
  if (argv.length !== 10 && argv.length !== 12) {
    throw new UsageError(
      `got ${argv.length} positional arguments, expected 10 (%d %h %p %D %m %H %M %P %r %R) or 12 (… %N %S); ` +
        `an unquoted empty value disappears in pgpool's shell line: quote every placeholder, or use the --flag form of pgpool/hooks.conf`,
    );
  }
  const raws: Raws = new Map();
  argv.forEach((value, i) => {
    const p = PLACEHOLDERS[i]!;
    raws.set(p, { value, label: `argument ${i + 1} (%${p}, --${EVENT_FLAGS[kind][p]})` });
  });
  return raws;
}

/** Value present and not one of pgpool's ways of writing "none". */
function present(raw: Raw | undefined): string | undefined {
  if (!raw) return undefined;
  const v = raw.value.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
  return v === '' || v === '""' || v === '-1' ? undefined : v;
}

function nodeRef(id: Raw | undefined, host: Raw | undefined, port: Raw | undefined, dataDir: Raw | undefined, required: boolean): NodeRef | undefined {
  const n = required ? requireId(id) : optionalId(id);
  if (n === undefined) {
    // pgpool derives %H/%r/%R from %m (and %N/%S from %P): with no node there are no details. Details without a
    // node mean the flags were wired to the wrong placeholders.
    orphans(id, [host, port, dataDir]);
    return undefined;
  }
  return compact({ id: n, host: optionalHost(host), port: optionalPort(port), dataDir: optionalDataDir(dataDir) });
}

function primaryRef(id: Raw | undefined, host: Raw | undefined, port: Raw | undefined): PrimaryRef | undefined {
  const n = optionalId(id);
  if (n === undefined) {
    orphans(id, [host, port]);
    return undefined;
  }
  return compact({ id: n, host: optionalHost(host), port: optionalPort(port) });
}

function orphans(id: Raw | undefined, details: (Raw | undefined)[]): void {
  for (const d of details) {
    const v = present(d);
    if (d && v !== undefined) {
      throw new UsageError(`${d.label}: got ${shown(d.value)} but ${id ? `${id.label} is absent (${shown(id.value)})` : 'no node id was given'}; pgpool never passes one without the other`);
    }
  }
}

// ---- value validators, shared with the recovery parsers --------------------------------------------------------

/** pgpool's MAX_NUM_BACKENDS is 128. */
const MAX_NODE_ID = 127;
const DIGITS = /^\d+$/;
/** Names, IPv4/IPv6 (with an optional %zone), or a Unix socket directory; nothing a shell or libpq treats specially. */
const HOST = /^[A-Za-z0-9_.:%[\]/-]{1,255}$/;
/** Control characters, and the invisible ones that make a path read as another (bidi overrides, zero-width). */
const CONTROL = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
const MAX_PATH = 4095;

/** A value as a message quotes it: as given when short and plain, else escaped and cut short with its length. */
function shown(v: string): string {
  if (v.length <= 80 && /^[\x20-\x7e]*$/.test(v)) return `"${v}"`;
  const cut = v.length > 80 ? v.slice(0, 60) : v;
  const q = JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return cut === v ? q : `${q.slice(0, -1)}…" (${v.length} characters)`;
}

function optionalId(raw: Raw | undefined): number | undefined {
  const v = present(raw);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!DIGITS.test(v) || v.length > 3 || n > MAX_NODE_ID) throw new UsageError(`${raw!.label}: expected a node id (0 to ${MAX_NODE_ID}), got ${shown(raw!.value)}`);
  return n;
}

function requireId(raw: Raw | undefined): number {
  if (!raw) throw new UsageError('node id missing');
  const n = optionalId(raw);
  if (n === undefined) throw new UsageError(`${raw.label}: expected a node id (0 to ${MAX_NODE_ID}), got ${shown(raw.value)}`);
  return n;
}

function optionalPort(raw: Raw | undefined): number | undefined {
  const v = present(raw);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!DIGITS.test(v) || v.length > 5 || n < 1 || n > 65535) throw new UsageError(`${raw!.label}: expected a port number, got ${shown(raw!.value)}`);
  return n;
}

function requirePort(raw: Raw): number {
  const n = optionalPort(raw);
  if (n === undefined) throw new UsageError(`${raw.label}: expected a port number, got ${shown(raw.value)}`);
  return n;
}

function optionalHost(raw: Raw | undefined): string | undefined {
  const v = present(raw);
  if (v === undefined) return undefined;
  if (!HOST.test(v) || v.startsWith('-')) throw new UsageError(`${raw!.label}: expected a host name, IP address or socket directory, got ${shown(raw!.value)}`);
  return v;
}

function requireHost(raw: Raw): string {
  const h = optionalHost(raw);
  if (h === undefined) throw new UsageError(`${raw.label}: expected a host name, IP address or socket directory, got ${shown(raw.value)}`);
  return h;
}

function optionalDataDir(raw: Raw | undefined): string | undefined {
  const v = present(raw);
  if (v === undefined) return undefined;
  if (!v.startsWith('/') || CONTROL.test(v) || v.length > MAX_PATH) throw new UsageError(`${raw!.label}: expected an absolute path, got ${shown(raw!.value)}`);
  return v;
}

function requireDataDir(raw: Raw): string {
  const d = optionalDataDir(raw);
  if (d === undefined) throw new UsageError(`${raw.label}: expected an absolute path, got ${shown(raw.value)}`);
  return d;
}

/** Drops undefined properties, so results compare equal to literals that leave them out. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

// ---- online recovery -----------------------------------------------------------------------------------------

/** The arguments of `recovery_1st_stage` (docs/pgpool-hooks.md, "Online recovery"). */
export interface RecoveryArgs {
  /** $1: data directory of the primary that runs the script (PostgreSQL's DataDir, always absolute). */
  primaryDataDir: string;
  /** $2: backend_hostnameN of the node being recovered; `localhost` when that is empty or a socket path. */
  targetHost: string;
  /** $3: backend_data_directoryN of the node being recovered. */
  targetDataDir: string;
  /** $4: the primary's port (pgpool 3.4+). */
  primaryPort: number;
  /** $5: id of the node being recovered (4.0+). */
  targetNodeId?: number;
  /** $6: port of the node being recovered (4.1+). */
  targetPort?: number;
  /** $7: the primary's host exactly as in backend_hostnameN (4.3+): build primary_conninfo from this. */
  primaryHost?: string;
}

const RECOVERY_ARGS = ['primary data directory', 'target host', 'target data directory', 'primary port', 'target node id', 'target port', 'primary host'];

/**
 * `recovery_1st_stage` is run by the pgpool_recovery extension inside the primary's PostgreSQL, which builds the
 * command line itself: `"$PGDATA/recovery_1st_stage" "$1" "$2" "$3" "$4" $5 "$6" "$7"` (4 to 7 arguments by
 * pgpool version), so there are no flags to choose.
 */
export function parseRecoveryArgs(argv: readonly string[]): RecoveryArgs {
  if (argv.length < 4 || argv.length > 7) {
    throw new UsageError(
      `recovery_1st_stage: got ${argv.length} argument${argv.length === 1 ? '' : 's'}, expected 4 to 7 ` +
        `(${RECOVERY_ARGS.slice(0, 4).join(', ')}[, ${RECOVERY_ARGS.slice(4).join(', ')}])`,
    );
  }
  const raw = (i: number): Raw => ({ value: argv[i] ?? '', label: `$${i + 1} (${RECOVERY_ARGS[i]})` });
  const result: RecoveryArgs = {
    primaryDataDir: requireDataDir(raw(0)),
    targetHost: requireHost(raw(1)),
    targetDataDir: requireDataDir(raw(2)),
    primaryPort: requirePort(raw(3)),
  };
  if (argv.length >= 5) result.targetNodeId = requireId(raw(4));
  if (argv.length >= 6) result.targetPort = requirePort(raw(5));
  if (argv.length >= 7) result.primaryHost = requireHost(raw(6));
  return result;
}

/** The arguments of `pgpool_remote_start`: the node being recovered. */
export interface RemoteStartArgs {
  targetHost: string;
  targetDataDir: string;
}

/** `pgpool_remote_start` gets `$1` target host and `$2` target data directory, unquoted, in every pgpool version. */
export function parseRemoteStartArgs(argv: readonly string[]): RemoteStartArgs {
  if (argv.length !== 2) {
    throw new UsageError(
      `pgpool_remote_start: got ${argv.length} argument${argv.length === 1 ? '' : 's'}, expected 2 (target host, target data directory)` +
        (argv.length > 2 ? '; pgpool does not quote these, so a data directory containing spaces arrives split' : ''),
    );
  }
  return {
    targetHost: requireHost({ value: argv[0] ?? '', label: '$1 (target host)' }),
    targetDataDir: requireDataDir({ value: argv[1] ?? '', label: '$2 (target data directory)' }),
  };
}
