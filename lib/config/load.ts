// Reads and validates /etc/maas-ha/maas-ha.yaml: the only place in maas-ha that knows YAML exists. Everything the
// hooks and the CLI need is checked here, up front, and every problem is reported at once with its line:col,
// because a hook finding a bad setting in the middle of a failover is far too late, and an operator fixing
// problems one run at a time learns to distrust the tool.
//
// The schema below is a table (./schema.ts walks it); checks that look across fields follow it. Paths and host
// names are held to a narrow character set because pgpool pastes them unquoted into `sh -c` command lines and
// SQL literals; secrets live in `*_file`s whose permissions are checked because libpq, pcp and ssh ignore or
// refuse files that group or others can read, and ignoring them would surface later as an authentication error
// in the middle of a failover. The files that decide what runs are held to more: the configuration itself,
// known_hosts and state_dir may not be writable by group or others, and every path root runs or writes must be
// root's all the way up (./trust.ts).

import { isIP } from 'node:net';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { ConfigError, messageOf } from '../errors.ts';
import { DEFAULT_BUDGETS_MS, DEFAULT_RECOVERY, type Config, type HookName, type MaasConfig, type VipConfig } from './types.ts';
import { PRESETS } from './presets.ts';
import { rootRunPaths, rootTrustProblem } from './trust.ts';
import { configFileProblems, knownHostsProblem, nodeIo, secretFileProblem, stateDirProblem } from './files.ts';
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
  quoted,
  tagged,
  text,
  Walk,
  withDefault,
  type ConfigIo,
  type Field,
  type Loose,
  type Spec,
} from './schema.ts';

export type { ConfigIo } from './schema.ts';

export { DEFAULT_CONFIG_PATH, configPath } from './path.ts';

