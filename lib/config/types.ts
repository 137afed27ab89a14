// The validated shape of /etc/maas-ha/maas-ha.yaml. Everything else in maas-ha receives a `Config` and never
// re-reads or re-checks the file: the loader (./load.ts) is the only place that knows YAML exists.

/** How maas-ha starts and stops a node's PostgreSQL. */
export type NodeControl =
  /** `pg_ctl -D <config_directory or data_directory> -l <log_file> -w start|stop` (a self-managed cluster). */
  | { method: 'pg_ctl'; log_file: string }
  /** Debian's wrapper: `pg_ctlcluster <version> <name> start|stop` (config in /etc/postgresql/<version>/<name>). */
  | { method: 'pg_ctlcluster'; version: string; name: string };

export interface NodeConfig {
  /** pgpool's backend id: the N in backend_hostnameN. */
  id: number;
  /** Exactly as written in backend_hostnameN: pgpool compares primary_conninfo hosts with it as a string. */
  hostname: string;
  port: number;
  /** backend_data_directoryN. */
  data_directory: string;
  /** Where postgresql.conf lives when it is not in the data directory (Debian: /etc/postgresql/15/main). */
  config_directory?: string;
  /** PostgreSQL binaries on that host (pg_ctl, pg_rewind, pg_basebackup, pg_controldata). */
  bin_dir: string;
  control: NodeControl;
  /** Address used for ssh to this node's host; defaults to hostname. */
  ssh_host: string;
  /** false: never promote this node. */
  candidate: boolean;
  /** Higher wins when two standbys have the same LSN. */
  priority: number;
  /** Optional human name (e.g. the region controller's host name). */
  name: string;
}

export interface SshConfig {
  /** The ssh client (OpenSSH); default /usr/bin/ssh. */
  binary: string;
  user: string;
  port: number;
  identity_file: string;
  known_hosts_file: string;
  connect_timeout_s: number;
}

export interface PostgresAccess {
  /** Database maas-ha connects to for control queries. */
  database: string;
  /** A superuser (pg_promote, CHECKPOINT, slots). */
  user: string;
  /** libpq password file (host:port:db:user:password), or absent for trust/peer/cert. */
  password_file?: string;
  connect_timeout_ms: number;
  statement_timeout_ms: number;
}

export interface ReplicationConfig {
  user: string;
  /** libpq password file (pgpass format) used by standbys' primary_conninfo and by pg_basebackup. */
  password_file?: string;
  /** Use a physical replication slot per standby. */
  use_slots: boolean;
  /** When a standby is lost: drop its slot (WAL no longer retained for it) or keep it. */
  drop_slot_on_standby_loss: boolean;
  /** Synchronous replication managed by maas-ha: `any`/`first` N over the standbys, or off. */
  synchronous: { mode: 'off' | 'any' | 'first'; count: number };
}

export interface PcpConfig {
  /** Where pcp_node_info & co. live: /usr/sbin on Debian, /usr/bin on RHEL. */
  bin_dir: string;
  host: string;
  port: number;
  user: string;
  /** PCPPASSFILE: hostname:port:username:password, mode 0600. */
  pcppass_file: string;
  timeout_ms: number;
}

export type HookName =
  | 'failover'
  | 'follow_primary'
  | 'failback'
  | 'recovery_1st_stage'
  | 'remote_start'
  | 'escalation'
  | 'de_escalation'
  | 'ip_up'
  | 'ip_down'
  | 'arping';

export interface WebhookTarget {
  /** The incoming-webhook URL, written in the configuration (exactly one of url and url_file). */
  url?: string;
  /** A file holding the URL (a secret: chat webhooks carry their token in it; mode 0600), read when notifying. */
  url_file?: string;
  timeout_ms: number;
  /** Optional file holding an Authorization header value (secret, mode 0600). */
  authorization_file?: string;
}

