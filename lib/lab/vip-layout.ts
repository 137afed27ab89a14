// The VIP lab as pure functions of its options: network namespaces as hosts on one private bridge, and every
// file each host needs. Two region controllers (rc1, rc2) each run a PostgreSQL node (rc1 primary, rc2 standby),
// a pgpool-II 4.3 watchdog member wired with pgpool/watchdog.conf, sshd, and stand-ins for the MAAS region
// services: bind9 as maas-dns (authoritative for the zone `maas`, listening on the VIP only, as MAAS's bind does
// once it has rescanned its interfaces), a second bind9 as the secondary DNS (on the host's own address,
// transferring the zone from the VIP and forwarding the rest to it), squid as maas-proxy, and a small HTTP service
// answering the MAAS API version endpoint in place of regiond. A witness namespace runs a third watchdog member
// and nothing else, so a lone region controller cannot keep the VIP in a partition. A client namespace runs the
// checks and a webhook sink that records maas-ha's notifications, and stands in for a cluster (rack) controller:
// its resolver lists both region controllers' secondary DNS servers, and a rack stand-in reads its MAAS identity
// files and asks the region for its event loops through maas_url (clusterPaths). The secondary's named.conf and
// the primary's transfer and notify statements are what `maas-ha render dns` renders.
//
//   mhv<K>-rc1 198.18.<K>.11 ─┐
//   mhv<K>-rc2 198.18.<K>.12 ─┼─ br0 in mhv<K>-sw      VIP 198.18.<K>.100 (only ever on rc1 or rc2)
//   mhv<K>-wit 198.18.<K>.13 ─┤
//   mhv<K>-cl  198.18.<K>.50 ─┘
//
// Nothing is attached to the root namespace (RFC 2544 benchmarking addresses; docs/lab.md, "The VIP lab"). Unix
// sockets are not per network namespace (docs/lab.md, "Unix sockets are not per namespace"), so every instance has
// its own socket directories.

import { join } from 'node:path';
import { renderMasterSnippet, renderSecondaryConf } from '../maas/slave-dns.ts';
import { PGPOOL_FAILOVER_SETTINGS, pgpoolPlacement, sshdPolicy } from './layout.ts';

export interface VipLabOptions {
  dir: string;
  /** 198.18.<net>.0/24 and the namespace prefix mhv<net>-. */
  net: number;
  /** The built maas-ha executables (copied into the lab). */
  hookBinDir: string;
  /** pgpool/watchdog.conf of this checkout or install. */
  watchdogTemplate: string;
  pgBinDir: string;
  /** vip.mode of every region controller's configuration (default active-passive). */
  mode?: 'active-passive' | 'active-active';
}

export type RcName = 'rc1' | 'rc2';
export type HostName = RcName | 'wit' | 'cl';
export const RCS: readonly RcName[] = ['rc1', 'rc2'];
export const HOSTS: readonly HostName[] = ['rc1', 'rc2', 'wit', 'cl'];
export const WATCHDOG_HOSTS: readonly HostName[] = ['rc1', 'rc2', 'wit'];

/** The stand-in services the hooks restart (names as MAAS 2.x/3.x call them), and the secondary DNS. */
export const LAB_SERVICES = ['maas-regiond', 'maas-proxy', 'bind9', 'dns-slave'] as const;
export type LabService = (typeof LAB_SERVICES)[number];

export const FENCED_USER = 'nobody';
export const PG_PORT = 5432;
export const PGPOOL_PORT = 9999;
export const PCP_PORT = 9898;
export const API_PORT = 5240;
export const PROXY_PORT = 8000;
export const SINK_PORT = 8080;
export const MASTER_RNDC_PORT = 953;
export const SLAVE_RNDC_PORT = 954;
export const RNDC_KEY_NAME = 'maas-ha-lab';

const OCTET: Record<HostName, number> = { rc1: 11, rc2: 12, wit: 13, cl: 50 };

