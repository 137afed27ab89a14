// `npm run bench [name...]`: runs every test/bench/*.bench.ts (or those whose file name contains a given name),
// one after another (benchmarks must never overlap), and prints one markdown table for README.md. Every result
// is a ratio against a baseline measured in the same process run, because these machines are noisy: an absolute
// number from another run means little, a ratio measured side by side means something.
//
// A bench file default-exports `async (ctx: BenchContext) => BenchResult[]`. Results are also written as JSON to
// dist/bench.json for scripts.

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchResult {
  /** What is measured, e.g. "failover hook: start → new primary accepts writes". */
  name: string;
  /** Median of the measured samples, in `unit`. */
  value: number;
  /** The baseline it is divided by, with its own name, measured in the same run. */
  baseline?: { name: string; value: number };
  unit: 's' | 'ms' | 'MB/s' | 'x';
  /** value / baseline.value (or value itself when there is no baseline). */
  ratio?: number;
  /** The issue's goal, as text: "<= 1.5", ">= 0.8". */
  goal?: string;
  /** What the goal is checked against: the ratio (default when there is a baseline) or the value itself. */
  goalOn?: 'ratio' | 'value';
  /** Whether the goal was met (undefined when there is no goal). */
  met?: boolean;
  samples: number;
  /** How it was measured, one sentence for the README. */
  how: string;
}

export interface BenchContext {
  /** Progress for the person watching (stderr). */
  say(line: string): void;
  /** Samples per measurement (>= 5); `--quick` lowers it for a smoke run. */
  cycles: number;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Builds a result with its ratio and goal check; `goal` is "<= x" or ">= x" against the ratio. */
export function result(r: Omit<BenchResult, 'ratio' | 'met'>): BenchResult {
  const ratio = r.baseline ? r.value / r.baseline.value : undefined;
  const subject = r.goalOn === 'value' ? r.value : (ratio ?? r.value);
  const m = r.goal ? /^(<=|>=)\s*([\d.]+)/.exec(r.goal) : null;
  const met = m ? (m[1] === '<=' ? subject <= Number(m[2]) : subject >= Number(m[2])) : undefined;
  return { ...r, ...(ratio !== undefined ? { ratio } : {}), ...(met !== undefined ? { met } : {}) };
}

function fmt(v: number, unit: string): string {
  return `${v < 10 ? v.toFixed(3) : v.toFixed(1)} ${unit}`;
}

export function table(results: BenchResult[]): string {
  const rows = results.map((r) => [
    r.name,
    fmt(r.value, r.unit),
    r.baseline ? `${fmt(r.baseline.value, r.unit)} (${r.baseline.name})` : '—',
    r.ratio !== undefined ? r.ratio.toFixed(2) : '—',
    r.goal ? `${r.goalOn === 'value' ? `value ${r.goal}` : r.goal} ${r.met ? '✓' : '✗'}` : '—',
    String(r.samples),
  ]);
  return [
    '| measurement | median | baseline (same run) | ratio | goal | samples |',
    '|---|---|---|---|---|---|',
    ...rows.map((c) => `| ${c.join(' | ')} |`),
  ].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const names = args.filter((a) => !a.startsWith('--'));
  const dir = import.meta.dirname;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts'))
    .filter((f) => names.length === 0 || names.some((n) => f.includes(n)))
    .sort();
  if (files.length === 0) throw new Error(`no benchmark matches ${names.join(', ')}`);
  const ctx: BenchContext = { say: (l) => process.stderr.write(`${l}\n`), cycles: quick ? 2 : 5 };
  const all: BenchResult[] = [];
  for (const f of files) {
    ctx.say(`== ${f}`);
    const mod = (await import(join(dir, f))) as { default: (c: BenchContext) => Promise<BenchResult[]> };
    const rs = await mod.default(ctx);
    all.push(...rs);
    ctx.say(table(rs));
  }
  mkdirSync('dist', { recursive: true });
  writeFileSync('dist/bench.json', `${JSON.stringify({ at: new Date().toISOString(), results: all, how: Object.fromEntries(all.map((r) => [r.name, r.how])) }, null, 2)}\n`);
  process.stdout.write(`${table(all)}\n\n${all.map((r) => `- ${r.name}: ${r.how}`).join('\n')}\n`);
  if (all.some((r) => r.met === false)) process.exitCode = 1;
}

// Not a top-level await: bench files import this module for its helpers, and a pending top-level await here
// would leave their import waiting on this module forever (Node exits 13, "unsettled top-level await").
if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  });
}
