// The service manager abstraction: which argv restarts or stops a region service under systemd, the snap, or the
// explicit commands a site (or the lab, which has no systemd) configures. Pure argv here; ./escalate.ts runs them
// in parallel, each with its own timeout, because the region services do not wait for each other to start
// (regiond retries its database and peers by itself), and a serial restart would add up their start times.

import type { ServiceSpec, VipConfig } from '../config/types.ts';
import type { Deps } from '../model/ports.ts';
import { asRoot, failure } from './host.ts';

export type ServiceAction = 'restart' | 'stop';

/**
 * The services a VIP move restarts: every one in active-passive; none in active-active, where each region
 * controller runs them all the time and those that answer on the VIP are bound to it ahead of time
 * (docs/maas.md, "Active-passive or active-active").
 */
export const restartedOnMove = (vip: VipConfig): ServiceSpec[] => (vip.mode === 'active-active' ? [] : vip.services.list);

export function serviceArgv(vip: VipConfig, svc: ServiceSpec, action: ServiceAction): string[] {
  switch (vip.services.manager) {
    case 'systemd':
      return asRoot(vip, [vip.binaries.systemctl, action, svc.unit]);
    case 'snap':
      return asRoot(vip, [vip.binaries.snap, action, svc.unit]);
    case 'commands': {
      const argv = action === 'restart' ? svc.restart : svc.stop;
      // The loader requires these for the commands manager; reaching here without one is a bug, said plainly.
      if (!argv) throw new Error(`service ${svc.name}: no ${action} command configured`);
      return asRoot(vip, argv);
    }
  }
}

export interface ServiceResult {
  service: string;
  action: ServiceAction;
  ok: boolean;
  durationMs: number;
  detail: string;
}

/** Runs `action` on every service at once; each is bounded by vip.services.timeout_ms (or what is left). */
export async function runServices(
  deps: Pick<Deps, 'shell'>,
  vip: VipConfig,
  services: readonly ServiceSpec[],
  action: ServiceAction,
  timeoutMs = vip.services.timeout_ms,
): Promise<ServiceResult[]> {
  return Promise.all(
    services.map(async (svc) => {
      const r = await deps.shell.run(serviceArgv(vip, svc, action), { timeoutMs: Math.max(1, Math.min(timeoutMs, vip.services.timeout_ms)) });
      return { service: svc.name, action, ok: r.exitCode === 0, durationMs: r.durationMs, detail: r.exitCode === 0 ? `${action}ed` : failure(r) };
    }),
  );
}
