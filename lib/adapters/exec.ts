// The command runner: the only place maas-ha starts a local process. Commands are argv arrays; zx quotes every
// element before its shell sees it, so no value is ever interpreted by a shell. Every call has a timeout, after
// which the whole process tree is killed (SIGKILL): a hook must never hang pgpool.

import type { Shell } from '../model/deps.ts';
import type { RunOptions, RunResult } from '../model/deps.ts';

export { CommandError, checked } from '../model/deps.ts';

type Zx = typeof import('zx/core');
let zx: Promise<Zx> | undefined;
// zx is loaded on the first command, not at start-up: a hook whose work is a no-op never pays for it.
const loadZx = () => (zx ??= import('zx/core'));

export function createShell(): Shell {
  return {
    async run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      if (argv.length === 0) throw new Error('run: empty argv');
      if (!(opts.timeoutMs > 0)) throw new Error(`run ${argv[0]}: a positive timeoutMs is required`);
      const { $ } = await loadZx();
      const started = performance.now();
      const env = opts.env ? { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env } : process.env;
      const p = $({
        timeout: opts.timeoutMs,
        timeoutSignal: 'SIGKILL',
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
      const durationMs = Math.round(performance.now() - started);
      const signal = (out.signal as string | null) ?? null;
      return {
        argv: [...argv],
        exitCode: out.exitCode,
        signal,
        stdout: out.stdout,
        stderr: out.stderr,
        durationMs,
        timedOut: signal === 'SIGKILL' && durationMs >= opts.timeoutMs - 5,
      };
    },
  };
}
