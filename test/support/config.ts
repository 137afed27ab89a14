// A valid Config built in memory, for unit tests that do not exercise the loader.
import { DEFAULT_BUDGETS_MS, DEFAULT_RECOVERY, type Config, type NodeConfig } from '../../lib/config/types.ts';

export function testNode(id: number, over: Partial<NodeConfig> = {}): NodeConfig {
  return {
    id,
    hostname: `10.0.0.${11 + id}`,
    port: 5432,
    data_directory: `/var/lib/postgresql/15/main`,
    bin_dir: '/usr/lib/postgresql/15/bin',
    control: { method: 'pg_ctlcluster', version: '15', name: 'main' },
    ssh_host: `10.0.0.${11 + id}`,
    candidate: true,
    priority: 100,
    name: `pg${id}`,
    ...over,
  };
}

export function testConfig(over: Partial<Config> = {}, nodes = 3): Config {
  return {
    source: '/etc/maas-ha/maas-ha.yaml',
    cluster_name: 'test',
    nodes: Array.from({ length: nodes }, (_, i) => testNode(i)),
    ssh: { binary: '/usr/bin/ssh', user: 'postgres', port: 22, identity_file: '/k', known_hosts_file: '/kh', connect_timeout_s: 3 },
    postgres: { database: 'postgres', user: 'postgres', connect_timeout_ms: 1000, statement_timeout_ms: 2000 },
    replication: { user: 'replicator', use_slots: true, drop_slot_on_standby_loss: false, synchronous: { mode: 'off', count: 1 } },
    pcp: { bin_dir: '/usr/sbin', host: 'localhost', port: 9898, user: 'pcpadmin', pcppass_file: '/p', timeout_ms: 5000 },
    budgets_ms: { ...DEFAULT_BUDGETS_MS },
    notify: { webhooks: [] },
    state_dir: '/var/lib/maas-ha',
    fencing: { timeout_ms: 5000 },
    recovery: { ...DEFAULT_RECOVERY },
    log_level: 'info',
    ...over,
  };
}

/** A `vip` section as the loader builds it: two region controllers, MAAS 3.x debs under systemd, nftables fence. */
export function testVip(over: Partial<import('../../lib/config/types.ts').VipConfig> = {}): import('../../lib/config/types.ts').VipConfig {
  return {
    mode: 'active-passive',
    address: '10.0.0.100',
    prefix_length: 24,
    interface: 'eth0',
    region_controllers: [
      { name: 'region1', address: '10.0.0.11' },
      { name: 'region2', address: '10.0.0.12' },
    ],
    privilege: 'sudo',
    peer_timeout_ms: 3000,
    binaries: { ip: '/usr/sbin/ip', arping: '/usr/bin/arping', nft: '/usr/sbin/nft', sudo: '/usr/bin/sudo', systemctl: '/usr/bin/systemctl', snap: '/usr/bin/snap', rndc: '/usr/sbin/rndc', named_checkconf: '/usr/bin/named-checkconf' },
    fence: { method: 'nftables', users: ['maas'], ports: [5432, 9999], file: '/etc/maas-ha/fence.nft' },
    services: {
      preset: 'maas-3-deb',
      manager: 'systemd',
      list: ['maas-regiond', 'maas-apiserver', 'maas-http', 'maas-proxy', 'bind9', 'maas-temporal'].map((name) => ({ name, unit: name, needs_vip: name === 'bind9' })),
      timeout_ms: 60_000,
    },
    checks: { timeout_ms: 20_000, interval_ms: 250, api: { port: 5240, path: '/MAAS/api/2.0/version/' }, dns: { port: 53, zone: 'maas' }, proxy: { port: 8000 } },
    slave_dns: {
      port: 953,
      key_file: '/etc/maas-ha/rndc.key',
      key_name: 'rndc-key',
      zones: ['maas'],
      timeout_ms: 3000,
      primary: { address: '10.0.0.100', port: 53 },
      forwarders: { addresses: ['10.0.0.100'], port: 53, mode: 'only' },
      allow_query: ['localhost', 'localnets'],
      conf_file: '/etc/bind/named.conf.maas-ha-secondary',
      directory: '/var/cache/bind/maas-ha-secondary',
    },
    escalation_window_ms: 60_000,
    ...over,
  };
}
