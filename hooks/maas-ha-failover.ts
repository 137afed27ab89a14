// maas-ha-failover: pgpool's failover_command. Run by the pgpool main process (the watchdog leader), as the
// user pgpool runs as (postgres), through /bin/sh -c, cwd /, stdin /dev/null, once per failed node. pgpool
// waits for it with no time limit while no client can reach the primary, and ignores its exit code
// (docs/pgpool-hooks.md, "failover_command"): the budget and the log line are what keep it honest.

import { runFailover } from '../lib/failover/failover.ts';
import { runHook } from '../lib/hook.ts';
import { parseEventArgs } from '../lib/pgpool/args.ts';

await runHook(
  'failover',
  process.argv.slice(2),
  (argv) => parseEventArgs(argv, 'failover'),
  async ({ deps, remainingMs, runId }, args) => {
    const r = await runFailover(
      deps,
      { failedNode: args.failedNode.id, oldPrimary: args.oldPrimary?.id, newMain: args.newMain?.id, runId },
      remainingMs,
    );
    return { ok: r.ok, summary: r.summary, timeline: r.timeline.events };
  },
  { lock: 'failover', queriesPostgres: true },
);