/** Rebuilding a node as a standby (online recovery, `maas-ha recover`, follow-primary's fallback). */
export interface RecoveryConfig {
  /** Replaced data directories kept beside the new one (`<data_directory>.maas-ha-old-<UTC time>`) once the node
   *  streams again; older ones are deleted. 0: delete the replaced one as soon as the node streams. */
  keep_old_data_dirs: number;
  /** follow_primary may fall back to a base backup when pg_rewind cannot rejoin a node (the old data directory is
   *  moved aside first, never deleted). Off by default: pgpool's follow child handles nodes one after another, so
   *  a long copy delays every other standby. Online recovery and `maas-ha recover` always may. */
  follow_basebackup: boolean;
  /** pg_basebackup --max-rate in kB/s (32 to 1048576); absent: unthrottled. */
  max_rate_kb_s?: number;
  /** How long a rebuilt node may take to accept connections after start. */
  start_timeout_ms: number;
  /** How long a started node may take to stream the primary's timeline. */
  stream_timeout_ms: number;
}

export interface Config {
  /** Path of the file this came from (for messages). */
  source: string;
  cluster_name: string;
  nodes: NodeConfig[];
  ssh: SshConfig;
  postgres: PostgresAccess;
  replication: ReplicationConfig;
  pcp: PcpConfig;
  /** Per-hook time budget in milliseconds: the hook finishes (or gives up) within it. */
  budgets_ms: Record<HookName, number>;
  notify: { webhooks: WebhookTarget[] };
  /** Journal, locks and fencing markers. */
  state_dir: string;
  /** Fencing a lost primary that ssh cannot reach: an argv run with a timeout; {host} {port} {id} are replaced
   *  as whole arguments, never through a shell. */
  fencing: { command?: string[]; timeout_ms: number };
  recovery: RecoveryConfig;
  log_level: 'debug' | 'info' | 'warn' | 'error';
  /** The region controller VIP held by pgpool's watchdog (lib/vip): absent when no watchdog VIP is used. */
  vip?: VipConfig;
  /** MAAS facts for `maas-ha render` and `maas-ha rack` (lib/maas); absent: the defaults (lib/maas/layout.ts maasOf). */
  maas?: MaasConfig;
}

export const DEFAULT_RECOVERY: RecoveryConfig = {
  keep_old_data_dirs: 1,
  follow_basebackup: false,
  start_timeout_ms: 60_000,
  stream_timeout_ms: 30_000,
};

export const DEFAULT_BUDGETS_MS: Record<HookName, number> = {
  failover: 10_000,
  follow_primary: 120_000,
  failback: 10_000,
  recovery_1st_stage: 3_600_000,
  remote_start: 120_000,
  escalation: 30_000,
  de_escalation: 15_000,
  // if_up_cmd/if_down_cmd/arping_cmd replacements (maas-ha ip up|down, maas-ha arping): pgpool waits for each.
  ip_up: 10_000,
  ip_down: 10_000,
  arping: 60_000,
};

// ---- the region controller VIP (lib/vip): what the watchdog escalation hooks do around pgpool's delegate_IP

export type ServicePreset = 'maas-1' | 'maas-2-deb' | 'maas-3-deb' | 'maas-snap';
export type ServiceManagerKind = 'systemd' | 'snap' | 'commands';

export interface ServiceSpec {
  /** For messages and the timeline. */
  name: string;
  /** systemd unit or snap name (default: name). */
  unit: string;
  /** Restarted only once the VIP is up, because it binds the VIP's address itself (bind9 binds addresses one by one). */
  needs_vip: boolean;
  /** The commands manager only: argv lists, run without a shell. */
  restart?: string[];
  stop?: string[];
}

