// maas-ha-de-escalation: pgpool's wd_de_escalation_command. Run by pgpool's watchdog utility process on the
// pgpool that gives up the VIP (shutdown with SIGINT/SIGTERM, lost quorum, network isolation), as postgres,
// through /bin/sh -c, with no arguments, before pgpool runs if_down_cmd. pgpool waits for it (a new escalation
// elsewhere waits at most 5 s) and only logs a WARNING on a non-zero exit. After a SIGKILL or a crash it never
// runs: the next leader's escalation removes the VIP from this host instead.
// What it does: fence this region controller (nftables) or stop its services (lib/vip/escalate.ts).

import { runHook } from '../lib/hook.ts';
import { ConfigError, UsageError } from '../lib/errors.ts';
import { runDeEscalation } from '../lib/vip/escalate.ts';

await runHook(
  'de_escalation',
  process.argv.slice(2),
  (argv) => {
    if (argv.length) throw new UsageError(`wd_de_escalation_command takes no arguments, got "${argv[0]}"`);
  },
  async ({ deps, remainingMs }) => {
    const vip = deps.config.vip;
    if (!vip) throw new ConfigError(deps.config.source, ['vip: required by the watchdog hooks (see pgpool/maas-ha.example.yaml)']);
    const r = await runDeEscalation(deps, vip, remainingMs());
    return { ok: r.ok, summary: r.summary, timeline: r.timeline.events };
  },
);
