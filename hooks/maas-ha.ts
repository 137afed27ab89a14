// maas-ha: the operator's CLI. Run by a person (root or postgres) on a pgpool/database host, never by pgpool.
// Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration error. Human output on stdout; --json for
// scripts; logs (JSON lines) on stderr.

import { runCli } from '../lib/cli/main.ts';

process.exitCode = await runCli(process.argv.slice(2), import.meta.url);
