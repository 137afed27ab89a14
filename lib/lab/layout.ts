// Where everything of the lab lives, and the files it writes, as pure functions of the options. The lab is a
// production install in miniature: PostgreSQL 15 nodes with their configuration outside the data directory (as
// on Debian), one pgpool-II 4.3 wired through pgpool/hooks.conf, and an sshd that gives postgres key-based access
// to every "host" with strict host key checking. Each node has its own loopback address so hosts look like hosts.

import { join } from 'node:path';

export interface LabOptions {
  /** Everything of the lab lives below this directory. */
  dir: string;
  /** PostgreSQL nodes (first is the initial primary). */
  nodes: number;
  /** The built maas-ha executables that pgpool runs (dist/bin of this checkout, or /usr/local/lib/maas-ha/bin). */
  hookBinDir: string;
  /** PostgreSQL 15 binaries. */
  pgBinDir: string;
  /** pgpool/hooks.conf of this checkout or install: the lines a production pgpool.conf gets. */
  hooksTemplate: string;
  /** Synchronous replication as the lab runs it (ANY 1 over the standbys unless told otherwise). */
  synchronous: 'any' | 'off';
  /**
   * Which loopback network the lab's "hosts" live on: 127.0.<net>.10 is pgpool, 127.0.<net>.11+ the nodes. Two
   * labs with different nets (and dirs) run side by side, e.g. one per end-to-end test file.
   */
  net: number;
  /**
   * Where a pristine `initdb` of this PostgreSQL version is kept between labs (created on first use, owned by
   * postgres, in a directory only root writes), copied instead of running initdb for every lab: the end-to-end
   * tests rebuild a lab some thirty times. Unset (the lab CLI): initdb every time.
   */
  initdbTemplate?: string;
}

export const LAB_PGPOOL_PORT = 9999;
export const LAB_PCP_PORT = 9898;
export const LAB_SSH_PORT = 2222;
export const LAB_PG_PORT = 5432;
export const LAB_PCP_USER = 'pcpadmin';
export const LAB_REPL_USER = 'replicator';

/** The address pgpool (and pcp) listen on. */
export const pgpoolHost = (o: Pick<LabOptions, 'net'>) => `127.0.${o.net}.10`;
export const nodeHost = (o: Pick<LabOptions, 'net'>, i: number) => `127.0.${o.net}.${11 + i}`;

export interface LabNode {
  id: number;
  name: string;
  host: string;
  port: number;
  root: string;
  data: string;
  conf: string;
  run: string;
  log: string;
}

export function labNodes(o: LabOptions): LabNode[] {
  return Array.from({ length: o.nodes }, (_, i) => {
    const root = join(o.dir, `pg${i}`);
    return {
      id: i,
      name: `pg${i}`,
      host: nodeHost(o, i),
      port: LAB_PG_PORT,
      root,
      data: join(root, 'data'),
      conf: join(root, 'conf'),
      run: join(root, 'run'),
      log: join(root, 'postgresql.log'),
    };
  });
}

/**
 * Each node's guard (maas-ha-guard watch, lib/guard), run by the lab as the database host's systemd would run
 * maas-ha-guard.service: its pid file and its log (JSON lines) beside the node's PostgreSQL log.
 */
export const LAB_GUARD_INTERVAL_MS = 1000;
export function guardFiles(n: LabNode): { pid: string; log: string } {
  return { pid: join(n.root, 'guard.pid'), log: join(n.root, 'guard.log') };
}

export function labPaths(dir: string) {
  return {
    config: join(dir, 'maas-ha.yaml'),
    /** The options the lab was started with, for later `lab status | drill | down` calls. */
    options: join(dir, 'lab.json'),
    /** The lab's own copy of the built hooks: rebuilding the checkout never changes what a running lab executes. */
    bin: join(dir, 'bin'),
    state: join(dir, 'state'),
    secrets: join(dir, 'secrets'),
    replPass: join(dir, 'secrets', 'replication.pgpass'),
    pcpPass: join(dir, 'secrets', 'pcppass'),
    sshKey: join(dir, 'secrets', 'id_ed25519'),
    ssh: join(dir, 'ssh'),
    sshdConfig: join(dir, 'ssh', 'sshd_config'),
    sshdPid: join(dir, 'ssh', 'sshd.pid'),
    sshdLog: join(dir, 'ssh', 'sshd.log'),
    hostKey: join(dir, 'ssh', 'ssh_host_ed25519_key'),
    knownHosts: join(dir, 'ssh', 'known_hosts'),
    authorizedKeys: join(dir, 'ssh', 'authorized_keys'),
    pgpool: join(dir, 'pgpool'),
    pgpoolConf: join(dir, 'pgpool', 'etc', 'pgpool.conf'),
    pcpConf: join(dir, 'pgpool', 'etc', 'pcp.conf'),
    poolHba: join(dir, 'pgpool', 'etc', 'pool_hba.conf'),
    poolPasswd: join(dir, 'pgpool', 'etc', 'pool_passwd'),
    pgpoolRun: join(dir, 'pgpool', 'run'),
    pgpoolPid: join(dir, 'pgpool', 'run', 'pgpool.pid'),
    pgpoolLog: join(dir, 'pgpool', 'pgpool.log'),
  };
}

