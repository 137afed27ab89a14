// Reads and validates /etc/maas-ha/maas-ha.yaml: the only place in maas-ha that knows YAML exists. Everything the
// hooks and the CLI need is checked here, up front, and every problem is reported at once with its line:col,
// because a hook finding a bad setting in the middle of a failover is far too late, and an operator fixing
// problems one run at a time learns to distrust the tool.
//
// The schema below is a table (./schema.ts walks it); checks that look across fields follow it. Paths and host
// names are held to a narrow character set because pgpool pastes them unquoted into `sh -c` command lines and
// SQL literals; secrets live in `*_file`s whose permissions are checked because libpq, pcp and ssh ignore or
// refuse files that group or others can read, and ignoring them would surface later as an authentication error
// in the middle of a failover.

import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, messageOf } from '../errors.ts';
import { DEFAULT_BUDGETS_MS, type Config, type HookName } from './types.ts';
import {
  bool,
  int,
  list,
  map,
  oneOf,
  optional,
  refine,
  required,
  scalar,
  section,
  tagged,
  text,
  Walk,
  withDefault,
  type ConfigIo,
  type Field,
  type Loose,
} from './schema.ts';

export type { ConfigIo } from './schema.ts';

export const DEFAULT_CONFIG_PATH = '/etc/maas-ha/maas-ha.yaml';

/** The real filesystem. */
export const nodeIo: ConfigIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  stat(path) {
    try {
      const st = statSync(path);
      return { mode: st.mode, isFile: st.isFile() };
    } catch {
      return undefined;
    }
  },
};

/** `--config` beats `MAAS_HA_CONFIG` beats /etc/maas-ha/maas-ha.yaml (an empty value counts as unset). */
export function configPath(argvConfig?: string, env: NodeJS.ProcessEnv = process.env): string {
  return argvConfig || env.MAAS_HA_CONFIG || DEFAULT_CONFIG_PATH;
}

/** Reads and validates the file; a missing or unreadable file is a ConfigError with one line saying so. */
export function loadConfig(path: string, io: ConfigIo = nodeIo): Config {
  let source: string;
  try {
    source = io.readFile(path);
  } catch (err) {
    throw new ConfigError(path, [readProblem(err)]);
  }
  return parseConfig(source, path, io);
}

/** Validates the text of a config file; throws one ConfigError listing every problem, as `path: message (line:col)`. */
export function parseConfig(source: string, path: string, io: ConfigIo): Config {
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, prettyErrors: false });
  const w = new Walk(doc, lines, io);
  for (const e of [...doc.errors, ...doc.warnings]) w.problemAt(e.pos[0], '', `YAML syntax: ${e.message}`);
  // After a real syntax error the tree is guesswork and checking it would only add noise; a duplicate key
  // leaves a sound tree, so the rest is still checked.
  const sound = doc.errors.every((e) => e.code === 'DUPLICATE_KEY');
  let raw: Raw | undefined;
  if (sound && doc.contents === null) {
    w.problemAt(0, '', 'the file holds no settings (see pgpool/maas-ha.example.yaml)');
  } else if (sound && doc.contents) {
    w.mark('', doc.contents);
    raw = schema.read(doc.contents, '', w);
    if (raw) crossCheck(raw as Loose<Raw>, w);
  }
  if (w.count > 0 || !raw) throw new ConfigError(path, w.report());
  return build(raw, path);
}

// ---- value kinds

const PATH = /^\/[A-Za-z0-9._/+@-]*$/;
const absPath = text(
  'an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals)',
  PATH,
);
const host = text(
  'a host name or address of only [A-Za-z0-9.:_-] characters (pgpool pastes it unquoted into commands)',
  /^[A-Za-z0-9.:_][A-Za-z0-9.:_-]*$/,
);
/** User, database, cluster and node names end up in conninfo strings and command lines too. */
const name = text('a name of only [A-Za-z0-9_.-] characters', /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/);
const port = int(1, 65535);
const ms = int(1, 86_400_000);
const pgVersion = text('a PostgreSQL major version such as "15"', /^[0-9]+(\.[0-9]+)?$/, { numbers: true });
const url = scalar('an http:// or https:// URL', (v) => {
  if (typeof v !== 'string') return undefined;
  try {
    return ['http:', 'https:'].includes(new URL(v).protocol) ? v : undefined;
  } catch {
    return undefined;
  }
});

/** A file holding a secret: it must exist, be a regular file and be closed to group and others. */
function secretFile(whyPrivate: string) {
  return refine(absPath, (p, w) => {
    const st = w.io.stat(p);
    if (!st) return `${p} does not exist`;
    if (!st.isFile) return `${p} is not a regular file`;
    if ((st.mode & 0o077) === 0) return undefined;
    const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
    return `${p} is ${st.mode & 0o044 ? 'readable' : 'writable'} by group or others (mode ${mode}); chmod 600 it (${whyPrivate})`;
  });
}
const libpqSecret = secretFile('libpq and pcp also ignore such files silently');

const knownHostsFile = refine(absPath, (p, w) => {
  const st = w.io.stat(p);
  if (!st) return `${p} does not exist (fill it with ssh-keyscan of every node: maas-ha checks host keys strictly)`;
  return st.isFile ? undefined : `${p} is not a regular file`;
});

// ---- the file

const control = tagged('method', {
  pg_ctlcluster: map({
    method: required(oneOf(['pg_ctlcluster'])),
    version: required(pgVersion),
    name: required(name),
  }),
  pg_ctl: map({
    method: required(oneOf(['pg_ctl'])),
    log_file: required(absPath),
  }),
});

