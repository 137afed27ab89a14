// The usage texts of the `maas-ha` CLI, in one place: one table, from which `maas-ha --help` and each command's
// own `--help` are rendered (the hooks' texts are lib/hook-help.ts, so that no hook bundle reaches into the CLI).
// Help is answered before anything else on the line is looked at (lib/cli/main.ts runCli, lib/hook.ts runHook):
// `--help` added to any command line must be safe to run, because it once was not (`maas-ha lab up --help` built a
// lab and purged a stopped one). Pure: no I/O.

export interface CommandHelp {
  /** The command paths this entry documents, words joined by one space (`lab vip down`). */
  paths: readonly string[];
  /** What follows `maas-ha ` on a command line. */
  synopsis: string;
  /** One or more lines (split by \n). */
  about: string;
  /** The command reads the configuration file, so --config applies. */
  config?: boolean;
  /** Run by maas-ha itself (inside the VIP lab): answered with --help, not listed by `maas-ha --help`. */
  internal?: boolean;
}

const CONFIG_DEFAULT = '$MAAS_HA_CONFIG, else /etc/maas-ha/maas-ha.yaml';

export const COMMANDS: readonly CommandHelp[] = [
  { paths: ['status'], synopsis: 'status [--json]', about: 'the cluster as PostgreSQL and pgpool see it', config: true },
  {
    paths: ['switchover'],
    synopsis: 'switchover NODE [--timeout S] [--force] [--dry-run [--json]]',
    about: 'planned move of the primary to a healthy standby, watched until redundant; --dry-run: what it would do, or why not',
    config: true,
  },
  {
    paths: ['preflight'],
    synopsis: 'preflight [--pgpool-conf F] [--json]',
    about: 'check pgpool.conf, pcp, every node and its host before trusting a failover',
    config: true,
  },
  { paths: ['plan failover'], synopsis: 'plan failover [--failed N] [--json]', about: 'dry run: the whole failover plan if the primary (or node N) were lost now: fence order, split-brain fences, candidate and why, what is skipped', config: true },
  { paths: ['config check'], synopsis: 'config check [--json]', about: 'validate the configuration file, list every problem (--json: as data, exit 2 all the same)', config: true },
  { paths: ['config get'], synopsis: 'config get KEY', about: 'one value of the validated file (e.g. state_dir)', config: true },
  { paths: ['config render-pgpool'], synopsis: 'config render-pgpool [--bindir D]', about: "the pgpool.conf lines that wire maas-ha's hooks" },
  { paths: ['log'], synopsis: 'log [FILE]', about: 'render maas-ha JSON log lines (from FILE or stdin) for people' },
  {
    paths: ['history'],
    synopsis: 'history [ID] [--since WHEN] [--json]',
    about:
      "the failovers, online recoveries and VIP moves this host's journals record, one line each\n(when, what, nodes, how long, outcome); with ID, that event's timeline. WHEN: an ISO\ndate or time (UTC unless it says otherwise) or a duration back from now: 90m, 2h, 3d, 1w",
    config: true,
  },
  {
    paths: ['maintenance'],
    synopsis: 'maintenance [on|off] [NODE] [--reason TEXT] [--dry-run] [--json]',
    about:
      "planned work without automatic reactions. on NODE: mark it and detach it from pgpool; the hooks\nneither fence, rebuild, repoint nor promote it (refused for the primary: switch over first).\non (no node): the whole cluster; failover and follow_primary do nothing, status says it is unprotected.\noff [NODE]: remove the mark, then attach the node (or recover it when it no longer streams) and check.\nWithout on/off: the marks this host's state_dir holds. Set marks on every pgpool host.",
    config: true,
  },
  {
    paths: ['metrics'],
    synopsis: 'metrics [--write FILE] [--json]',
    about: "the cluster as Prometheus metrics (text format); --write FILE (*.prom) replaces FILE\natomically, for node_exporter's textfile collector; --json: the same gauges as JSON",
    config: true,
  },
  {
    paths: ['lab up'],
    synopsis: 'lab up [--nodes N] [--sync any|off] [--net K] [--dir D]',
    about: 'start the local lab (PostgreSQL 15 x N, pgpool-II 4.3, sshd) on 127.0.K.x\nin D (default $MAAS_HA_LAB_DIR, else /var/lib/maas-ha-lab)',
  },
  { paths: ['lab status'], synopsis: 'lab status [--json] [--dir D]', about: 'the lab cluster, as `maas-ha status` shows it (--json: as `maas-ha status --json`)' },
  { paths: ['lab down'], synopsis: 'lab down [--purge] [--dir D]', about: 'stop the lab; --purge also removes its directory' },
  { paths: ['lab drill'], synopsis: 'lab drill [--json] [--dir D]', about: 'kill -9 the primary under write load and print the failover timeline' },
  {
    paths: ['lab soak'],
    synopsis: 'lab soak [--cycles N] [--json] [--net K] [--dir D]',
    about:
      'N times (default 10) under writes: kill -9 the primary, let the hooks fail over, maas-ha recover\nthe old one, wait for full redundancy; one line per cycle, then lost writes, two-primary\nsamples, median/p90 write unavailability and time to redundancy; exit 1 on any manual step',
  },
  {
    paths: ['recover'],
    synopsis: 'recover NODE [--dry-run] [--force] [--initial] [--method rewind|basebackup] [--direct] [--json]',
    about:
      'rebuild NODE as a standby of the primary (pg_rewind, else a base backup\nbeside its data directory); through pgpool (pcp_recovery_node) when it answers;\na standby that already streams but pgpool has down is only attached.\n--json: the last line is one object; a refusal carries reason: is-primary, second-primary,\nhealthy-standby, already-initialised, maintenance or not-possible',
    config: true,
  },
  {
    paths: ['recover install-scripts'],
    synopsis: 'recover install-scripts DATADIR [--bindir D]',
    about: "put pgpool's online-recovery wrappers into a local data directory",
    config: true,
  },
  {
    paths: ['vip check'],
    synopsis: 'vip check [--json] [--target A] [--timeout-ms MS]',
    about: 'health checks through the VIP: MAAS API, DNS (SOA of the MAAS zone), proxy',
    config: true,
  },
  { paths: ['vip plan'], synopsis: 'vip plan [--json]', about: 'what escalation, the after-VIP part and de-escalation would do on this host', config: true },
  {
    paths: ['vip fence on', 'vip fence off', 'vip fence status'],
    synopsis: 'vip fence on|off [--dry-run] | status [--json]',
    about: 'the passive-node nftables fence (table inet maas_ha)',
    config: true,
  },
  { paths: ['vip fence-file'], synopsis: 'vip fence-file [--write [--dry-run]]', about: 'the fence ruleset (root writes it to vip.fence.file)', config: true },
  { paths: ['vip sudoers'], synopsis: 'vip sudoers [--user postgres]', about: "the sudoers drop-in with the hooks' exact root commands", config: true },
  {
    paths: ['render dns'],
    synopsis: 'render dns [--host NAME] [--from-maas-db] [--write [--dry-run]] [--json]',
    about:
      "the secondary bind9 of a region controller (its own address): MAAS zones as secondary\nzones from the MAAS DNS on the VIP, the rest forwarded; and the snippet the MAAS DNS needs.\n--write installs vip.slave_dns.conf_file atomically and checks it with named-checkconf\n(a rejected file is put back); --from-maas-db takes the zones from the MAAS database",
    config: true,
  },
  {
    paths: ['render dhcp'],
    synopsis: 'render dhcp [--from-maas-db] [--write [--dry-run]] [--json]',
    about:
      "every DNS server for machines and racks: MAAS 1.x, the patch to the DHCP template's\ndomain-name-servers line (--write applies it, keeping a backup); MAAS 2.x/3.x, the\n`maas PROFILE subnet update SUBNET dns_servers=...` lines to run",
    config: true,
  },
  {
    paths: ['rack backup'],
    synopsis: 'rack backup [--out FILE] [--flavour F] [--root DIR]',
    about: "the rack (cluster) controller's identity (maas_url, shared secret, maas_id or cluster UUID)\nas one tar archive, owners and modes kept, mode 0600; nothing secret is printed",
    config: true,
  },
  {
    paths: ['rack restore'],
    synopsis: 'rack restore FILE [--dry-run] [--flavour F] [--root DIR] [--json]',
    about: 'put a rack backup back (each file atomically, with its owner and mode), restart the rack\nservice and wait until its region answers <maas_url>/rpc/; --dry-run lists what would change',
    config: true,
  },
  {
    paths: ['rack check'],
    synopsis: 'rack check [--backup FILE] [--vip A] [--region A]... [--flavour F] [--root DIR] [--json]',
    about: "what is wrong with this rack's identity: maas_url on a region controller's own address\ninstead of the VIP, a missing secret, a maas_id or UUID that differs from the backup.\nWithout a configuration file, --vip and --region say where the region is",
    config: true,
  },
  {
    paths: ['ip up'],
    synopsis: 'ip up VIP',
    about: "pgpool's if_up_cmd (see pgpool/watchdog.conf): add the VIP;\nconfiguration from $MAAS_HA_CONFIG",
  },
  {
    paths: ['ip down'],
    synopsis: 'ip down VIP',
    about: "pgpool's if_down_cmd (see pgpool/watchdog.conf): remove the VIP;\nconfiguration from $MAAS_HA_CONFIG",
  },
  {
    paths: ['arping'],
    synopsis: 'arping VIP',
    about: "pgpool's arping_cmd: gratuitous ARP, services that bind the VIP, checks;\nconfiguration from $MAAS_HA_CONFIG",
  },
  {
    paths: ['lab vip up'],
    synopsis: 'lab vip up [--net K] [--dir D] [--mode active-passive|active-active]',
    about: 'the VIP lab: region controllers, witness and client as network namespaces\nin D (default /var/lib/maas-ha-test/vip); --mode is vip.mode of its region controllers',
  },
  { paths: ['lab vip status'], synopsis: 'lab vip status [--json] [--dir D]', about: 'the VIP lab: who holds the VIP, which services run where' },
  { paths: ['lab vip down'], synopsis: 'lab vip down [--purge] [--dir D]', about: 'stop the VIP lab; --purge also removes its directory' },
  {
    paths: ['lab vip service'],
    synopsis: 'lab vip service start|stop|restart|status NAME --host rc1|rc2 [--dir D]',
    about: "a region service's stand-in inside the VIP lab (what systemctl is there)",
    internal: true,
  },
  {
    paths: ['lab vip rackd'],
    synopsis: 'lab vip rackd start|stop|restart|run [--dir D]',
    about: "the VIP lab's cluster (rack) controller stand-in in the client namespace (what systemctl is there)",
    internal: true,
  },
  { paths: ['lab vip serve-api'], synopsis: 'lab vip serve-api --host rc1|rc2 [--port P]', about: "the VIP lab's stand-in MAAS API", internal: true },
  {
    paths: ['lab vip campaign'],
    synopsis: 'lab vip campaign [--max-ms MS] [--dir D]',
    about: "the fault campaign's writer and probe inside the VIP lab's client namespace (JSON lines; \"stop\" on stdin ends it)",
    internal: true,
  },
  { paths: ['lab vip serve-sink'], synopsis: 'lab vip serve-sink --out FILE [--port P]', about: "the VIP lab's client-side record of what answered", internal: true },
  { paths: ['help'], synopsis: 'help [COMMAND...]', about: 'this list, or the usage of one command' },
  { paths: ['version'], synopsis: 'version | --version', about: 'the version of maas-ha' },
];

