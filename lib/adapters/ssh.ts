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

export function createSsh(cfg: SshConfig, shell: Shell): Ssh {
  return {
    run(host: string, argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      // The runner gives ssh /dev/null as stdin unless input is given: a remote command never waits on it.
      return shell.run(sshArgv(cfg, host, argv), opts);
    },
  };
}
