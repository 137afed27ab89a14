// maas-ha-failback: pgpool's failback_command. Run by the pgpool main process (leader), as postgres, through
// /bin/sh -c, when a node is attached again (pcp_attach_node, online recovery, auto_failback). pgpool ignores the
// exit code. maas-ha restores synchronous replication here once enough standbys stream again.

import { runFailback } from '../lib/failover/failback.ts';
import { runHook } from '../lib/hook.ts';
import { parseEventArgs } from '../lib/pgpool/args.ts';

await runHook(
  'failback',
  process.argv.slice(2),
  (argv) => parseEventArgs(argv, 'failback'),
  async ({ deps }, args) => runFailback(deps, args.attachedNode.id),
);
