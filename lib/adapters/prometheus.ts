// The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile collector reads), produced by
// prom-client, the Prometheus client library for Node.js, rather than by hand: it escapes label values and help
// text, formats floats and writes # HELP/# TYPE once per family as the format requires. Only `maas-ha metrics`
// loads this file (lib/cli/metrics.ts, imported when the command runs): no hook bundle carries prom-client.

import { Gauge, Registry } from 'prom-client';
import type { MetricFamily } from '../model/metrics.ts';

/** The families as exposition text; `common` labels (the cluster's name) go on every sample. */
export async function renderExposition(families: readonly MetricFamily[], common: Record<string, string> = {}): Promise<string> {
  const registry = new Registry();
  registry.setDefaultLabels(common);
  for (const f of families) {
    const labelNames = [...new Set(f.samples.flatMap((s) => Object.keys(s.labels)))];
    const gauge = new Gauge({ name: f.name, help: f.help, labelNames, registers: [registry] });
    for (const s of f.samples) gauge.set(s.labels, s.value);
  }
  return registry.metrics();
}
