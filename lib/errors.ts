// Error types that carry the exit code the operator (or pgpool's log) should see. Hooks and the CLI map them to
// process.exitCode in one place (lib/hook.ts); nothing else calls process.exit().

/** Bad flags or arguments: exit 2, with a message that names the flag. */
export class UsageError extends Error {
  override name = 'UsageError';
  readonly exitCode = 2;
}

/** The configuration file is missing or invalid: exit 2, one line per problem. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly exitCode = 2;
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** An operation failed in a way the operator must act on: exit 1. */
export class OperationError extends Error {
  override name = 'OperationError';
  readonly exitCode = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof err.exitCode === 'number') return err.exitCode;
  return 1;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The code an adapter's wrapped error carries (OperationError's cause): the errno name of a failed connect
 * ('ECONNREFUSED') or PostgreSQL's SQLSTATE ('55000'); undefined when there is none.
 */
export function causeCode(err: unknown): unknown {
  const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
  return cause?.code;
}
