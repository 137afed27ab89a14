// Daemons known by a pid file (the labs' pgpools, PostgreSQL postmasters, guards, sshds and stand-ins): read the
// pid, tell whether it lives, stop it with a bounded wait. One place, so every stop in the labs escalates the same way.

import { readFileSync, rmSync } from 'node:fs';

/** Whether a process with this pid exists (EPERM: it does, but is not ours to signal). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The live pid a pid file names, else undefined (no file, garbage, or the process is gone). pgpool's pid file
 * ends with a NUL byte (docs/lab.md, "pgpool's pid file ends with a NUL byte"); PostgreSQL's has the pid on its
 * first line.
 */
export function readPid(path: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    // No file, or it went between two looks: a daemon removes its own pid file as it exits.
    return undefined;
  }
  const pid = Number(text.replace(/\0/g, '').split('\n')[0]?.trim());
  return Number.isInteger(pid) && pid > 1 && alive(pid) ? pid : undefined;
}

/** Sends the signal; false when there is no such process (or group) to receive it. */
function send(target: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(target, signal);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL of the process group the pid leads (all of a pgpool's children with it), else of the process alone. */
export function killGroup(pid: number): void {
  if (!send(-pid, 'SIGKILL')) send(pid, 'SIGKILL');
}

export interface StopOptions {
  /** The polite signal: SIGTERM, SIGINT (pgpool's fast shutdown), SIGQUIT (PostgreSQL's immediate shutdown). */
  signal: NodeJS.Signals;
  /** How long the process may take to go before SIGKILL. */
  graceMs: number;
  everyMs?: number;
  /** SIGKILL the whole process group, not only the process. */
  group?: boolean;
  /** Remove the pid file afterwards (for daemons that do not remove their own). */
  removeFile?: boolean;
}

/**
 * Stops the process the pid file names: the signal, then SIGKILL if it has not gone within the grace. "Gone" is
 * read from the pid file (the process ended, or the file now names another one), so a daemon that removes its
 * own file counts as soon as it does.
 */
export async function stopByPidFile(file: string, o: StopOptions): Promise<'not-running' | 'stopped' | 'killed'> {
  const pid = readPid(file);
  let outcome: 'not-running' | 'stopped' | 'killed' = 'not-running';
  if (pid) {
    send(pid, o.signal);
    const deadline = Date.now() + o.graceMs;
    while (readPid(file) === pid && Date.now() < deadline) await new Promise((r) => setTimeout(r, o.everyMs ?? 100));
    outcome = readPid(file) === pid ? 'killed' : 'stopped';
    if (outcome === 'killed') {
      if (o.group) killGroup(pid);
      else send(pid, 'SIGKILL');
    }
  }
  if (o.removeFile) rmSync(file, { force: true });
  return outcome;
}
