// pino JSON lines on stderr. pgpool and PostgreSQL copy a hook's stderr into their own logs, so one JSON object
// per line keeps our records greppable there. Hooks are short-lived processes: writes are synchronous so that
// nothing is lost when the process ends. Secrets are redacted by key wherever they appear.

import { pino, type DestinationStream } from 'pino';
import type { Log, LogFields } from '../model/ports.ts';

export const REDACT_PATHS = [
  'password', '*.password', 'passwd', '*.passwd', 'secret', '*.secret',
  'authorization', '*.authorization', 'headers.authorization', 'token', '*.token',
];

export function createLog(hook: string, runId: string, level = 'info', dest?: DestinationStream): Log {
  const logger = pino(
    {
      level,
      base: { hook, run_id: runId },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    dest ?? pino.destination({ dest: 2, sync: true }),
  );
  return wrap(logger);
}

function wrap(logger: pino.Logger): Log {
  return {
    debug: (f: LogFields, m: string) => logger.debug(f, m),
    info: (f: LogFields, m: string) => logger.info(f, m),
    warn: (f: LogFields, m: string) => logger.warn(f, m),
    error: (f: LogFields, m: string) => logger.error(f, m),
    child: (f: LogFields) => wrap(logger.child(f)),
  };
}

export function newRunId(): string {
  return `${Date.now().toString(36)}-${process.pid.toString(36)}`;
}
