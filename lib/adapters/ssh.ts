// ssh to a database host as the configured user (postgres), the "user equivalence" pgpool's hooks rely on.
// Host keys are checked strictly against maas-ha's own known_hosts file: no trust on first use, no prompts
// (BatchMode), and a connect timeout so a dead host costs seconds, not TCP's minutes. The remote command is
// one string that the remote sh parses again, so it is built only by shJoin (lib/shquote.ts).
//
// One login per host per process: a rebuild runs seven or eight commands on the target's host, and each login
// costs about 0.3 s on the machines this was measured on (key exchange, sshd's re-exec, PAM), more than most of
// the commands. So the first command to a host opens a master connection (OpenSSH's ControlMaster) and every
// later one runs as a session over it. The master's socket is in a directory only this process's user can enter,
// made fresh per process; the master exits by itself CONTROL_PERSIST_S seconds after its last session, so nothing
// outlives a hook by more than that. A master that cannot be opened because the host does not answer is the
// answer a direct login would have given (nothing ran there); any other trouble with the master (a refused
// session, an sshd with multiplexing off) falls back to a login of the command's own, and a failed session drops
// the master, so a host that went silent costs the next command a fresh connect timeout, not a stale connection.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SshConfig } from '../config/types.ts';
import type { RunOptions, RunResult, Shell, Ssh } from '../model/ports.ts';
import { shJoin } from '../shquote.ts';

/** Seconds a master connection stays after its last session. */
export const CONTROL_PERSIST_S = 5;

/** What a master's login may take beyond the TCP connect (ConnectTimeout covers only that): key exchange, auth, a busy host. */
export const LOGIN_SLACK_MS = 10_000;

function sshOptions(cfg: SshConfig): string[] {
  return [
    cfg.binary,
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${cfg.known_hosts_file}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', `ConnectTimeout=${cfg.connect_timeout_s}`,
    '-o', 'ServerAliveInterval=5',
    '-o', 'ServerAliveCountMax=2',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'LogLevel=ERROR',
    '-F', '/dev/null',
    '-i', cfg.identity_file,
    '-p', String(cfg.port),
    '-l', cfg.user,
  ];
}

/** A login of its own; with `controlPath`, a session over that master connection instead (no master made here). */
export function sshArgv(cfg: SshConfig, host: string, remote: readonly string[], controlPath?: string): string[] {
  const mux = controlPath ? ['-o', 'ControlMaster=no', '-o', `ControlPath=${controlPath}`] : [];
  return [...sshOptions(cfg), ...mux, '--', host, shJoin(remote)];
}

/** The master connection: no command (-N), in the background once logged in (-f), gone CONTROL_PERSIST_S after its last session. */
export function masterArgv(cfg: SshConfig, host: string, controlPath: string): string[] {
  return [...sshOptions(cfg), '-o', 'ControlMaster=yes', '-o', `ControlPath=${controlPath}`, '-o', `ControlPersist=${CONTROL_PERSIST_S}`, '-N', '-f', '--', host];
}

/** What an OpenSSH client says when the master cannot carry a session (then the command logs in on its own). */
const MUX_TROUBLE = /mux_client|control socket|ControlSocket|Session open refused|administratively prohibited|multiplex/i;

/** Seconds the remote side may run past the caller's deadline before its bound fires (connect time, clock skew). */
export const REMOTE_SLACK_S = 2;

/**
 * The remote side's own bound: coreutils timeout(1) around every remote command, TERM a little after the caller's
 * deadline and KILL 5 s later, to the command's whole process group. Our ssh giving up does not stop what it
 * started (without a terminal, sshd sends no hang-up), so without this a hung `sync`, `du` or `sudo` would run on
 * there. The scripts bound their own steps inside this, with room for their cleanup, so it only catches what they
 * could not.
 */