/** The real filesystem. */
export { nodeIo } from './files.ts';

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
  // What the YAML parser would choke on (or take seconds over) is refused before it sees the text.
  const shape = textProblem(source);
  const doc = parseDocument(shape ? '' : source, { lineCounter: lines, prettyErrors: false });
  const w = new Walk(doc, lines, io);
  for (const p of configFileProblems(path, io)) w.problemAt(0, '', p);
  if (shape) {
    // The parser never saw the text: count its lines here, so that the problem still says where it is.
    for (let i = source.indexOf('\n'); i !== -1 && i < shape.offset; i = source.indexOf('\n', i + 1)) lines.addNewLine(i + 1);
    w.problemAt(shape.offset, '', shape.message);
    throw new ConfigError(path, w.report());
  }
  // One line per problem: the parser's messages may carry a drawing of the line below the first.
  for (const e of [...doc.errors, ...doc.warnings]) w.problemAt(e.pos[0], '', `YAML syntax: ${e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
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

// ---- the text and the file as a whole

/** maas-ha.yaml is a few kilobytes; nothing legitimate comes near these. */
const MAX_FILE_BYTES = 256 * 1024;
const MAX_DEPTH = 32;

/** A file too large, or nested too deeply for the YAML parser to read in reasonable time (it recurses per level). */
function textProblem(source: string): { offset: number; message: string } | undefined {
  if (source.length > MAX_FILE_BYTES) {
    return { offset: 0, message: `the file is ${source.length} characters long; a maas-ha configuration is a few kilobytes (at most ${MAX_FILE_BYTES} are read)` };
  }
  // Flow collections ([ and { outside quotes and comments) and block indentation, counted without parsing.
  let depth = 0;
  let quote = '';
  let comment = false;
  let lineStart = true;
  let indent = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\n') {
      comment = false;
      lineStart = true;
      indent = 0;
      continue;
    }
    if (comment) continue;
    if (lineStart && (c === ' ' || c === '-')) {
      indent++;
      if (indent > MAX_DEPTH * 8) return { offset: i, message: `YAML nested deeper than ${MAX_DEPTH} levels (indented by more than ${MAX_DEPTH * 8} columns); maas-ha.yaml needs at most 6` };
      continue;
    }
    lineStart = false;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(source[i - 1]!))) comment = true;
    else if (c === '[' || c === '{') {
      if (++depth > MAX_DEPTH) return { offset: i, message: `YAML nested deeper than ${MAX_DEPTH} levels; maas-ha.yaml needs at most 6` };
    } else if ((c === ']' || c === '}') && depth > 0) depth--;
  }
  return undefined;
}

// ---- value kinds

const PATH = /^\/[A-Za-z0-9._/+@-]*$/;
/** maas-ha compares paths by their text and deletes and moves data directories by them: no `.` or `..` detours. */
const absPath = refine(
  text('an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals)', PATH),
  (p) => (p.split('/').some((c) => c === '.' || c === '..') ? `must be a path without "." or ".." components (maas-ha compares paths by their text), got ${quoted(p)}` : undefined),
);
const host = refine(
  text('a host name or address of only [A-Za-z0-9.:_-] characters (pgpool pastes it unquoted into commands)', /^[A-Za-z0-9.:_][A-Za-z0-9.:_-]*$/),
  (h) => (h.length > 253 ? `must be a host name of at most 253 characters (DNS allows no more), got ${quoted(h)}` : undefined),
);
/** User, database, cluster and node names end up in conninfo strings and command lines too. */
const name = refine(text('a name of only [A-Za-z0-9_.-] characters', /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/), (n) =>
  n.length > 63 ? `must be a name of at most 63 characters (PostgreSQL cuts longer names short), got ${quoted(n)}` : undefined,
);
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
    return secretFileProblem(p, w.io, whyPrivate);
  });
}
const libpqSecret = secretFile('libpq and pcp also ignore such files silently');

const knownHostsFile = refine(absPath, (p, w) => knownHostsProblem(p, w.io));

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

// ---- the region controller VIP (lib/vip)

const ipv4 = scalar('an IPv4 address such as 10.0.0.100', (v) => {
  if (typeof v !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(v)) return undefined;
  return v.split('.').every((o) => Number(o) <= 255 && String(Number(o)) === o) ? v : undefined;
});
// Interface, unit, user and zone names reach sudoers lines and nft rules: a narrow character set keeps them inert.
const ifname = text('an interface name of only [A-Za-z0-9_.-] characters, at most 15', /^[A-Za-z0-9_.-]{1,15}$/);
const unit = text('a unit or snap name of only [A-Za-z0-9_.@-] characters', /^[A-Za-z0-9_.@-]+$/);
const zone = text('a DNS zone name such as maas or example.com', /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/);
/** A bind9 key name (it is written into named.conf between double quotes). */
const keyName = text('a key name of only [A-Za-z0-9_.-] characters', /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$/);
/** One element of a bind9 address match list, as written into named.conf: a built-in ACL, an address or a CIDR. */
const aclElement = refine(
  text('any, none, localhost, localnets, an IPv4 address or an IPv4 CIDR such as 10.0.0.0/24', /^(any|none|localhost|localnets|\d{1,3}(\.\d{1,3}){3}(\/\d{1,2})?)$/),
  (v) => (/^\d/.test(v) && !validCidr(v.includes('/') ? v : `${v}/32`) ? `must be an IPv4 address or CIDR with octets up to 255 and a prefix up to 32, got ${quoted(v)}` : undefined),
);
const cidr = refine(text('an IPv4 or IPv6 CIDR such as 10.0.0.0/24', /^[0-9A-Fa-f.:]+\/\d{1,3}$/), (v) => (validCidr(v) ? undefined : `must be a valid IPv4 or IPv6 network, got ${quoted(v)}`));
/** An argv: the first element an absolute path (neither sudo nor pgpool searches PATH), no element empty. */
const argv = refine(list(text('a non-empty string without control characters', /^[^\u0000-\u001f\u007f]+$/), 1), (a) =>
  a[0] !== undefined && !a[0].startsWith('/') ? `the command must start with an absolute path (sudo and pgpool search no PATH), got "${a[0]}"` : undefined,
);
/** `false` switches a check off; a map overrides the preset's port (and path or zone). */
function checkOrOff<T>(spec: Spec<T>): Spec<T | false> {
  return {
    read(node, path, w) {
      if (isScalar(node) && node.value === false) return false;
      return spec.read(node, path, w);
    },
  };
}

const service = map({
  name: required(name),
  unit: optional(unit),
  needs_vip: withDefault(bool, false),
  restart: optional(argv),
  stop: optional(argv),
});

const vip = map({
  // docs/maas.md, "Active-passive or active-active"
  mode: withDefault(oneOf(['active-passive', 'active-active']), 'active-passive'),
  address: required(ipv4),
  prefix_length: withDefault(int(1, 32), 24),
  interface: required(ifname),
  region_controllers: required(list(map({ name: required(name), address: required(ipv4) }), 1)),
  privilege: withDefault(oneOf(['sudo', 'none']), 'sudo'),
  peer_timeout_ms: withDefault(ms, 3000),
  binaries: section(
    map({
      ip: withDefault(absPath, '/usr/sbin/ip'),
      arping: withDefault(absPath, '/usr/bin/arping'),
      nft: withDefault(absPath, '/usr/sbin/nft'),
      sudo: withDefault(absPath, '/usr/bin/sudo'),
      systemctl: withDefault(absPath, '/usr/bin/systemctl'),
      snap: withDefault(absPath, '/usr/bin/snap'),
      rndc: withDefault(absPath, '/usr/sbin/rndc'),
      // Debian 12's bind9-utils puts it in /usr/bin (older releases: /usr/sbin).
      named_checkconf: withDefault(absPath, '/usr/bin/named-checkconf'),
    }),
  ),
  fence: section(
    map({
      // Default nftables; none in active-active (buildVip).
      method: optional(oneOf(['nftables', 'stop-services', 'none'])),
      users: withDefault(list(name, 1), ['maas']),
      ports: withDefault(list(port, 1), [5432, 9999]),
      file: withDefault(absPath, '/etc/maas-ha/fence.nft'),
    }),
  ),
  services: section(
    map({
      preset: optional(oneOf(['maas-1', 'maas-2-deb', 'maas-3-deb', 'maas-snap'])),
      manager: optional(oneOf(['systemd', 'snap', 'commands'])),
      list: optional(list(service, 1)),
      timeout_ms: withDefault(ms, 60_000),
    }),
  ),
  checks: section(
    map({
      timeout_ms: withDefault(ms, 20_000),
      interval_ms: withDefault(ms, 250),
      api: optional(checkOrOff(map({ port: optional(port), path: optional(text('an absolute URL path', /^\/[A-Za-z0-9._~/-]*$/)) }))),
      dns: optional(checkOrOff(map({ port: optional(port), zone: optional(zone) }))),
      proxy: optional(checkOrOff(map({ port: optional(port) }))),
    }),
  ),
  slave_dns: optional(
    map({
      port: withDefault(port, 953),
      key_file: required(secretFile('it is the rndc key that controls the DNS servers')),
      key_name: withDefault(keyName, 'rndc-key'),
      zones: required(list(zone, 1)),
      timeout_ms: withDefault(ms, 3000),
      // The rendering of the secondary's named.conf (lib/maas/slave-dns.ts); defaults fill in from the VIP.
      primary: section(map({ address: optional(ipv4), port: optional(port) })),
      forwarders: optional(list(ipv4, 1)),
      forwarders_port: optional(port),
      forward: withDefault(oneOf(['only', 'first']), 'only'),
      allow_query: withDefault(list(aclElement, 1), ['localhost', 'localnets']),
      conf_file: withDefault(absPath, '/etc/bind/named.conf.maas-ha-secondary'),
      directory: withDefault(absPath, '/var/cache/bind/maas-ha-secondary'),
    }),
  ),
  escalation_window_ms: withDefault(ms, 60_000),
});

const maasFlavour = oneOf(['maas-1', 'maas-2-deb', 'maas-3-deb', 'maas-snap']);

const maas = map({
  flavour: optional(maasFlavour), // default: vip.services.preset, else maas-3-deb
  root: withDefault(absPath, '/'),
  database: section(map({ name: withDefault(name, 'maasdb'), user: optional(name) })),
  dhcp: section(
    map({
      template: optional(absPath),
      profile: withDefault(name, 'admin'),
      subnets: withDefault(list(cidr), []),
      dns_servers: optional(list(ipv4, 1)),
    }),
  ),
  rack: section(
    map({
      manager: optional(oneOf(['systemd', 'snap', 'commands'])),
      unit: optional(unit),
      restart: optional(argv),
      reconnect_timeout_ms: withDefault(ms, 60_000),
    }),
  ),
  binaries: section(
    map({
      tar: withDefault(absPath, '/usr/bin/tar'),
      systemctl: withDefault(absPath, '/usr/bin/systemctl'),
      snap: withDefault(absPath, '/usr/bin/snap'),
    }),
  ),
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
              // exactly one of the two (crossCheck): Slack/Mattermost incoming webhooks carry their token in the URL
              url: optional(url),
              url_file: optional(secretFile('it holds the webhook URL, and the URL carries the token')),
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
        // Absolute, so that who may change the program can be checked (./trust.ts); no PATH search.
        command: optional(
          refine(list(text('a non-empty string without control characters', /^(?=[^]*\S)[^\u0000-\u001f\u007f]+$/), 1), (a) =>
            a[0] !== undefined && !a[0].startsWith('/') ? `the command must start with an absolute path, got ${quoted(a[0])}` : undefined,
          ),
        ),
        timeout_ms: withDefault(ms, 10000),
      }),
    ),
    recovery: section(
      map({
        keep_old_data_dirs: withDefault(int(0, 20), DEFAULT_RECOVERY.keep_old_data_dirs),
        follow_basebackup: withDefault(bool, DEFAULT_RECOVERY.follow_basebackup),
        max_rate_kb_s: optional(int(32, 1_048_576)),
        start_timeout_ms: withDefault(ms, DEFAULT_RECOVERY.start_timeout_ms),
        stream_timeout_ms: withDefault(ms, DEFAULT_RECOVERY.stream_timeout_ms),
      }),
    ),
    vip: optional(vip),
    maas: optional(maas),
  },
  'a map of settings',
);

type Raw = NonNullable<ReturnType<typeof schema.read>>;

/** Checks that look at more than one value. Values that failed their own check are missing here: skip them. */
function crossCheck(raw: Loose<Raw>, w: Walk): void {
  (raw.notify?.webhooks ?? []).forEach((h, i) => {
    if (!h) return;
    const reported = w.report().some((l) => l.startsWith(`notify.webhooks[${i}].url`));
    if (h.url !== undefined && h.url_file !== undefined) w.problem(`notify.webhooks[${i}]`, 'give url or url_file, not both');
    else if (h.url === undefined && h.url_file === undefined && !reported) w.problem(`notify.webhooks[${i}]`, 'needs url_file (a mode 0600 file holding the URL) or url');
  });
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
  if (raw.vip) crossCheckVip(raw.vip, w);
  const rack = raw.maas?.rack;
  if (rack?.manager === 'commands' && !rack.restart) w.problem('maas.rack.restart', 'required with manager: commands');
  if (rack?.restart && rack.manager !== undefined && rack.manager !== 'commands') w.problem('maas.rack.restart', `only used with manager: commands (the ${rack.manager} manager builds its own)`);
  // Defaults included: /etc/maas-ha/fence.nft is only as safe as /etc/maas-ha.
  if (w.io.lstat) for (const r of rootRunPaths(raw)) {
    const problem = rootTrustProblem(r.path, w.io.lstat, r.what);
    if (problem) w.problem(r.key, problem);
  }
  if (raw.state_dir) {
    const problem = stateDirProblem(raw.state_dir, w.io);
    if (problem) w.problem('state_dir', problem);
  }
  const sync = raw.replication?.synchronous;
  if (sync?.mode && sync.mode !== 'off' && sync.count !== undefined && nodes.length > 0 && sync.count >= nodes.length) {
    w.problem(
      'replication.synchronous.count',
      `must be less than the number of nodes (${nodes.length}) with mode ${sync.mode}: only the standbys can confirm commits, got ${sync.count}`,
    );
  }
}

function crossCheckVip(v: NonNullable<Loose<Raw>['vip']>, w: Walk): void {
  const s = v.services ?? {};
  if (!s.preset && !s.list) w.problem('vip.services', 'needs a preset (maas-1, maas-2-deb, maas-3-deb, maas-snap) or a list of services');
  const manager = s.manager ?? (s.preset ? PRESETS[s.preset].manager : 'systemd');
  if (manager === 'commands' && !s.list) w.problem('vip.services.manager', 'commands needs an explicit list (a preset names units, not commands)');
  (s.list ?? []).forEach((svc, i) => {
    if (!svc) return;
    // A restart that failed its own check is missing here too: say what is wrong with it once, not twice.
    const reported = (key: string) => w.report().some((l) => l.startsWith(`vip.services.list[${i}].${key}:`));
    if (manager === 'commands' && !svc.restart && !reported('restart')) w.problem(`vip.services.list[${i}].restart`, 'required with manager: commands');
    if (manager === 'commands' && !svc.stop && !reported('stop') && v.fence?.method === 'stop-services') {
      w.problem(`vip.services.list[${i}].stop`, 'required with manager: commands and fence.method: stop-services');
    }
    if (manager !== 'commands' && (svc.restart || svc.stop)) {
      w.problem(`vip.services.list[${i}]`, `restart/stop commands are only used with manager: commands (the ${manager} manager builds its own)`);
    }
  });
  if (v.mode === 'active-active') {
    if (s.preset === 'maas-1') w.problem('vip.mode', "active-active needs MAAS 2.x or later: MAAS 1.x's maas-dns and cluster controllers work with the active region only (use active-passive)");
    if (v.fence?.method !== undefined && v.fence.method !== 'none') {
      w.problem('vip.fence.method', `${v.fence.method} fences a passive region's services off the database, and active-active has no passive region: leave it out (none)`);
    }
  }
  const seen = new Set<string>();
  (v.region_controllers ?? []).forEach((rc, i) => {
    if (rc?.address && rc.address === v.address) w.problem(`vip.region_controllers[${i}].address`, `is the VIP itself (${v.address}); list each host's own address`);
    else if (rc?.address && seen.has(rc.address)) w.problem(`vip.region_controllers[${i}].address`, `duplicate address ${rc.address}`);
    if (rc?.address) seen.add(rc.address);
  });
}

