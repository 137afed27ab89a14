// maas-ha-remote-start: pgpool's online recovery, starting the rebuilt node. Not run by pgpool: after the first
// stage, pgpool calls `SELECT pgpool_remote_start(host, datadir)` on the primary, and the pgpool_recovery
// extension runs "$PGDATA/pgpool_remote_start <host> <datadir>" (a wrapper maas-ha places in every data
// directory, which execs this): on the primary's host, as the PostgreSQL user, inside that backend, output into
// the PostgreSQL server log. pgpool passes only the target's host and data directory (unquoted); the rest comes
// from maas-ha's configuration. A non-zero exit aborts the recovery; on success pgpool polls the node (up to
// recovery_timeout) and attaches it, which runs failback_command.

import { runHook } from '../lib/hook.ts';
import { parseRemoteStartArgs } from '../lib/pgpool/args.ts';
import { runRemoteStart } from '../lib/recovery/hooks.ts';

await runHook('remote_start', process.argv.slice(2), parseRemoteStartArgs, async ({ deps, remainingMs }, args) =>
  runRemoteStart(deps, args, remainingMs),
);
