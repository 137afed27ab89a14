// Renders maas-ha's JSON log lines for a person (`maas-ha log`). Lines that are not ours (pgpool's or
// PostgreSQL's own, interleaved in the same file) pass through unchanged.

const LEVEL_WIDTH = 5;

/** One maas-ha log record: pino's fields plus ours (step, node_id, duration_ms, outcome, ...). */
export type LogRecord = Record<string, unknown> & { hook: string; level: string; msg: string; time?: string; step?: string; node_id?: number; outcome?: string };

/**
 * maas-ha's records in a log's text: pgpool and PostgreSQL interleave their own lines with our JSON lines (a
 * hook's stderr goes into their logs), so anything that is not one of our objects is skipped.
 */
export function logRecords(text: string): LogRecord[] {
  return text.split('\n').flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      const r = JSON.parse(l) as LogRecord;
      return typeof r.hook === 'string' && typeof r.msg === 'string' ? [r] : [];
    } catch {
      return [];
    }
  });
}

export function renderLogLine(line: string): string {
  const trimmed = line.trim();
  if (!trimmed.startsWith('{')) return line;
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(trimmed) as Record<string, unknown>;
  } catch {
    return line;
  }
  if (typeof rec.msg !== 'string' || typeof rec.hook !== 'string') return line;
  const time = typeof rec.time === 'string' ? rec.time.slice(11, 23) : '';
  const level = String(rec.level ?? '').toUpperCase().padEnd(LEVEL_WIDTH);
  const where = [rec.hook, rec.step].filter((x) => typeof x === 'string' && x).join('/');
  const node = typeof rec.node_id === 'number' ? ` node ${rec.node_id}` : '';
  const took = typeof rec.duration_ms === 'number' ? ` (${rec.duration_ms} ms)` : '';
  const outcome = typeof rec.outcome === 'string' ? ` [${rec.outcome}]` : '';
  const known = new Set(['time', 'level', 'hook', 'run_id', 'step', 'node_id', 'duration_ms', 'outcome', 'msg', 'pid', 'hostname']);
  const extra = Object.entries(rec)
    .filter(([k]) => !known.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time} ${level} ${where}${node}${outcome} ${rec.msg}${took}${extra ? `  ${extra}` : ''}`;
}
