// The running pgpool, as /proc shows it: the preflight checks the pgpool.conf that pgpool really read (`-f FILE`),
// with that pgpool's binary and OS user, instead of assuming Debian's paths.

import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';

export interface RunningPgpool {
  pid: number;
  exe: string;
  /** The -f / --config-file argument, made absolute against the process's cwd; undefined: pgpool's default. */
  conf?: string;
  user?: string;
}

/** Pure: pgpool's argv (NUL-separated /proc cmdline) → its configuration file argument. */
export function pgpoolConfArg(argv: string[], cwd: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = a === '-f' || a === '--config-file' ? argv[i + 1] : a.startsWith('--config-file=') ? a.slice(14) : a.startsWith('-f') && a.length > 2 ? a.slice(2) : undefined;
    if (v !== undefined) return v.startsWith('/') ? v : `${cwd.replace(/\/$/, '')}/${v}`;
  }
  return undefined;
}

/** The oldest pgpool process (its main process) this host runs, if any. */
export function runningPgpool(): RunningPgpool | undefined {
  let found: RunningPgpool | undefined;
  let pids: number[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).sort((a, b) => a - b);
  } catch {
    return undefined;
  }
  for (const pid of pids) {
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      if (!argv[0] || !/(^|\/)pgpool$/.test(argv[0])) continue;
      const exe = readlinkSync(`/proc/${pid}/exe`);
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      const uid = statSync(`/proc/${pid}`).uid;
      const user = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid))?.split(':')[0];
      found = { pid, exe, conf: pgpoolConfArg(argv, cwd), user: user ?? (uid === process.getuid?.() ? userInfo().username : undefined) };
      break;
    } catch {
      // A process that ended meanwhile, or one we may not read.
    }
  }
  return found;
}
