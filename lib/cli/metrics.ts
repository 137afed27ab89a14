// `maas-ha metrics [--write FILE] [--json]`: lib/metrics.ts's families as Prometheus text, on stdout or written
// atomically for node_exporter's textfile collector (docs/metrics.md); --json prints the same families as JSON.
// Loaded by lib/cli/main.ts only when the command runs, so prom-client stays out of every hook's start-up (the
// maas-ha bundle is also pgpool's if_up_cmd and arping_cmd).

import { resolve } from 'node:path';
import { createLog, newRunId } from '../adapters/log.ts';
import { renderExposition } from '../adapters/prometheus.ts';
import { SafeWriteError, writeFileSafely } from '../adapters/safe-write.ts';
import { configPath, loadConfig } from '../config/load.ts';
import { createDeps } from '../wiring.ts';
import { OperationError, UsageError } from '../errors.ts';
import { buildMetrics, gatherMetrics } from '../metrics.ts';
import type { Deps } from '../model/ports.ts';
import { parseFlags } from '../flags.ts';
import { readHistory } from './history.ts';
import type { CliIo } from './main.ts';

/** Every metric family of the cluster as this host sees it. */
const metricFamilies = async (deps: Deps) => buildMetrics(await gatherMetrics(deps, () => readHistory(deps.config, deps.state)));

/** The text of every metric of the cluster as this host sees it. */
export async function metricsText(deps: Deps): Promise<string> {
  return renderExposition(await metricFamilies(deps), { cluster: deps.config.cluster_name });
}

/**
 * --write FILE: a path ending in .prom, the only files the textfile collector reads (the temporary file written
 * beside it starts with a dot and is never read half-written); a relative one is taken from the working directory.
 */
export function metricsFile(raw: string): string {
  if (!raw.trim()) throw new UsageError('--write: expected a file name, got ""');
  if (!raw.endsWith('.prom') || raw.endsWith('/.prom')) throw new UsageError(`--write: node_exporter's textfile collector reads only files named *.prom, got "${raw}"`);
  return resolve(raw);
}

export async function metricsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseFlags(argv, { config: { type: 'string' }, write: { type: 'string' }, json: { type: 'bool' } });
  if (values.json && values.write !== undefined) throw new UsageError('--json: prints to stdout; it does not go with --write');
  const file = values.write === undefined ? undefined : metricsFile(values.write);
  const config = loadConfig(configPath(values.config, process.env));
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  if (values.json) {
    io.out(JSON.stringify({ cluster: config.cluster_name, families: await metricFamilies(deps) }, null, 2));
    return 0;
  }
  const text = await metricsText(deps);
  if (file === undefined) {
    io.out(text.trimEnd());
    return 0;
  }
  try {
    // World-readable: node_exporter runs as a user of its own.
    writeFileSafely(file, text, { mode: 0o644 });
  } catch (err) {
    if (err instanceof SafeWriteError) throw new OperationError(err.message);
    throw err;
  }
  return 0;
}
