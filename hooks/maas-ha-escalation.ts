// maas-ha-escalation: pgpool's wd_escalation_command. Run by pgpool's watchdog utility process on the pgpool that
// is becoming watchdog leader (with quorum), as pgpool's OS user (postgres), through /bin/sh -c, with no
// arguments, *before* pgpool runs if_up_cmd to add the VIP. pgpool waits for it and only logs a WARNING when it
// exits non-zero ("watchdog escalation command failed with exit status: 1"); the VIP comes up anyway
// (docs/pgpool-hooks.md, "Watchdog and the VIP"). So: bounded best effort, exit 1 when anything failed, an error
// line and a notification.
// What it does: lib/vip/escalate.ts (remove the VIP from peers, lift the fence, restart the region services).

import { runHook } from '../lib/hook.ts';
import { ConfigError, UsageError } from '../lib/errors.ts';
import { runEscalation } from '../lib/vip/escalate.ts';

await runHook(
  'escalation',
  process.argv.slice(2),
  (argv) => {
    if (argv.length) throw new UsageError(`wd_escalation_command takes no arguments, got "${argv[0]}"`);
  },
  async ({ deps, remainingMs }) => {
    const vip = deps.config.vip;
    if (!vip) throw new ConfigError(deps.config.source, ['vip: required by the watchdog hooks (see pgpool/maas-ha.example.yaml)']);
    const r = await runEscalation(deps, vip, remainingMs());
    return { ok: r.ok, summary: r.summary, timeline: r.timeline.events };
  },
);
