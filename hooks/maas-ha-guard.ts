// maas-ha-guard: the split-brain guard of one PostgreSQL node, run ON its database host as the PostgreSQL owner
// (postgres), never by pgpool. Three ways it runs:
//   - systemd ExecStartPre of postgresql@<version>-<cluster>.service (`start-check`): a node whose cluster has a
//     primary at least as new gets standby.signal before it starts, so a reboot never brings back a fenced primary;
//   - maas-ha-guard.service (`watch`): a running primary that sees a peer on a newer timeline writes standby.signal
//     and stops itself within 5 s (a partition that hid it from pgpool has healed);
//   - by hand (`check`, `--dry-run`, `--json`), and in the lab (`maas-ha lab up` starts one `watch` per node).
// install.sh --database-host writes the units (lib/guard/units.ts). Exit codes: 0 done, 1 an action it decided on
// failed (for start-check this stops the start: the node would otherwise come up as a primary), 2 usage/config.

import { runGuardCli } from '../lib/guard/cli.ts';

process.exitCode = await runGuardCli(process.argv.slice(2));
