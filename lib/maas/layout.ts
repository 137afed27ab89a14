// Where each MAAS generation keeps the files maas-ha reads or restores, and which service is the rack (cluster)
// controller, as a pure function of the flavour and a root prefix (/ on a real host, a temporary directory in
// tests, so no test ever touches /etc/maas). The locations are facts about MAAS packaging: docs/maas.md,
// "Files per MAAS generation".

import { join } from 'node:path';
import type { MaasConfig, MaasFlavour, ServiceManagerKind } from '../config/types.ts';

/** What a rack (cluster) controller's identity is made of, and how each file is read. */
export type IdentityKind =
  /** MAAS 1.x /etc/maas/maas_cluster.conf: shell assignments MAAS_URL="..." and CLUSTER_UUID="...". */
  | 'cluster-conf'
  /** MAAS 2.x/3.x rackd.conf: YAML with maas_url (one URL or a list). */
  | 'rackd-conf'
  /** The shared secret (hex), the same on every region and rack controller. Never printed. */
  | 'secret'
  /** MAAS 2.x/3.x: the controller's system id, which the region knows it by. */
  | 'maas-id';

export interface IdentityFile {
  kind: IdentityKind;
  /** Absolute, below the root prefix. */
  path: string;
  /** Relative to the root prefix: the name inside the backup archive. */
  name: string;
  secret: boolean;
}

export interface RackLayout {
  flavour: MaasFlavour;
  files: IdentityFile[];
  service: { manager: ServiceManagerKind; unit: string; restart?: string[] };
  /** MAAS 1.x only: the DHCP server template whose domain-name-servers line lists the DNS servers. */
  dhcpTemplate: string;
}

const FILES: Record<MaasFlavour, [IdentityKind, string][]> = {
  'maas-1': [
    ['cluster-conf', 'etc/maas/maas_cluster.conf'],
    ['secret', 'var/lib/maas/secret'],
  ],
  'maas-2-deb': [
    ['rackd-conf', 'etc/maas/rackd.conf'],
    ['secret', 'var/lib/maas/secret'],
    ['maas-id', 'var/lib/maas/maas_id'],
  ],
  'maas-3-deb': [
    ['rackd-conf', 'etc/maas/rackd.conf'],
    ['secret', 'var/lib/maas/secret'],
    ['maas-id', 'var/lib/maas/maas_id'],
  ],
  'maas-snap': [
    ['rackd-conf', 'var/snap/maas/current/rackd.conf'],
    ['secret', 'var/snap/maas/common/maas/secret'],
    ['maas-id', 'var/snap/maas/common/maas/maas_id'],
  ],
};

const SERVICE: Record<MaasFlavour, { manager: ServiceManagerKind; unit: string }> = {
  'maas-1': { manager: 'systemd', unit: 'maas-clusterd' },
  'maas-2-deb': { manager: 'systemd', unit: 'maas-rackd' },
  'maas-3-deb': { manager: 'systemd', unit: 'maas-rackd' },
  // The snap supervises rackd with everything else: restarting the rack means restarting the snap's services.
  'maas-snap': { manager: 'snap', unit: 'maas' },
};

export function rackLayout(maas: Pick<MaasConfig, 'flavour' | 'root' | 'rack' | 'dhcp'>): RackLayout {
  const files = FILES[maas.flavour].map(([kind, name]) => ({ kind, name, path: join(maas.root, name), secret: kind === 'secret' }));
  const dflt = SERVICE[maas.flavour];
  return {
    flavour: maas.flavour,
    files,
    service: {
      manager: maas.rack.manager ?? dflt.manager,
      unit: maas.rack.unit ?? dflt.unit,
      ...(maas.rack.restart ? { restart: maas.rack.restart } : {}),
    },
    dhcpTemplate: maas.dhcp.template ?? join(maas.root, 'etc/maas/templates/dhcp/dhcpd.conf.template'),
  };
}

/** The maas section of a configuration, or the defaults when there is none (a rack host without maas-ha.yaml). */
export function defaultMaas(over: Partial<MaasConfig> = {}): MaasConfig {
  return {
    flavour: 'maas-3-deb',
    root: '/',
    database: { name: 'maasdb' },
    dhcp: { profile: 'admin', subnets: [] },
    rack: { reconnect_timeout_ms: 60_000 },
    binaries: { tar: '/usr/bin/tar', systemctl: '/usr/bin/systemctl', snap: '/usr/bin/snap' },
    ...over,
  };
}

/** The maas settings of a configuration: its maas section, else the defaults, the flavour following the VIP's preset. */
export function maasOf(config: { maas?: MaasConfig; vip?: { services: { preset?: MaasFlavour } } } | undefined): MaasConfig {
  return config?.maas ?? defaultMaas({ flavour: config?.vip?.services.preset ?? 'maas-3-deb' });
}
