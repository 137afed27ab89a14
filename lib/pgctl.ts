// What maas-ha runs on a database host over ssh to control its PostgreSQL. Everything is an argv; where a step
// needs a little shell logic (check, then act, in one round trip), the script is a constant of this file and
// every value reaches it as a positional parameter ("$1"), never pasted into the script text.

import type { NodeConfig } from './config/types.ts';
import type { Deps, RunResult } from './model/ports.ts';
import { OperationError } from './errors.ts';
import { shJoin } from './shquote.ts';

/** `sh -c SCRIPT maas-ha ARG...`: the script is ours and constant; the arguments are data. */
export const shScript = (script: string, ...args: string[]): string[] => ['sh', '-c', script, 'maas-ha', ...args];

/** The argv that starts, stops or queries this node's PostgreSQL (timeouts in seconds for pg_ctl -t). */
export function controlArgv(node: NodeConfig, action: 'start' | 'stop' | 'status' | 'promote', opts: { mode?: 'fast' | 'immediate'; waitS?: number } = {}): string[] {
  const waitS = String(opts.waitS ?? 30);
  if (node.control.method === 'pg_ctlcluster') {
    const argv = ['pg_ctlcluster', node.control.version, node.control.name, action];
    if (action === 'stop') argv.push('-m', opts.mode ?? 'fast');
    if (action !== 'status') argv.push('--', '-w', '-t', waitS);
    return argv;
  }
  const argv = [`${node.bin_dir}/pg_ctl`, '-D', node.config_directory ?? node.data_directory];
  if (action === 'start') argv.push('-l', node.control.log_file);
  if (action !== 'status') argv.push('-w', '-t', waitS);
  argv.push(action);
  if (action === 'stop') argv.push('-m', opts.mode ?? 'fast');
  return argv;
}

/**
 * Stops PostgreSQL if it runs: fast first (a clean shutdown checkpoint that standbys receive, so no rewind is
 * needed afterwards: docs/lab.md, "a clean stop"), immediate if fast does not finish in time. Prints one word.
 * "Runs" is judged from the postmaster's pid, not from `pg_ctl status`: a postmaster killed with SIGKILL stays a
 * zombie until its parent reaps it, and pg_ctl counts a zombie as a running server.
 * As a fence ($4 = the data directory), a stopped node also gets standby.signal, so that nothing — a reboot with
 * PostgreSQL's autostart, an operator's `pg_ctl start` — can bring it back writable: it comes up read-only, on
 * its old timeline, until it is rewound or rebuilt. The line before the word says whether that worked.
 */
const STOP_SCRIPT = `
pidfile="$1"; fast="$2"; immediate="$3"; fence_dir="$4"
alive() {
  pid=$(head -n 1 "$pidfile" 2>/dev/null) || return 1
  [ -n "$pid" ] || return 1
  st=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
  case "$st" in Z*|"") return 1 ;; esac
}
signal() {
  [ -n "$fence_dir" ] || return 0
  if [ -f "$fence_dir/PG_VERSION" ] && [ ! -L "$fence_dir/standby.signal" ] && : > "$fence_dir/standby.signal"; then
    echo standby-signal-written
  else
    echo standby-signal-failed
  fi
}
if ! alive; then signal; echo not-running; exit 0; fi
sh -c "$fast" >/dev/null 2>&1
if ! alive; then signal; echo stopped-fast; exit 0; fi
sh -c "$immediate" >/dev/null 2>&1
if ! alive; then signal; echo stopped-immediate; exit 0; fi
echo still-running; exit 1`;

export interface StopResult {
  outcome: 'not-running' | 'stopped-fast' | 'stopped-immediate' | 'still-running' | 'unreachable';
  detail: string;
  /** As a fence: whether standby.signal is now in the stopped node's data directory. */
  standbySignal?: boolean;
}

/** Stops the node; `fence: true` also writes standby.signal into its data directory once it is stopped. */
export async function stopNode(deps: Pick<Deps, 'ssh' | 'config'>, node: NodeConfig, timeoutMs: number, opts: { fence?: boolean } = {}): Promise<StopResult> {
  const fastS = Math.max(1, Math.floor(timeoutMs / 3000));
  const r = await deps.ssh.run(
    node.ssh_host,
    shScript(
      STOP_SCRIPT,
      `${node.data_directory}/postmaster.pid`,
      shJoin(controlArgv(node, 'stop', { mode: 'fast', waitS: fastS })),
      shJoin(controlArgv(node, 'stop', { mode: 'immediate', waitS: fastS })),
      opts.fence ? node.data_directory : '',
    ),
    { timeoutMs },
  );
  return interpretStop(r);
}

export function interpretStop(r: RunResult): StopResult {
  const lines = r.stdout.trim().split('\n');
  const word = lines.pop() ?? '';
  const signal = lines.includes('standby-signal-written') ? { standbySignal: true } : lines.includes('standby-signal-failed') ? { standbySignal: false } : {};
  if (r.exitCode === 255 || r.timedOut) return { outcome: 'unreachable', detail: r.timedOut ? `ssh timed out after ${r.durationMs} ms` : r.stderr.trim() };
  if (word === 'not-running' || word === 'stopped-fast' || word === 'stopped-immediate' || word === 'still-running') {
    return { outcome: word, detail: r.stderr.trim(), ...signal };
  }
  return { outcome: 'unreachable', detail: `unexpected answer (exit ${r.exitCode}): ${(r.stderr || r.stdout).trim()}` };
}

/**
 * Starts a node, but only as a standby: the start runs on the node's host behind a check that standby.signal is
 * in its data directory. maas-ha never starts a primary (promotion is always of a running standby), so this
 * single check is what keeps a fenced former primary from ever coming back writable through any maas-ha path
 * (follow, recovery, remote start): it has to be rebuilt as a standby first.
 */
const START_STANDBY_SCRIPT = `
if [ ! -f "$1/standby.signal" ]; then
  echo "refusing to start $1: no standby.signal (maas-ha only starts standbys; a former primary must be rewound or rebuilt as a standby first)" >&2
  exit 3
fi
shift
exec "$@"`;

/** Runs a control action over ssh and fails with the command's own words. `start` starts standbys only. */
export async function control(deps: Pick<Deps, 'ssh'>, node: NodeConfig, action: 'start' | 'promote', timeoutMs: number): Promise<void> {
  const argv = controlArgv(node, action, { waitS: Math.max(1, Math.floor(timeoutMs / 1000) - 1) });
  const remote = action === 'start' ? shScript(START_STANDBY_SCRIPT, node.data_directory, ...argv) : argv;
  const r = await deps.ssh.run(node.ssh_host, remote, { timeoutMs });
  if (r.exitCode !== 0) {
    throw new OperationError(`${action} of node ${node.id} on ${node.ssh_host} failed: ${(r.stderr || r.stdout).trim() || `exit ${r.exitCode}`}`);
  }
}

/** `pg_controldata` of a stopped node, as text (LC_ALL=C labels); undefined when it could not be read. */
export async function controlDataText(deps: Pick<Deps, 'ssh'>, node: NodeConfig, timeoutMs: number): Promise<string | undefined> {
  const r = await deps.ssh.run(node.ssh_host, [`${node.bin_dir}/pg_controldata`, '-D', node.data_directory], { timeoutMs });
  return r.exitCode === 0 ? r.stdout : undefined;
}
