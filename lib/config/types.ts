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
  | 'de_escalation';

export interface WebhookTarget {
  url: string;
  timeout_ms: number;
  /** Optional file holding an Authorization header value (secret, mode 0600). */
  authorization_file?: string;
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
  log_level: 'debug' | 'info' | 'warn' | 'error';
}

export const DEFAULT_BUDGETS_MS: Record<HookName, number> = {
  failover: 10_000,
  follow_primary: 120_000,
  failback: 10_000,
  recovery_1st_stage: 3_600_000,
  remote_start: 120_000,
  escalation: 30_000,
  de_escalation: 15_000,
};