/**
 * The lab's sshd policy, wherever it listens: key-only logins for postgres (the "user equivalence" pgpool's hooks
 * rely on), nothing else. Used by the plain lab and the VIP lab alike.
 */
export function sshdPolicy(s: { listen: string[]; hostKey: string; pidFile: string; authorizedKeys: string }): string {
  return [
    ...s.listen.map((a) => `ListenAddress ${a}`),
    `HostKey ${s.hostKey}`,
    `PidFile ${s.pidFile}`,
    `AuthorizedKeysFile ${s.authorizedKeys}/%u`,
    'AuthenticationMethods publickey',
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin no',
    'AllowUsers postgres',
    // The Debian postgres account is locked ("!" in /etc/shadow): without PAM, sshd refuses it even with a key.
    'UsePAM yes',
    'StrictModes yes',
    'X11Forwarding no',
    'AllowTcpForwarding no',
    'PermitTTY no',
    'LogLevel VERBOSE',
    '',
  ].join('\n');
}

export function sshdConfig(o: LabOptions): string {
  const p = labPaths(o.dir);
  return sshdPolicy({
    listen: labNodes(o).map((n) => `${n.host}:${LAB_SSH_PORT}`),
    hostKey: p.hostKey,
    pidFile: p.sshdPid,
    authorizedKeys: p.authorizedKeys,
  });
}

export function knownHosts(o: LabOptions, hostPublicKey: string): string {
  const [type, key] = hostPublicKey.trim().split(/\s+/);
  return labNodes(o).map((n) => `[${n.host}]:${LAB_SSH_PORT} ${type} ${key}\n`).join('');
}

export function postgresqlConf(o: LabOptions, n: LabNode): string {
  return [
    `# maas-ha lab node ${n.name}: configuration outside the data directory, as Debian keeps it in /etc/postgresql.`,
    `data_directory = '${n.data}'`,
    `hba_file = '${n.conf}/pg_hba.conf'`,
    `ident_file = '${n.conf}/pg_ident.conf'`,
    `listen_addresses = '${n.host}'`,
    `port = ${n.port}`,
    `unix_socket_directories = '${n.run}'`,
    `cluster_name = '${n.name}'`,
    'max_connections = 60',
    'shared_buffers = 32MB',
    ...PG_REPLICATION_SETTINGS,
    "log_line_prefix = '%m [%p] %q%a '",
    'log_min_messages = warning',
    '',
  ].join('\n');
}

export const PG_HBA = [
  '# maas-ha lab: the superuser is trusted on loopback (a lab shortcut); replication and everyone else use scram.',
  'local   all          all                      trust',
  'host    all          postgres   127.0.0.0/8   trust',
  // maas-ha's observations ask a standby for the timeline it replays with IDENTIFY_SYSTEM (replication protocol).
  'host    replication  postgres   127.0.0.0/8   trust',
  `host    replication  ${LAB_REPL_USER} 127.0.0.0/8   scram-sha-256`,
  'host    all          all        127.0.0.0/8   scram-sha-256',
  '',
].join('\n');

export function labConfigYaml(o: LabOptions): string {
  const p = labPaths(o.dir);
  const nodes = labNodes(o)
    .map(
      (n) => `  - id: ${n.id}
    name: ${n.name}
    hostname: ${n.host}
    port: ${n.port}
    data_directory: ${n.data}
    config_directory: ${n.conf}
    control: { method: pg_ctl, log_file: ${n.log} }`,
    )
    .join('\n');
  return `# maas-ha configuration of the local lab (written by \`maas-ha lab up\`).
cluster_name: lab
state_dir: ${p.state}
postgres:
  bin_dir: ${o.pgBinDir}
  user: postgres
  database: postgres
  connect_timeout_ms: 2000
  statement_timeout_ms: 5000
replication:
  user: ${LAB_REPL_USER}
  password_file: ${p.replPass}
  use_slots: true
  drop_slot_on_standby_loss: false
  synchronous: { mode: ${o.synchronous}, count: 1 }
nodes:
${nodes}
ssh:
  binary: /usr/bin/ssh
  user: postgres
  port: ${LAB_SSH_PORT}
  identity_file: ${p.sshKey}
  known_hosts_file: ${p.knownHosts}
  connect_timeout_s: 3
# The lab shares two cores with its own PostgreSQL nodes, pgpool and the test suite: ssh logins and promotions
# are slower than on a database host, so the failover hook gets twice the default budget.
budgets: { failover: 20000 }
pcp:
  bin_dir: /usr/sbin
  host: ${pgpoolHost(o)}
  port: ${LAB_PCP_PORT}
  user: ${LAB_PCP_USER}
  pcppass_file: ${p.pcpPass}
  timeout_ms: 10000
`;
}