export function remoteBounded(remote: readonly string[], timeoutMs: number): string[] {
  return ['timeout', '-k', '5', String(Math.ceil(Math.max(1, timeoutMs) / 1000) + REMOTE_SLACK_S), ...remote];
}

export interface SshOptions {
  /** One master connection per host (default true); false: every command logs in on its own. */
  reuse?: boolean;
}

/**
 * The socket directories this process made, removed as it exits: one exit listener for all of them, since a
 * long-running tool (the soak, the drill) builds a fresh Deps, and so an Ssh, per cycle.
 */
const socketDirs = new Set<string>();
function removeAtExit(dir: string): void {
  if (socketDirs.size === 0) process.once('exit', () => socketDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  socketDirs.add(dir);
}

export function createSsh(cfg: SshConfig, shell: Shell, o: SshOptions = {}): Ssh {
  // The runner gives ssh /dev/null as stdin unless input is given: a remote command never waits on it.
  const direct = (host: string, argv: readonly string[], opts: RunOptions) => shell.run(sshArgv(cfg, host, remoteBounded(argv, opts.timeoutMs)), opts);
  if (o.reuse === false) return { run: direct };

  let dir: string | undefined;
  let made = 0;
  /** host → the master's socket, or the failed attempt's result (dropped once seen, so the next command tries again). */
  const masters = new Map<string, Promise<string | RunResult>>();
  const socketDir = () => {
    if (!dir) {
      // mkdtemp: a new directory with an unguessable name, mode 0700, owned by whoever runs this.
      const fresh = mkdtempSync(join(tmpdir(), 'maas-ha-ssh-'));
      removeAtExit(fresh);
      dir = fresh;
    }
    return dir;
  };
  const master = (host: string, timeoutMs: number): Promise<string | RunResult | undefined> => {
    let m = masters.get(host);
    if (!m) {
      let where: string;
      try {
        where = socketDir();
      } catch {
        // No private directory for the sockets (TMPDIR unwritable): every command logs in on its own.
        return Promise.resolve(undefined);
      }
      const path = join(where, `m${made++}`);
      // The master's own bound: a connect timeout and the login, never more than the command that asked has.
      const bound = Math.min(timeoutMs, cfg.connect_timeout_s * 1000 + LOGIN_SLACK_MS);
      m = shell.run(masterArgv(cfg, host, path), { timeoutMs: Math.max(1000, bound) }).then((r) => (r.exitCode === 0 && !r.timedOut ? path : r));
      masters.set(host, m);
    }
    return m;
  };
  return {
    async run(host: string, argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      const started = Date.now();
      const pending = master(host, opts.timeoutMs);
      const m = await pending;
      if (m === undefined) return direct(host, argv, opts);
      // Forget this master (only this one: another command may have opened a newer one meanwhile).
      const drop = () => masters.get(host) === pending && masters.delete(host);
      const remote = remoteBounded(argv, opts.timeoutMs);
      const left = () => opts.timeoutMs - (Date.now() - started);
      const alone = () => direct(host, argv, { ...opts, timeoutMs: Math.max(1000, left()) });
      if (typeof m !== 'string') {
        drop();
        // The host did not let us in: that is what this command's own login would have met, and nothing ran there.
        if (m.timedOut || m.exitCode === 255) return { ...m, argv: sshArgv(cfg, host, remote) };
        return alone();
      }
      const budget = left();
      if (budget <= 0) return { argv: sshArgv(cfg, host, remote, m), exitCode: null, signal: 'SIGKILL', stdout: '', stderr: '', durationMs: Date.now() - started, timedOut: true };
      const r = await shell.run(sshArgv(cfg, host, remote, m), { ...opts, timeoutMs: budget });
      if (r.exitCode === 255 || r.timedOut) drop();
      // The master could not carry it, and nothing ran: the command logs in on its own.
      if (r.exitCode === 255 && MUX_TROUBLE.test(r.stderr) && !r.stdout) return alone();
      return r;
    },
  };
}
