// The two small executables pgpool's online recovery needs inside every data directory. The pgpool_recovery
// extension runs "$PGDATA/recovery_1st_stage" and "$PGDATA/pgpool_remote_start" of the *current primary*
// (docs/pgpool-hooks.md, "Online recovery"), so every node that can become primary needs them; written into one
// data directory before the others are cloned from it, pg_basebackup and pg_rewind carry them everywhere
// (docs/lab.md, "Recovery wrappers live in every data directory"); a cluster maas-ha did not build needs them
// installed in every data directory (install.sh --database-host on each database host).
//
// They name the configuration file and the node binary explicitly: the scripts inherit the postmaster's
// environment, and a postmaster started over ssh (pg_ctl, pg_ctlcluster) has the ssh session's, without
// MAAS_HA_CONFIG and with a PATH that may not reach node.

import { messageOf, OperationError, UsageError } from '../errors.ts';
import type { SafeFiles } from '../model/ports.ts';
import { shQuote } from '../shquote.ts';

/** File name in the data directory (fixed by pgpool, or recovery_1st_stage_command) → bundled executable. */
export const RECOVERY_WRAPPERS = {
  recovery_1st_stage: 'maas-ha-recovery-1st-stage',
  pgpool_remote_start: 'maas-ha-remote-start',
} as const;

export interface WrapperOptions {
  /** The maas-ha configuration the hooks read. */
  configPath: string;
  /** Directory of the bundled executables (dist/bin of an install). */
  binDir: string;
  /** The node binary (>= 20). */
  nodePath: string;
}

/** Pure: the two wrapper files, as name → text. */
export function recoveryWrappers(o: WrapperOptions): { name: keyof typeof RECOVERY_WRAPPERS; text: string }[] {
  for (const [what, p] of [['configuration', o.configPath], ['bin directory', o.binDir], ['node binary', o.nodePath]] as const) {
    if (!p.startsWith('/')) throw new OperationError(`recovery wrappers: the ${what} must be an absolute path, got "${p}"`);
  }
  return (Object.keys(RECOVERY_WRAPPERS) as (keyof typeof RECOVERY_WRAPPERS)[]).map((name) => ({
    name,
    text: [
      '#!/bin/sh',
      `# Written by maas-ha. pgpool's online recovery runs this file: the pgpool_recovery extension in the primary's`,
      `# PostgreSQL executes "$PGDATA/${name}" as the PostgreSQL user. It names the configuration and node itself`,
      `# because a postmaster started over ssh does not pass MAAS_HA_CONFIG on. pg_basebackup and pg_rewind copy it`,
      `# to every node, which is what pgpool needs. Rewrite it with: maas-ha recover install-scripts DATADIR`,
      `MAAS_HA_CONFIG=${shQuote(o.configPath)}`,
      'export MAAS_HA_CONFIG',
      `exec ${shQuote(o.nodePath)} ${shQuote(`${o.binDir.replace(/\/+$/, '')}/${RECOVERY_WRAPPERS[name]}.mjs`)} "$@"`,
      '',
    ].join('\n'),
  }));
}

/**
 * Writes both wrappers into a data directory on this host, owned like the directory, mode 0700; says per file
 * "written" or "unchanged", so re-running the installer changes nothing. Root runs this (install.sh), and the data
 * directory is postgres's: the writes go through lib/adapters/safe-write.ts, which writes there as the directory's
 * owner, never as root (a link postgres planted at any name must not make root overwrite a file of its choosing).
 */
export async function installWrappers(
  dataDir: string,
  o: WrapperOptions,
  files: SafeFiles,
): Promise<{ name: string; outcome: 'written' | 'unchanged' }[]> {
  const dir = dataDir.replace(/\/+$/, '') || '/';
  if (!files.isFile(`${dir}/PG_VERSION`)) {
    throw new UsageError(`${dir} is not a PostgreSQL data directory (it has no PG_VERSION): give the data directory of this host's PostgreSQL`);
  }
  const done: { name: string; outcome: 'written' | 'unchanged' }[] = [];
  for (const w of recoveryWrappers(o)) {
    try {
      done.push({ name: w.name, outcome: files.write(`${dir}/${w.name}`, w.text, { mode: 0o700 }) });
    } catch (err) {
      throw new OperationError(`writing ${dir}/${w.name} failed: ${messageOf(err)}`, { cause: err });
    }
  }
  return done;
}
