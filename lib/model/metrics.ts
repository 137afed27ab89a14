// What `maas-ha metrics` reports, as plain values: lib/metrics.ts builds them, lib/adapters/prometheus.ts renders them.

export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  samples: Sample[];
}