export const ns = (o: Pick<VipLabOptions, 'net'>, h: HostName | 'sw') => `mhv${o.net}-${h}`;
/** The bridge-side end of a host's veth (the host side is renamed eth0 inside its namespace). */
export const vethPort = (o: Pick<VipLabOptions, 'net'>, h: HostName) => `mhv${o.net}${h}`;
export const addr = (o: Pick<VipLabOptions, 'net'>, h: HostName) => `198.18.${o.net}.${OCTET[h]}`;
export const vipAddr = (o: Pick<VipLabOptions, 'net'>) => `198.18.${o.net}.100`;

/** The fault campaign's view of the VIP lab (lib/lab/campaign.ts): the writer goes through the VIP, node i is RCS[i]. */
export const vipCampaignTarget = (o: Pick<VipLabOptions, 'net'>) => ({
  pgpool: { host: vipAddr(o), port: PGPOOL_PORT },
  nodes: RCS.map((rc, id) => ({ id, host: addr(o, rc), port: PG_PORT })),
});

export function vipPaths(dir: string) {
  return {
    options: join(dir, 'lab-vip.json'),
    bin: join(dir, 'bin'),
    secrets: join(dir, 'secrets'),
    sshKey: join(dir, 'secrets', 'id_ed25519'),
    rndcKey: join(dir, 'secrets', 'rndc.key'),
    ssh: join(dir, 'ssh'),
    hostKey: join(dir, 'ssh', 'ssh_host_ed25519_key'),
    knownHosts: join(dir, 'ssh', 'known_hosts'),
    authorizedKeys: join(dir, 'ssh', 'authorized_keys'),
    sink: join(dir, 'cl', 'notifications.jsonl'),
    sinkLog: join(dir, 'cl', 'sink.log'),
    sinkPid: join(dir, 'cl', 'sink.pid'),
    /** The sudoers drop-in of the lab (both region controllers' exact commands). */
    sudoers: `/etc/sudoers.d/mhv-${dir.replace(/[^A-Za-z0-9]/g, '_').replace(/^_+/, '')}`,
  };
}

/** The MAAS flavour of the lab's rack stand-in (its identity files' layout: lib/maas/layout.ts). */
export const CLUSTER_FLAVOUR = 'maas-3-deb' as const;

/**
 * The cluster (rack) controller stand-in inside the client namespace: its MAAS files under `root` (as under / on a
 * real one), its maas-ha configuration (for `maas-ha rack`), the rack stand-in's pid, log and last status, and the
 * resolver file `ip netns exec` mounts over /etc/resolv.conf in that namespace (iproute2's /etc/netns convention).
 */
export function clusterPaths(o: Pick<VipLabOptions, 'dir' | 'net'>) {
  const cl = join(o.dir, 'cl');
  return {
    root: join(cl, 'rack'),
    config: join(cl, 'maas-ha.yaml'),
    rackdPid: join(cl, 'rackd.pid'),
    rackdLog: join(cl, 'rackd.log'),
    rackdStatus: join(cl, 'rackd.status.json'),
    netnsEtc: `/etc/netns/${ns(o, 'cl')}`,
    resolvConf: `/etc/netns/${ns(o, 'cl')}/resolv.conf`,
  };
}

/** The cluster controller lists every region controller's secondary DNS, the first one tried for a second. */
export function clusterResolvConf(o: Pick<VipLabOptions, 'net'>): string {
  return [
    '# VIP lab: the cluster controller stand-in asks every region controller\'s secondary DNS (maas-ha render dhcp).',
    ...RCS.map((rc) => `nameserver ${addr(o, rc)}`),
    'options timeout:1 attempts:1',
    '',
  ].join('\n');
}

/**
 * maas-ha.yaml of the cluster controller stand-in: a region controller's (for the VIP and its addresses, which
 * `rack check` compares maas_url with) plus a maas section whose rack service is the lab's rack stand-in.
 */
export function clusterConfigYaml(o: VipLabOptions, rcYaml: string): string {
  const c = clusterPaths(o);
  return `${rcYaml}
maas:
  flavour: ${CLUSTER_FLAVOUR}
  root: ${c.root}
  rack:
    manager: commands               # the lab has no systemd: the rack stand-in restarted by the lab
    restart: [${join(vipPaths(o.dir).bin, 'maas-ha')}, lab, vip, rackd, restart, --dir, ${o.dir}]
    reconnect_timeout_ms: 20000
`;
}

