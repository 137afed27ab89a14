// The one wrapper every hook's main() goes through: config, logger, run id, budget, closing sentence, exit code.
// pgpool ignores most hooks' exit codes (docs/pgpool-hooks.md, "Exit codes"), so the log line and the notification
// are what an operator sees; the exit code still tells the truth for the hooks whose caller does read it
// (recovery) and for people running a hook by hand.

import { wantsHelp } from './flags.ts';
import { loadConfigFast } from './config/checked.ts';
import { configPath, takeConfigFlag } from './config/path.ts';
import type { Config, HookName } from './config/types.ts';
import { createLog, newRunId } from './adapters/log.ts';
import { preloadPg } from './adapters/pg.ts';
import { createDeps } from './wiring.ts';
import { ConfigError, exitCodeOf, messageOf } from './errors.ts';
import type { Deps, Log } from './model/ports.ts';
import type { TimelineEvent } from './failover/timeline.ts';

export interface HookContext {
  deps: Deps;
  log: Log;
  runId: string;
  /** Milliseconds left of this hook's budget. */
  remainingMs(): number;
}

/** What a hook's body returns: the one sentence that explains the run, and whether it succeeded. */
export interface HookOutcome {
  ok: boolean;
  summary: string;
  /** Events to send with the notification; a run without events (nothing happened) notifies only on failure. */
  timeline?: TimelineEvent[];
}

export interface HookOptions {
  /**
   * A lock (in state_dir) held while the body runs, so two runs of hooks sharing it never do their steps at the
   * same time. Waited for up to half the budget. Hooks that pgpool runs *while* another hook waits for pgpool
   * (failback, run by pgpool's main process during follow's pcp_attach_node) must not share a lock with it.
   */
  lock?: string;
  /** The hook will query PostgreSQL whatever happens: load the driver while the configuration is read. */
  queriesPostgres?: boolean;
}

/**
 * Answers `--help`/`-h` first (anywhere in argv: print what runs this hook and what it takes, exit 0, nothing
 * else), then parses argv (bad arguments exit 2 before anything else happens), then loads the config, then runs
 * body.
 */
export async function runHook<A>(
  hook: HookName,
  argv: string[],
  parse: (argv: string[]) => A,
  body: (ctx: HookContext, args: A) => Promise<HookOutcome>,
  options: HookOptions = {},
): Promise<void> {
  if (wantsHelp(argv)) {
    // A person at a terminal, not pgpool (no placeholder expands to -h): no config, no lock, no log line. The
    // texts load only here, so a hook's normal start does not pay for them.
    const { hookHelp } = await import('./hook-help.ts');
    process.stdout.write(`${hookHelp(hook)}\n`);
    process.exitCode = 0;
    return;
  }
  const started = Date.now();
  if (options.queriesPostgres) preloadPg();
  const runId = newRunId();
  const { config: configFlag, rest } = takeConfigFlag(argv);
  let args: A;
  try {
    args = parse(rest);
  } catch (err) {
    createLog(hook, runId).error({ step: 'arguments', outcome: 'failed', argv }, messageOf(err));
    process.exitCode = exitCodeOf(err);
    return;
  }
  let config: Config;
  try {
    config = await loadConfigFast(configPath(configFlag, process.env));
  } catch (err) {
    const log = createLog(hook, runId);
    log.error({ step: 'config', outcome: 'failed' }, err instanceof ConfigError ? err.message : messageOf(err));
    process.exitCode = exitCodeOf(err);
    return;
  }
  const log = createLog(hook, runId, config.log_level);
  const budget = config.budgets_ms[hook];
  // The budget is a promise to pgpool: past it the process ends, whatever is still waiting. Every call has its
  // own shorter timeout, so this only fires on a bug; it is the one place maas-ha calls process.exit().
  const guard = setTimeout(() => {
    log.error({ step: 'budget', outcome: 'failed', duration_ms: Date.now() - started }, `${hook} exceeded its budget of ${budget} ms; giving up`);
    process.exit(1);
  }, budget);
  guard.unref();
  const deps = createDeps(config, log);
  let release: (() => void) | undefined;
  try {
    if (options.lock) release = await deps.state.lock(options.lock, budget / 2);
    const outcome = await body({ deps, log, runId, remainingMs: () => budget - (Date.now() - started) }, args);
    const seconds = ((Date.now() - started) / 1000).toFixed(2);
    const fields = { step: 'done', outcome: outcome.ok ? ('ok' as const) : ('failed' as const), duration_ms: Date.now() - started };
    if (outcome.ok) log.info(fields, `${hook} done in ${seconds} s: ${outcome.summary}`);
    else log.error(fields, `${hook} failed after ${seconds} s: ${outcome.summary}`);
    process.exitCode = outcome.ok ? 0 : 1;
    if (!outcome.ok || outcome.timeline?.length) {
      await deps.notify.send({ hook, run_id: runId, outcome: outcome.ok ? 'ok' : 'failed', summary: outcome.summary, timeline: outcome.timeline ?? [] });
    }
  } catch (err) {
    const summary = messageOf(err);
    log.error(
      { step: 'done', outcome: 'failed', duration_ms: Date.now() - started, err: { message: summary, cause: causeOf(err) } },
      `${hook} failed: ${summary}`,
    );
    process.exitCode = exitCodeOf(err);
    await deps.notify.send({ hook, run_id: runId, outcome: 'failed', summary, timeline: [] });
  } finally {
    release?.();
    clearTimeout(guard);
  }
}

function causeOf(err: unknown): string | undefined {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause === undefined ? undefined : messageOf(cause);
}
