// A TypeScript copy of how pgpool-II 4.3.5 turns a hook setting into a shell command line, so tests can run our
// pgpool/hooks.conf lines exactly as pgpool would, without a pgpool:
// - trigger_failover_command() in src/main/pgpool_main.c (failover, follow_primary, failback);
// - pgpool_recovery() and pgpool_remote_start() in src/sql/pgpool-recovery/pgpool-recovery.c (online recovery).
// Facts copied from the C code (see docs/pgpool-hooks.md, "Placeholders" and "Online recovery"): values are pasted
// verbatim, unquoted; ids and ports are printed with "%d"; %H %r %R (%N %S) of a node id outside 0..NUM_BACKENDS-1
// are the two characters `""`; `%%` is a `%`; any other `%x` is dropped with both characters; a trailing lone `%`
// is dropped.

export interface Backend {
  /** backend_hostnameN */
  hostname: string;
  /** backend_portN */
  port: number;
  /** backend_data_directoryN (may be empty: not set) */
  dataDir: string;
}

export interface HookEvent {
  /** backend_* settings; the index is the node id. */
  backends: readonly Backend[];
  /** %d: the failed / processed / attached node. */
  node: number;
  /** %m: new main node (failover, failback) or new primary (follow); -1 if none. */
  newMain: number;
  /** %M */
  oldMain: number;
  /** %P; -1 if none. */
  oldPrimary: number;
}

/** pool_get_node_info(): NULL outside 0..NUM_BACKENDS-1. */
function nodeInfo(e: HookEvent, id: number): Backend | undefined {
  return id < 0 || id >= e.backends.length ? undefined : e.backends[id];
}

/** trigger_failover_command(): the text pgpool hands to system(). Throws where pgpool returns -1 without running. */
export function expandHookCommand(commandLine: string, e: HookEvent): string {
  const info = nodeInfo(e, e.node);
  if (!info) throw new Error(`pgpool would not run the command: node ${e.node} is not a backend`);
  const newMain = nodeInfo(e, e.newMain);
  const oldPrimary = nodeInfo(e, e.oldPrimary);
  const NONE = '""';
  let out = '';
  for (let i = 0; i < commandLine.length; i++) {
    const c = commandLine[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const next = commandLine[i + 1];
    if (next === undefined) break; // trailing lone %: dropped
    i++;
    switch (next) {
      case 'p': out += String(info.port); break;
      case 'D': out += info.dataDir; break;
      case 'd': out += String(e.node); break;
      case 'h': out += info.hostname; break;
      case 'H': out += newMain ? newMain.hostname : NONE; break;
      case 'm': out += String(e.newMain); break;
      case 'r': out += newMain ? String(newMain.port) : NONE; break;
      case 'R': out += newMain ? newMain.dataDir : NONE; break;
      case 'M': out += String(e.oldMain); break;
      case 'P': out += String(e.oldPrimary); break;
      case 'N': out += oldPrimary ? oldPrimary.hostname : NONE; break;
      case 'S': out += oldPrimary ? String(oldPrimary.port) : NONE; break;
      case '%': out += '%'; break;
      default: break; // unknown %x: both characters dropped
    }
  }
  return out;
}

export interface RecoveryCall {
  /** DataDir of the primary's PostgreSQL, where the script lives. */
  primaryDataDir: string;
  /** recovery_1st_stage_command */
  script: string;
  /** after pgpool's replacement of an empty or /-leading backend_hostname by localhost */
  remoteHost: string;
  remoteDataDir: string;
  primaryPort: string;
  remoteNode: number;
  remotePort: string;
  primaryHost: string;
}

/**
 * pgpool_recovery(): the command line for the extension's 3 (pre-3.4), 4 (3.4-3.7), 5 (4.0), 6 (4.1-4.2) or
 * 7 (4.3+) SQL arguments. The script gets as many arguments: the SQL call's first one (the script name) is
 * replaced by DataDir as $1.
 */
export function recoveryCommandLine(r: RecoveryCall, sqlArgs: 3 | 4 | 5 | 6 | 7): string {
  const head = `"${r.primaryDataDir}/${r.script}" "${r.primaryDataDir}" "${r.remoteHost}" "${r.remoteDataDir}"`;
  switch (sqlArgs) {
    case 7: return `${head} "${r.primaryPort}" ${r.remoteNode} "${r.remotePort}" "${r.primaryHost}"`;
    case 6: return `${head} "${r.primaryPort}" ${r.remoteNode} "${r.remotePort}"`;
    case 5: return `${head} "${r.primaryPort}" ${r.remoteNode}`;
    case 4: return `${head} "${r.primaryPort}"`;
    case 3: return head;
  }
}

/** pgpool_remote_start(): `%s/%s %s %s`, nothing quoted. */
export function remoteStartCommandLine(primaryDataDir: string, remoteHost: string, remoteDataDir: string): string {
  return `${primaryDataDir}/pgpool_remote_start ${remoteHost} ${remoteDataDir}`;
}
