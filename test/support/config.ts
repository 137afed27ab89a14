// A valid Config built in memory, for unit tests that do not exercise the loader.
import { DEFAULT_BUDGETS_MS, type Config, type NodeConfig } from '../../lib/config/types.ts';

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
    log_level: 'info',
    ...over,
  };
}