export function hostPaths(dir: string, h: HostName) {
  const root = join(dir, h);
  return {
    root,
    etc: join(root, 'etc'),
    config: join(root, 'etc', 'maas-ha.yaml'),
    pgpoolConf: join(root, 'etc', 'pgpool.conf'),
    pcpConf: join(root, 'etc', 'pcp.conf'),
    pcpPass: join(root, 'etc', 'pcppass'),
    poolHba: join(root, 'etc', 'pool_hba.conf'),
    poolPasswd: join(root, 'etc', 'pool_passwd'),
    nodeId: join(root, 'etc', 'pgpool_node_id'),
    // Root loads it with `nft -f`: it lives in the host's root-owned directory, not in etc/ (which postgres owns).
    fenceFile: join(root, 'fence.nft'),
    run: join(root, 'run'),
    pgpoolPid: join(root, 'run', 'pgpool.pid'),
    pgpoolLog: join(root, 'pgpool.log'),
    state: join(root, 'state'),
    pgData: join(root, 'pg', 'data'),
    pgRun: join(root, 'pg', 'run'),
    pgLog: join(root, 'pg', 'postgresql.log'),
    /** The node's guard (maas-ha-guard watch, as a database host's maas-ha-guard.service runs it). */
    guardPid: join(root, 'pg', 'guard.pid'),
    guardLog: join(root, 'pg', 'guard.log'),
    sshdConfig: join(root, 'ssh', 'sshd_config'),
    sshdPid: join(root, 'ssh', 'sshd.pid'),
    sshdLog: join(root, 'ssh', 'sshd.log'),
    broken: join(root, 'broken'),
    svc: (s: LabService) => join(root, 'svc', s),
  };
}

export function labRcConfigYaml(o: VipLabOptions, h: RcName): string {
  const p = vipPaths(o.dir);
  const hp = hostPaths(o.dir, h);
  const svc = (name: LabService, needsVip: boolean) => {
    const cmd = (action: string) => JSON.stringify([join(p.bin, 'maas-ha'), 'lab', 'vip', 'service', action, name, '--dir', o.dir, '--host', h]);
    return `      - { name: ${name}, needs_vip: ${needsVip}, restart: ${cmd('restart')}, stop: ${cmd('stop')} }`;
  };
  const nodes = RCS.map(
    (rc, i) => `  - id: ${i}
    name: ${rc}
    hostname: ${addr(o, rc)}
    port: ${PG_PORT}
    data_directory: ${hostPaths(o.dir, rc).pgData}
    control: { method: pg_ctl, log_file: ${hostPaths(o.dir, rc).pgLog} }`,
  ).join('\n');
  return `# maas-ha configuration of region controller ${h} in the VIP lab (written by \`maas-ha lab vip up\`).
cluster_name: vip-lab
state_dir: ${hp.state}
postgres:
  bin_dir: ${o.pgBinDir}
  user: postgres
  database: postgres
  connect_timeout_ms: 2000
  statement_timeout_ms: 5000
replication:
  user: postgres
  use_slots: true
  drop_slot_on_standby_loss: false
  synchronous: { mode: any, count: 1 }
# Two cores for two region controllers, a witness, PostgreSQL twice and the suite: the lab's failover hook gets
# twice the default budget, as in the plain lab.
budgets: { failover: 20000 }
nodes:
${nodes}
ssh:
  user: postgres
  port: 22
  identity_file: ${p.sshKey}
  known_hosts_file: ${p.knownHosts}
  connect_timeout_s: 2
pcp:
  host: ${addr(o, h)}
  port: ${PCP_PORT}
  user: pcpadmin
  pcppass_file: ${hp.pcpPass}
notify:
  webhooks:
    - { url: "http://${addr(o, 'cl')}:${SINK_PORT}/notify", timeout_ms: 2000 }
vip:
  mode: ${o.mode ?? 'active-passive'}
  address: ${vipAddr(o)}
  prefix_length: 24
  interface: eth0
  region_controllers:
${RCS.map((rc) => `    - { name: ${rc}, address: ${addr(o, rc)} }`).join('\n')}
  privilege: sudo
  peer_timeout_ms: 2500
  fence:${o.mode === 'active-active' ? '                          # active-active: no fence (method none)' : '\n    method: nftables'}
    users: [${FENCED_USER}]           # the stand-in regiond runs as ${FENCED_USER}; MAAS runs as maas
    ports: [${PG_PORT}, ${PGPOOL_PORT}]
    file: ${hp.fenceFile}
  services:
    manager: commands               # the lab has no systemd
    timeout_ms: 15000
    list:
${svc('maas-regiond', false)}
${svc('maas-proxy', false)}
${svc('bind9', true)}
  checks:
    timeout_ms: 15000
    interval_ms: 200
    api: { port: ${API_PORT}, path: /MAAS/api/2.0/version/ }
    dns: { port: 53, zone: maas }
    proxy: { port: ${PROXY_PORT} }
  slave_dns:
    port: ${SLAVE_RNDC_PORT}
    key_file: ${p.rndcKey}
    zones: [maas]
    timeout_ms: 2000
`;
}