/** The validated `vip` section with the preset's services, manager and check ports filled in. */
function buildVip(raw: NonNullable<Raw['vip']>): VipConfig {
  const { preset, list: given, manager, timeout_ms } = raw.services;
  const p = preset ? PRESETS[preset] : undefined;
  const services = (given ?? p?.services ?? []).map((svc) => ({ ...svc, unit: svc.unit ?? svc.name }));
  const checks: VipConfig['checks'] = { timeout_ms: raw.checks.timeout_ms, interval_ms: raw.checks.interval_ms };
  const base = p?.checks ?? PRESETS['maas-3-deb'].checks;
  if (raw.checks.api !== false) checks.api = { ...base.api, ...defined(raw.checks.api) };
  if (raw.checks.dns !== false) checks.dns = { ...base.dns, ...defined(raw.checks.dns) };
  if (raw.checks.proxy !== false) checks.proxy = { ...base.proxy, ...defined(raw.checks.proxy) };
  const { slave_dns, services: _services, checks: _checks, ...rest } = raw;
  return {
    ...rest,
    // Active-active: every region serves, so nothing is fenced (crossCheckVip refuses any other method given).
    fence: { ...raw.fence, method: raw.fence.method ?? (raw.mode === 'active-active' ? 'none' : 'nftables') },
    services: { ...(preset ? { preset } : {}), manager: manager ?? p?.manager ?? 'systemd', list: services, timeout_ms },
    checks,
    ...(slave_dns ? { slave_dns: buildSlaveDns(slave_dns, raw.address, checks.dns?.port ?? base.dns.port) } : {}),
  };
}

