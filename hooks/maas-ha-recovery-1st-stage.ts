// maas-ha-recovery-1st-stage: pgpool's online recovery, first stage. Not run by pgpool: pcp_recovery_node makes
// pgpool call `SELECT pgpool_recovery(...)` on the primary's template1, and the pgpool_recovery extension runs
// "$PGDATA/recovery_1st_stage" (a wrapper maas-ha places in every data directory, which execs this) with
// system(), inside that backend: on the primary's host, as the PostgreSQL user (postgres), cwd = the primary's
// data directory, umask 077, stdout/stderr into the PostgreSQL server log. Arguments: 4 to 7 positional values
// by pgpool version (primary data dir, target host, target data dir, primary port[, target id, target port,
// primary host]). A non-zero exit makes the SQL call fail and pgpool abort the recovery ("pgpool_recovery
// failed"); the reason is our last line in that server log.

import { runHook } from '../lib/hook.ts';
import { parseRecoveryArgs } from '../lib/pgpool/args.ts';
import { runFirstStage } from '../lib/recovery/hooks.ts';

await runHook('recovery_1st_stage', process.argv.slice(2), parseRecoveryArgs, async ({ deps, remainingMs }, args) =>
  runFirstStage(deps, args, remainingMs),
);