export interface VipConfig {
  /**
   * active-passive: only the VIP holder runs the region services (the others are fenced or stopped, and a VIP move
   * restarts them); active-active (MAAS 2.x and later): every region controller serves all the time and a VIP move
   * restarts nothing (docs/maas.md, "Active-passive or active-active").
   */
  mode: 'active-passive' | 'active-active';
  /** pgpool's delegate_IP (IPv4). */
  address: string;
  prefix_length: number;
  interface: string;
  /** Every host that may hold the VIP, this one included (found at run time by its address). */
  region_controllers: { name: string; address: string }[];
  /** How root-only commands run: through `sudo -n` (the drop-in `maas-ha vip sudoers` prints) or as they are. */
  privilege: 'sudo' | 'none';
  /** Per peer, for removing a VIP a peer still holds (the peer may be dead). */
  peer_timeout_ms: number;
  binaries: { ip: string; arping: string; nft: string; sudo: string; systemctl: string; snap: string; rndc: string; named_checkconf: string };
  fence: {
    /** nftables: block the region services' users from PostgreSQL/pgpool ports; stop-services: stop them. */
    method: 'nftables' | 'stop-services' | 'none';
    users: string[];
    ports: number[];
    /** The ruleset file `nft -f` loads (written by root with `maas-ha vip fence-file`). */
    file: string;
  };
  services: { preset?: ServicePreset; manager: ServiceManagerKind; list: ServiceSpec[]; timeout_ms: number };
  checks: {
    /** Per check: retried until it passes or this runs out. */
    timeout_ms: number;
    interval_ms: number;
    api?: { port: number; path: string };
    dns?: { port: number; zone: string };
    proxy?: { port: number };
  };
  /** Secondary DNS servers on the region controllers (port of their rndc control channel on each address). */
  slave_dns?: SlaveDnsConfig;
  /** arping does only the after-VIP part when an escalation hook ran this recently; otherwise all of it. */
  escalation_window_ms: number;
}

/**
 * The secondary bind9 on every region controller (lib/maas/slave-dns.ts renders its named.conf; docs/maas.md,
 * "Slave DNS"): secondary zones transferred from the MAAS DNS on the VIP, everything else forwarded.
 */
export interface SlaveDnsConfig {
  /** Port of the secondary's rndc control channel, on the node's own address. */
  port: number;
  /** The rndc key file (included by the secondary's configuration, used by `rndc retransfer`). */
  key_file: string;
  /** The name of the key inside key_file (rndc-confgen writes "rndc-key"). */
  key_name: string;
  /** The MAAS zones served as secondary zones (forward domains and reverse zones). */
  zones: string[];
  timeout_ms: number;
  /** The MAAS DNS the zones are transferred from: default the VIP, on the preset's DNS port (5353 for MAAS 1.x). */
  primary: { address: string; port: number };
  /** Where every other name is resolved: default the primary. */
  forwarders: { addresses: string[]; port: number; mode: 'only' | 'first' };
  /** bind9 address match list elements for allow-query and allow-recursion. */
  allow_query: string[];
  /** Where `maas-ha render dns --write` installs the secondary's configuration. */
  conf_file: string;
  /** The secondary's working directory (its zone copies, pid file); bind must be able to write it. */
  directory: string;
}

/** Which MAAS a host runs: decides file locations and services (lib/maas/layout.ts, docs/maas.md). */
export type MaasFlavour = ServicePreset;

/** MAAS itself, beyond the VIP: the slave DNS zones' source, DHCP's DNS servers, the rack controller's identity. */
export interface MaasConfig {
  flavour: MaasFlavour;
  /** Prefix of every MAAS file path (/ on a real host; a temporary directory in tests). */
  root: string;
  /** The MAAS database (read for --from-maas-db on any node of the cluster, a standby will do). */
  database: { name: string; user?: string };
  dhcp: {
    /** MAAS 1.x: the dhcpd.conf template (default under root, per flavour). */
    template?: string;
    /** MAAS 2.x/3.x: the maas CLI profile the printed commands use. */
    profile: string;
    /** MAAS 2.x/3.x: the subnets (CIDR) whose dns_servers are set; --from-maas-db reads every subnet instead. */
    subnets: string[];
    /** Default: the address of every region controller (each runs a secondary DNS). */
    dns_servers?: string[];
  };
  rack: {
    /** How the rack (cluster) service restarts: default per flavour (systemd maas-rackd / maas-clusterd, snap maas). */
    manager?: ServiceManagerKind;
    unit?: string;
    /** manager: commands only: the restart argv. */
    restart?: string[];
    /** How long the restored rack may take until its region answers through maas_url. */
    reconnect_timeout_ms: number;
  };
  binaries: { tar: string; systemctl: string; snap: string };
}
