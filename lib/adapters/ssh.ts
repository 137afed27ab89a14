// ssh to a database host as the configured user (postgres), the "user equivalence" pgpool's hooks rely on.
// Host keys are checked strictly against maas-ha's own known_hosts file: no trust on first use, no prompts
// (BatchMode), and a connect timeout so a dead host costs seconds, not TCP's minutes. The remote command is
// one string that the remote sh parses again, so it is built only by shJoin (lib/shquote.ts).

import type { SshConfig } from '../config/types.ts';
import type { RunOptions, RunResult, Shell, Ssh } from '../model/ports.ts';
import { shJoin } from '../shquote.ts';

export function sshArgv(cfg: SshConfig, host: string, remote: readonly string[]): string[] {
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
    '--',
    host,
    shJoin(remote),
  ];
}

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

export function createSsh(cfg: SshConfig, shell: Shell): Ssh {
  return {
    run(host: string, argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      // The runner gives ssh /dev/null as stdin unless input is given: a remote command never waits on it.
      return shell.run(sshArgv(cfg, host, remoteBounded(argv, opts.timeoutMs)), opts);
    },
  };
}
