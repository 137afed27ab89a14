// The command runner: the only place maas-ha starts a local process. Commands are argv arrays; zx quotes every
// element before its shell sees it, so no value is ever interpreted by a shell. Every call has a timeout.
//
// The deadline is enforced here, not by zx: zx's kill first lists the process tree with `ps` and only then
// signals, which under load lets a timed-out command run on for a second or more. Instead each command runs in
// its own process group (setsid), and at the deadline the whole group gets SIGKILL at once. Groups still running
// when the hook exits (its budget guard calls process.exit) are killed too: a hook must never hang pgpool, nor
// leave an ssh or pg_rewind running behind it.

import { spawn, type ChildProcess } from 'node:child_process';
import type { RunOptions, RunResult, Shell } from '../model/ports.ts';

export { CommandError, checked } from '../model/ports.ts';

type Zx = typeof import('zx/core');
let zx: Promise<Zx> | undefined;
// zx is loaded on the first command, not at start-up: a hook whose work is a no-op never pays for it.
const loadZx = () => (zx ??= import('zx/core'));

const running = new Set<number>();
let exitHook = false;

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function createShell(): Shell {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => running.forEach(killGroup));
  }
  return {
    async run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      if (argv.length === 0) throw new Error('run: empty argv');
      if (!(opts.timeoutMs > 0)) throw new Error(`run ${argv[0]}: a positive timeoutMs is required`);
      const { $ } = await loadZx();
      const started = performance.now();
      const env = opts.env ? { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env } : process.env;
      let child: ChildProcess | undefined;
      let timedOut = false;
      let timer: NodeJS.Timeout | undefined;
      const track = ((cmd: string, args: readonly string[], o: object) => {
        child = spawn(cmd, args, { ...o, detached: true });
        const pid = child.pid;
        if (pid !== undefined) {
          running.add(pid);
          timer = setTimeout(() => {
            timedOut = true;
            killGroup(pid);
          }, opts.timeoutMs);
          child.once('exit', () => {
            running.delete(pid);
            clearTimeout(timer);
          });
        }
        return child;
      }) as unknown as typeof spawn;
      const p = $({
        spawn: track,
        nothrow: true,
        quiet: true,
        verbose: false,
        prefix: '',
        postfix: '',
        // stdin is /dev/null unless input is given: nothing maas-ha runs may wait on a terminal or on pgpool's stdin.
        ...(opts.input ? { input: opts.input } : { stdio: ['ignore', 'pipe', 'pipe'] as const }),
        cwd: opts.cwd,
        env,
      })`exec ${argv}`;
      const out = await p;
      clearTimeout(timer);
      return {
        argv: [...argv],
        exitCode: out.exitCode,
        signal: (out.signal as string | null) ?? null,
        stdout: out.stdout,
        stderr: out.stderr,
        durationMs: Math.round(performance.now() - started),
        timedOut,
      };
    },
  };
}