const node = map({
  id: required(int(0, 127)),
  hostname: required(host),
  port: withDefault(port, 5432),
  data_directory: required(absPath),
  config_directory: optional(absPath),
  bin_dir: optional(absPath), // default: postgres.bin_dir
  control: required(control),
  ssh_host: optional(host), // default: hostname
  candidate: withDefault(bool, true),
  priority: withDefault(int(), 100),
  name: optional(name), // default: node<id>
});

const budgets = Object.fromEntries(
  Object.entries(DEFAULT_BUDGETS_MS).map(([hook, budget]) => [hook, withDefault(ms, budget)]),
) as Record<HookName, Field<number, 'default'>>;

const schema = map(
  {
    cluster_name: withDefault(name, 'maas'),
    state_dir: withDefault(absPath, '/var/lib/maas-ha'),
    log_level: withDefault(oneOf(['debug', 'info', 'warn', 'error']), 'info'),
    postgres: section(
      map({
        bin_dir: withDefault(absPath, '/usr/lib/postgresql/15/bin'),
        database: withDefault(name, 'postgres'),
        user: withDefault(name, 'postgres'),
        password_file: optional(libpqSecret),
        connect_timeout_ms: withDefault(ms, 3000),
        statement_timeout_ms: withDefault(ms, 5000),
      }),
    ),
    replication: required(
      map({
        user: required(name),
        password_file: optional(libpqSecret),
        use_slots: withDefault(bool, true),
        drop_slot_on_standby_loss: withDefault(bool, false),
        synchronous: section(
          map({
            // YAML 1.2 (the `yaml` default) reads a bare `off` as the string "off", not as false.
            mode: withDefault(oneOf(['off', 'any', 'first']), 'off'),
            count: withDefault(int(1), 1),
          }),
        ),
      }),
    ),
    nodes: required(list(node, 2)),
    ssh: required(
      map({
        binary: withDefault(absPath, '/usr/bin/ssh'),
        user: withDefault(name, 'postgres'),
        port: withDefault(port, 22),
        identity_file: required(secretFile('ssh refuses private keys that others can read')),
        known_hosts_file: required(knownHostsFile),
        connect_timeout_s: withDefault(int(1, 300), 5),
      }),
    ),
    pcp: required(
      map({
        bin_dir: withDefault(absPath, '/usr/sbin'),
        host: withDefault(host, 'localhost'),
        port: withDefault(port, 9898),
        user: required(name),
        pcppass_file: required(libpqSecret),
        timeout_ms: withDefault(ms, 10000),
      }),
    ),
    budgets: section(map(budgets)),
    notify: section(
      map({
        webhooks: withDefault(
          list(
            map({
              url: required(url),
              timeout_ms: withDefault(ms, 3000),
              authorization_file: optional(secretFile('it holds a credential')),
            }),
          ),
          [],
        ),
      }),
    ),
    fencing: section(
      map({
        command: optional(list(text('a non-empty string', /\S/), 1)),
        timeout_ms: withDefault(ms, 10000),
      }),
    ),
  },
  'a map of settings',
);

type Raw = NonNullable<ReturnType<typeof schema.read>>;

/** Checks that look at more than one value. Values that failed their own check are missing here: skip them. */
function crossCheck(raw: Loose<Raw>, w: Walk): void {
  const nodes = raw.nodes ?? [];
  const ids = new Map<number, number>();
  const addresses = new Map<string, number>();
  nodes.forEach((n, i) => {
    if (n?.id !== undefined) {
      const first = ids.get(n.id);
      if (first === undefined) ids.set(n.id, i);
      else w.problem(`nodes[${i}].id`, `duplicate id ${n.id} (also nodes[${first}])`);
    }
    if (n?.hostname !== undefined && n.port !== undefined) {
      const address = `${n.hostname}:${n.port}`;
      const first = addresses.get(address);
      if (first === undefined) addresses.set(address, i);
      else w.problem(`nodes[${i}].hostname`, `duplicate address ${address} (also nodes[${first}])`);
    }
  });
  if (nodes.length > 0 && nodes.every((n) => n?.candidate === false)) {
    w.problem('nodes', 'no node has candidate: true, so no standby could ever be promoted');
  }
  const sync = raw.replication?.synchronous;
  if (sync?.mode && sync.mode !== 'off' && sync.count !== undefined && nodes.length > 0 && sync.count >= nodes.length) {
    w.problem(
      'replication.synchronous.count',
      `must be less than the number of nodes (${nodes.length}) with mode ${sync.mode}: only the standbys can confirm commits, got ${sync.count}`,
    );
  }
}

/** The validated file, with the defaults that depend on other values filled in. */
function build(raw: Raw, source: string): Config {
  const { bin_dir: pgBinDir, ...postgres } = raw.postgres;
  return {
    source,
    cluster_name: raw.cluster_name,
    nodes: raw.nodes.map((n) => ({
      ...n,
      bin_dir: n.bin_dir ?? pgBinDir,
      ssh_host: n.ssh_host ?? n.hostname,
      name: n.name ?? `node${n.id}`,
    })),
    ssh: raw.ssh,
    postgres,
    replication: raw.replication,
    pcp: raw.pcp,
    budgets_ms: raw.budgets,
    notify: raw.notify,
    state_dir: raw.state_dir,
    fencing: raw.fencing,
    log_level: raw.log_level,
  };
}

function readProblem(err: unknown): string {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  if (code === 'ENOENT') return 'no such file (point --config or MAAS_HA_CONFIG at the configuration; see pgpool/maas-ha.example.yaml)';
  if (code === 'EACCES') return 'permission denied: the user running maas-ha (postgres, for the hooks) must be able to read it';
  if (code === 'EISDIR') return 'is a directory, not the configuration file';
  return `cannot read the file: ${messageOf(err)}`;
}