const COLUMN = 35;

/** Synopsis and about as two columns (a long synopsis puts the about on the next line), indented by two. */
function row(c: CommandHelp): string {
  const about = c.about.split('\n');
  const pad = ' '.repeat(COLUMN + 2);
  const head = c.synopsis.length < COLUMN - 1 ? [`  ${c.synopsis.padEnd(COLUMN)}${about[0]}`] : [`  ${c.synopsis}`, `${pad}${about[0]}`];
  return [...head, ...about.slice(1).map((l) => `${pad}${l}`)].join('\n');
}

export const USAGE = [
  'usage: maas-ha <command> [options]',
  '',
  ...COMMANDS.filter((c) => !c.internal).map(row),
  '',
  `--config FILE: the configuration, for the commands that read it (default ${CONFIG_DEFAULT})`,
  '--help, -h: the usage of any command (`maas-ha lab up --help`), which then does nothing else',
].join('\n');

const under = (path: string) => (c: CommandHelp) => c.paths.some((p) => p === path || p.startsWith(`${path} `));

/**
 * The command path that argv names: its words, in order, as long as they lead to a documented command. Other
 * words (flag values, NODE, FILE) are skipped, so `lab --dir /x up --help` is `lab up`; "" when nothing matched.
 */
export function commandPath(argv: readonly string[]): string {
  const end = argv.indexOf('--');
  let path = '';
  for (const word of end === -1 ? argv : argv.slice(0, end)) {
    if (word.startsWith('-')) continue;
    const next = path ? `${path} ${word}` : word;
    if (COMMANDS.some(under(next))) path = next;
  }
  return path;
}

/**
 * The usage of the command argv names (`['lab', 'up', '--help']`): its own entry, or the entries under it (the
 * internal ones only when named); USAGE when argv names no command.
 */
export function helpFor(argv: readonly string[]): string {
  const path = commandPath(argv);
  const all = path ? COMMANDS.filter(under(path)) : [];
  const entries = all.length > 1 ? all.filter((c) => !c.internal) : all;
  if (entries.length === 0) return USAGE;
  const config = entries.some((c) => c.config) ? [`  --config FILE  the configuration (default ${CONFIG_DEFAULT})`] : [];
  const options = ['options:', ...config, '  --help, -h     this text; the command does nothing else'];
  if (entries.length === 1) {
    const [c] = entries as [CommandHelp];
    return [`usage: maas-ha ${c.synopsis}`, '', ...c.about.split('\n').map((l) => `  ${l}`), '', ...options].join('\n');
  }
  return [`usage of maas-ha ${path}:`, '', ...entries.map((c) => row({ ...c, synopsis: `maas-ha ${c.synopsis}` })), '', ...options].join('\n');
}