/**
 * pgpool.conf of a watchdog member. Every member health-checks both backends and votes on a failover
 * (failover_require_consensus); only the leader runs the hooks (docs/pgpool-hooks.md), so the region controllers
 * carry maas-ha's database hooks (`hookLines`, pgpool/hooks.conf rendered for the host) and the witness, which
 * must never lead (lowest wd_priority), carries none.
 */
export function labPgpoolConf(o: VipLabOptions, h: HostName, watchdogLines: string, hookLines: string): string {
  const hp = hostPaths(o.dir, h);
  const priority = { rc1: 3, rc2: 2, wit: 1, cl: 0 }[h];
  const backends = RCS.flatMap((rc, i) => [
    `backend_hostname${i} = '${addr(o, rc)}'`,
    `backend_port${i} = ${PG_PORT}`,
    `backend_weight${i} = 1`,
    `backend_data_directory${i} = '${hostPaths(o.dir, rc).pgData}'`,
    `backend_flag${i} = 'ALLOW_TO_FAILOVER'`,
    `backend_application_name${i} = '${rc}'`,
  ]);
  const members = WATCHDOG_HOSTS.flatMap((m, i) => [
    `hostname${i} = '${addr(o, m)}'`,
    `wd_port${i} = 9000`,
    `pgpool_port${i} = ${PGPOOL_PORT}`,
    `heartbeat_hostname${i} = '${addr(o, m)}'`,
    `heartbeat_port${i} = 9694`,
  ]);
  return [
    `# pgpool-II 4.3 of ${h} in the maas-ha VIP lab (written by \`maas-ha lab vip up\`).`,
    ...pgpoolPlacement({ listen: '*', port: PGPOOL_PORT, pcpPort: PCP_PORT, run: hp.run, pidFile: hp.pgpoolPid }),
    'enable_pool_hba = off',
    `pool_passwd = '${hp.poolPasswd}'`,
    'num_init_children = 4',
    'max_pool = 1',
    'load_balance_mode = off',
    ...backends,
    ...PGPOOL_FAILOVER_SETTINGS,
    'use_watchdog = on',
    ...members,
    `wd_priority = ${priority}`,
    // 4.3 spells it delegate_IP (docs/lab.md, "delegate_IP is spelt that way in 4.3"). The witness never holds the
    // VIP: no address, no hooks.
    `delegate_IP = '${h === 'wit' ? '' : vipAddr(o)}'`,
    'failover_when_quorum_exists = on',
    'failover_require_consensus = on',
    // Three members: a majority exists without counting half votes, so an isolated node loses quorum (docs/lab.md,
    // "Two watchdog members or three").
    'enable_consensus_with_half_votes = off',
    "wd_lifecheck_method = 'heartbeat'",
    'wd_interval = 1',
    'wd_heartbeat_keepalive = 1',
    'wd_heartbeat_deadtime = 3',
    "ping_path = '/usr/bin'",
    '',
    ...(h === 'wit'
      ? []
      : [
          '# ---- maas-ha watchdog hooks: pgpool/watchdog.conf, rendered for this lab ----',
          watchdogLines.trim(),
          '',
          '# ---- maas-ha database hooks: pgpool/hooks.conf, rendered for this host ----',
          hookLines.trim(),
          '',
        ]),
  ].join('\n');
}

