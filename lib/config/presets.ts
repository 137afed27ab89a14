// The MAAS region services per MAAS generation, and where their health checks listen. A preset is only a default:
// `vip.services.list` replaces it with a plain list. Which services need the VIP comes from how they bind: bind9
// binds each address separately and only notices a new one on `rndc reconfig` or a restart (MAAS writes no
// `listen-on`, so it would otherwise only pick the VIP up at its hourly interface scan); the HTTP front ends and
// squid listen on the wildcard address and can be restarted before the VIP exists (in canonical/maas: the bind9
// options template has no listen-on; the maas-http nginx and maas-proxy squid templates listen on every address).

import type { ServiceManagerKind, ServicePreset, ServiceSpec, VipConfig } from './types.ts';

export interface Preset {
  manager: ServiceManagerKind;
  services: ServiceSpec[];
  checks: Required<Pick<VipConfig['checks'], 'api' | 'dns' | 'proxy'>>;
}

const svc = (name: string, needs_vip = false, unit = name): ServiceSpec => ({ name, unit, needs_vip });

/** Checks of MAAS 2.x and later: regiond's API on 5240, bind9 on 53, maas-proxy (squid) on 8000. */
const MODERN_CHECKS = {
  api: { port: 5240, path: '/MAAS/api/2.0/version/' },
  dns: { port: 53, zone: 'maas' },
  proxy: { port: 8000 },
};

export const PRESETS: Record<ServicePreset, Preset> = {
  // MAAS 1.x: the region is a WSGI app inside apache2 (port 80), maas-proxy is squid-deb-proxy, and maas-dns is a
  // bind9 the region configures to listen on port 5353.
  'maas-1': {
    manager: 'systemd',
    services: [svc('apache2'), svc('maas-proxy', false, 'squid-deb-proxy'), svc('maas-dns', true, 'bind9')],
    checks: { api: { port: 80, path: '/MAAS/api/1.0/version/' }, dns: { port: 5353, zone: 'maas' }, proxy: { port: 8000 } },
  },
  // MAAS 2.x from debs: regiond serves the API itself; apache2 only redirects :80 to :5240.
  'maas-2-deb': {
    manager: 'systemd',
    services: [svc('maas-regiond'), svc('apache2'), svc('maas-proxy'), svc('bind9', true)],
    checks: MODERN_CHECKS,
  },
  // MAAS 3.x from debs: nginx (maas-http) fronts regiond and the apiserver; temporal from 3.5 on.
  'maas-3-deb': {
    manager: 'systemd',
    services: [svc('maas-regiond'), svc('maas-apiserver'), svc('maas-http'), svc('maas-proxy'), svc('bind9', true), svc('maas-temporal')],
    checks: MODERN_CHECKS,
  },
  // The snap runs every region service under one pebble supervisor, bind9 included: one restart, after the VIP.
  'maas-snap': {
    manager: 'snap',
    services: [svc('maas', true)],
    checks: MODERN_CHECKS,
  },
};