/** The secondary DNS with its defaults: the primary is the MAAS DNS on the VIP, on the preset's DNS port. */
function buildSlaveDns(raw: NonNullable<NonNullable<Raw['vip']>['slave_dns']>, vipAddress: string, dnsPort: number): NonNullable<VipConfig['slave_dns']> {
  const { primary, forwarders, forwarders_port, forward, ...rest } = raw;
  const p = { address: primary.address ?? vipAddress, port: primary.port ?? dnsPort };
  // Forwarding to the primary uses its port (5353 for MAAS 1.x); other resolvers answer on 53 unless told.
  const fw = forwarders ? { addresses: forwarders, port: forwarders_port ?? 53 } : { addresses: [p.address], port: forwarders_port ?? p.port };
  return { ...rest, primary: p, forwarders: { ...fw, mode: forward } };
}

/** The maas section with the defaults that depend on the vip section. */
function buildMaas(raw: NonNullable<Raw['maas']>, vipRaw: Raw['vip'] | undefined): MaasConfig {
  const { flavour, ...rest } = raw;
  return { ...rest, flavour: flavour ?? vipRaw?.services.preset ?? 'maas-3-deb' };
}

/** A CIDR whose address is well formed and whose prefix fits its family (node:net does the parsing). */
function validCidr(v: string): boolean {
  const [addr, len, extra] = v.split('/');
  if (extra !== undefined || addr === undefined || len === undefined || !/^\d{1,3}$/.test(len)) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (family === 4 && !addr.split('.').every((o) => String(Number(o)) === o)) return false;
  return Number(len) <= (family === 4 ? 32 : 128);
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, x]) => x !== undefined)) as Partial<T>;
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
    recovery: raw.recovery,
    log_level: raw.log_level,
    ...(raw.vip ? { vip: buildVip(raw.vip) } : {}),
    ...(raw.maas ? { maas: buildMaas(raw.maas, raw.vip) } : {}),
  };
}

function readProblem(err: unknown): string {
  const code = err && typeof err === 'object' && 'code' in err ? err.code : undefined;
  if (code === 'ENOENT') return 'no such file (point --config or MAAS_HA_CONFIG at the configuration; see pgpool/maas-ha.example.yaml)';
  if (code === 'EACCES') return 'permission denied: the user running maas-ha (postgres, for the hooks) must be able to read it';
  if (code === 'EISDIR') return 'is a directory, not the configuration file';
  return `cannot read the file: ${messageOf(err)}`;
}
