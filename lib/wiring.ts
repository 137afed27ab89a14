// Builds the real effect set from a validated config. Tests build their own `Deps` from fakes instead.

import type { Config } from './config/types.ts';
import type { Deps, Log } from './model/ports.ts';
import { systemClock } from './adapters/clock.ts';
import { createShell } from './adapters/exec.ts';
import { createNet } from './adapters/net.ts';
import { createNotify } from './adapters/notify.ts';
import { createPcp } from './adapters/pcp.ts';
import { createPg } from './adapters/pg.ts';
import { createSsh } from './adapters/ssh.ts';
import { createStateStore } from './adapters/state.ts';

export function createDeps(config: Config, log: Log): Deps {
  const shell = createShell();
  return {
    config,
    // Markers and journal entries of another cluster are left out, and said so.
    state: createStateStore(config.state_dir, systemClock, { cluster: config.cluster_name, warn: (m) => log.warn({ step: 'state' }, m) }),
    log,
    shell,
    ssh: createSsh(config.ssh, shell),
    pg: createPg(config.postgres),
    pcp: createPcp(config.pcp, shell),
    notify: createNotify(config.notify.webhooks, log),
    clock: systemClock,
    net: createNet(),
  };
}
