// maas-ha-follow-primary: pgpool's follow_primary_command (follow_master_command before 4.2). Run by pgpool's
// follow child on the leader, as postgres, through /bin/sh -c, once per node other than the new primary (the dead
// old primary included), one node after another. pgpool ignores the exit code and re-attaches nothing by itself
// (docs/pgpool-hooks.md, "follow_primary_command"): this hook attaches the node once it streams the new primary's
// timeline.

import { runFollow } from '../lib/failover/follow.ts';
import { Timeline } from '../lib/failover/timeline.ts';
import { runHook } from '../lib/hook.ts';
import { parseEventArgs } from '../lib/pgpool/args.ts';

await runHook(
  'follow_primary',
  process.argv.slice(2),
  (argv) => parseEventArgs(argv, 'follow_primary'),
  async ({ deps, remainingMs }, args) => {
    const tl = new Timeline(deps.clock);
    const r = await runFollow(deps, { node: args.node.id, newPrimary: args.newPrimary.id }, remainingMs);
    tl.add(r.ok ? 'standby_following' : 'standby_not_following', { node: args.node.id, summary: r.summary });
    return { ok: r.ok, summary: r.summary, timeline: tl.events };
  },
  // Not the failover lock: a failover of the new primary must never wait behind a minutes-long rewind here.
  { lock: 'follow_primary' },
);