/**
 * How every lab pgpool logs: to stderr (the lab's log file), with maas-ha's hook lines in between. Not
 * `log_min_messages = 'log'`: pgpool, like PostgreSQL, ranks LOG above ERROR for the server log, so 'log' would
 * hide every WARNING and ERROR (a failed escalation command is only a WARNING). 'warning' shows those and LOG too.
 */
export const PGPOOL_LOG_SETTINGS = ["log_destination = 'stderr'", "log_line_prefix = '%m: %a pid %p: '", "log_min_messages = 'warning'"];

/**
 * Where a lab pgpool listens and keeps its files, the same way in both labs: streaming replication mode, its
 * client and pcp ports, and every socket, the pid file and the status file under one run directory of its own
 * (two pgpools on one machine must share none of them), logs on stderr.
 */
export function pgpoolPlacement(o: { listen: string; port: number; pcpPort: number; run: string; pidFile: string }): string[] {
  return [
    "backend_clustering_mode = 'streaming_replication'",
    `listen_addresses = '${o.listen}'`,
    `port = ${o.port}`,
    `socket_dir = '${o.run}'`,
    `pcp_listen_addresses = '${o.listen}'`,
    `pcp_port = ${o.pcpPort}`,
    `pcp_socket_dir = '${o.run}'`,
    `wd_ipc_socket_dir = '${o.run}'`,
    `pid_file_name = '${o.pidFile}'`,
    `logdir = '${o.run}'`,
    ...PGPOOL_LOG_SETTINGS,
  ];
}

/**
 * How every lab pgpool detects a lost backend, finds the primary and runs online recovery: the same lines in the
 * plain lab and on every member of the VIP lab.
 */
export const PGPOOL_FAILOVER_SETTINGS = [
  // No replication check: its worker holds pgpool's follow-primary lock while it waits on a backend with no
  // timeout, and a primary cut off in the middle of a check stalled the primary search after the failover until
  // the partition healed (the fault campaign's black hole; docs/pgpool-hooks.md). maas-ha reads replication
  // from PostgreSQL itself.
  'sr_check_period = 0',
  // pgpool finds the primary with these credentials (the Debian default user is nobody: docs/lab.md, "Debian's
  // pgpool.conf has health checks off").
  "sr_check_user = 'postgres'",
  "sr_check_password = ''",
  "sr_check_database = 'postgres'",
  'health_check_period = 1',
  'health_check_timeout = 3',
  "health_check_user = 'postgres'",
  "health_check_password = ''",
  "health_check_database = 'postgres'",
  'health_check_max_retries = 0',
  'health_check_retry_delay = 1',
  'connect_timeout = 3000',
  'failover_on_backend_error = on',
  'failover_on_backend_shutdown = off',
  'search_primary_node_timeout = 30',
  "recovery_user = 'postgres'",
  "recovery_password = ''",
  "recovery_2nd_stage_command = ''",
  'recovery_timeout = 90',
  'auto_failback = off',
];

/** The replication settings of every lab node's postgresql.conf (both labs). */
export const PG_REPLICATION_SETTINGS = [
  'wal_level = replica',
  'max_wal_senders = 10',
  'max_replication_slots = 10',
  'wal_keep_size = 128MB',
  'hot_standby = on',
  'hot_standby_feedback = on',
  // pg_rewind needs hint bits in WAL (or data checksums).
  'wal_log_hints = on',
  'wal_receiver_status_interval = 1s',
  'wal_retrieve_retry_interval = 1s',
  // synchronous_standby_names is not set here: maas-ha manages it with ALTER SYSTEM on the primary.
];

export function pgpoolConf(o: LabOptions, hookLines: string): string {
  const p = labPaths(o.dir);
  const backends = labNodes(o).flatMap((n) => [
    `backend_hostname${n.id} = '${n.host}'`,
    `backend_port${n.id} = ${n.port}`,
    `backend_weight${n.id} = 1`,
    `backend_data_directory${n.id} = '${n.data}'`,
    `backend_flag${n.id} = 'ALLOW_TO_FAILOVER'`,
    `backend_application_name${n.id} = '${n.name}'`,
  ]);
  return [
    '# pgpool-II 4.3 configuration of the maas-ha lab (written by `maas-ha lab up`).',
    ...pgpoolPlacement({ listen: pgpoolHost(o), port: LAB_PGPOOL_PORT, pcpPort: LAB_PCP_PORT, run: p.pgpoolRun, pidFile: p.pgpoolPid }),
    'enable_pool_hba = off',
    // An empty file, not '': with '' pgpool warns on every health check and forwards the warning to clients.
    `pool_passwd = '${p.poolPasswd}'`,
    'num_init_children = 16',
    'max_pool = 2',
    'reserved_connections = 0',
    // MAAS relies on LISTEN/NOTIFY and advisory locks: every statement must reach the primary.
    'load_balance_mode = off',
    ...backends,
    ...PGPOOL_FAILOVER_SETTINGS,
    '',
    '# ---- maas-ha hooks: pgpool/hooks.conf, rendered for this lab ----',
    hookLines.trim(),
    '',
  ].join('\n');
}