export function namedMasterConf(o: VipLabOptions, h: RcName): string {
  const d = hostPaths(o.dir, h).svc('bind9');
  // Listening, transfers and NOTIFY as `maas-ha render dns` tells the operator to set them on the MAAS DNS.
  const snippet = renderMasterSnippet(
    { address: vipAddr(o), region_controllers: RCS.map((rc) => ({ name: rc, address: addr(o, rc) })) },
    { primary: { address: vipAddr(o), port: 53 } },
    CLUSTER_FLAVOUR,
  );
  return `// maas-dns stand-in of ${h}: authoritative for "maas", on the VIP (bind binds each address separately).
include "${d}/rndc.key";
controls { inet 127.0.0.1 port ${MASTER_RNDC_PORT} allow { 127.0.0.1; } keys { "${RNDC_KEY_NAME}"; }; };
options {
  directory "${d}";
  pid-file "${d}/named.pid";
  session-keyfile "${d}/session.key";
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
${snippet}};
zone "maas" { type master; file "${d}/maas.zone"; };
`;
}

export function maasZone(o: VipLabOptions, h: RcName, serial: number): string {
  return `$TTL 30
@ IN SOA ns1.maas. admin.maas. ( ${serial} 30 10 600 30 )
  IN NS ns1.maas.
ns1 IN A ${vipAddr(o)}
api IN A ${vipAddr(o)}
region IN TXT "${h}"
`;
}

/** The secondary DNS of `h`: exactly what `maas-ha render dns` renders for a region controller. */
export function namedSlaveConf(o: VipLabOptions, h: RcName): string {
  const d = hostPaths(o.dir, h).svc('dns-slave');
  return renderSecondaryConf({
    slave: {
      port: SLAVE_RNDC_PORT,
      // named drops CAP_DAC_OVERRIDE even as root: it reads a root-owned copy of the key the hooks' rndc uses.
      key_file: join(d, 'rndc.key'),
      key_name: RNDC_KEY_NAME,
      zones: ['maas'],
      timeout_ms: 2000,
      primary: { address: vipAddr(o), port: 53 },
      forwarders: { addresses: [vipAddr(o)], port: 53, mode: 'only' },
      allow_query: ['any'],
      conf_file: join(d, 'named.conf'),
      directory: d,
    },
    self: { name: h, address: addr(o, h) },
    regionControllers: RCS.map((rc) => ({ name: rc, address: addr(o, rc) })),
    vipAddress: vipAddr(o),
    zones: ['maas'],
  });
}

export function squidConf(o: VipLabOptions, h: RcName): string {
  const d = hostPaths(o.dir, h).svc('maas-proxy');
  return [
    `# maas-proxy stand-in of ${h}: squid on the wildcard address, like MAAS's own template.`,
    `http_port ${PROXY_PORT}`,
    `pid_filename ${d}/squid.pid`,
    `cache_log ${d}/cache.log`,
    'access_log none',
    'cache deny all',
    'cache_mem 8 MB',
    `coredump_dir ${d}`,
    'pinger_enable off',
    'cache_effective_user proxy',
    'http_access allow all',
    'shutdown_lifetime 0 seconds',
    '',
  ].join('\n');
}

export function sshdConfigFor(o: VipLabOptions, h: RcName): string {
  const p = vipPaths(o.dir);
  return sshdPolicy({ listen: [`${addr(o, h)}:22`], hostKey: p.hostKey, pidFile: hostPaths(o.dir, h).sshdPid, authorizedKeys: p.authorizedKeys });
}

export const PG_HBA_VIP = (o: Pick<VipLabOptions, 'net'>) =>
  [
    '# VIP lab: everything on the private lab network is trusted (a lab shortcut; the fence is what is tested).',
    'local all all trust',
    `host all all 198.18.${o.net}.0/24 trust`,
    `host replication all 198.18.${o.net}.0/24 trust`,
    '',
  ].join('\n');
