// `maas-ha recover NODE`: the operator's one command to bring a node back as a standby of the current primary. The
// use case (plan, then pcp_recovery_node or the rebuild primitives over ssh, attach, unfence) is
// lib/recovery/recover.ts; this file parses the flags, shows the plan first, a progress bar for a base backup, and
// one closing line (or one JSON object with --json).
//
// `maas-ha recover install-scripts DATADIR` writes the two wrappers pgpool's online recovery runs from a data
// directory (install.sh --database-host calls it).

import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hostFiles } from '../adapters/safe-write.ts';
import { createLog, newRunId } from '../adapters/log.ts';
import { configPath, loadConfig } from '../config/load.ts';
import type { NodeConfig } from '../config/types.ts';
import { createDeps } from '../wiring.ts';
import { UsageError } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { describePlannedMethod } from '../recovery/plan.ts';
import { formatSeconds, ProgressPrinter } from '../recovery/progress.ts';
import { executeRecover, planRecover, type PgpoolOutcome, type RecoverDecision, type RecoverEvents, type RecoverOutcome } from '../recovery/recover.ts';
import { installWrappers } from '../recovery/wrappers.ts';
import { helpFor } from './help.ts';

export interface RecoverIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /** Raw text for the progress bar (no newline added); absent: progress lines go through `out`. */
  write?: (text: string) => void;
  /** stdout is a terminal: redraw the progress bar in place. */
  tty?: boolean;
}

const SPEC = {
  config: { type: 'string' },
  'dry-run': { type: 'bool' },
  force: { type: 'bool' },
  initial: { type: 'bool' },
  method: { type: 'string' },
  direct: { type: 'bool' },
  json: { type: 'bool' },
} as const;

export async function recoverCommand(argv: string[], io: RecoverIo, selfUrl: string): Promise<number> {
  if (argv[0] === 'install-scripts') return installScripts(argv.slice(1), io, selfUrl);
  const { values, positionals } = parseFlags(argv, SPEC, { positionals: 1 });
  const method = values.method ?? 'auto';
  if (method !== 'auto' && method !== 'rewind' && method !== 'basebackup') throw new UsageError(`--method: expected rewind or basebackup, got "${method}"`);
  if (positionals[0] === undefined) throw new UsageError(`recover: expected a node id or name\n${helpFor(['recover'])}`);
  const config = loadConfig(configPath(values.config, process.env));
  const node = findNode(config.nodes, positionals[0]);
  const deps = createDeps(config, createLog('recover', newRunId(), 'warn'));
  const human = !values.json;
  const say = (line: string) => human && io.out(line);

  const d = await planRecover(deps, {
    node,
    method,
    force: values.force ?? false,
    initial: values.initial ?? false,
    direct: values.direct ?? false,
    measure: values['dry-run'] ?? false,
  });
  if (d.kind === 'refuse') {
    if (values.json) io.out(JSON.stringify({ ok: false, node: node.id, refused: d.why, reason: d.reason }));
    io.err(`maas-ha recover: ${d.why}`);
    return 1;
  }
  if (d.kind === 'attach') {
    say(`recover node ${node.id} (${node.name}, ${node.hostname}:${node.port}): ${d.why}`);
    if (values['dry-run']) {
      const steps = [`1. pcp_attach_node -n ${node.id}, then wait until pgpool shows it up`];
      for (const line of steps) say(line);
      if (values.json) io.out(JSON.stringify({ ok: true, node: node.id, primary: d.primary.id, via: 'pcp', plan: { kind: 'attach', why: d.why }, steps }));
      return 0;
    }
    return report(await executeRecover(deps, d), io, values.json ?? false);
  }
  say(headline(d));
  say(`  why: ${d.plan.why}`);
  if (values['dry-run']) {
    for (const line of d.steps) say(line);
    if (values.json) io.out(JSON.stringify({ ok: true, node: node.id, primary: d.primary.id, via: d.via, plan: d.plan, steps: d.steps }));
    return 0;
  }

  const printer = new ProgressPrinter(io.write ?? ((t) => io.out(t.replace(/\n$/, ''))), io.write ? (io.tty ?? false) : false);
  const events: RecoverEvents = human
    ? {
        detaching: (id) => say(`  pgpool has node ${id} up: detaching it first (pcp_detach_node)`),
        prepared: (how, seconds) => say(`  ${how} done in ${formatSeconds(seconds)}; starting node ${node.id}`),
        progress: (p) => printer.update(p, Date.now()),
        progressEnd: () => printer.finish(),
      }
    : {};
  return report(await executeRecover(deps, d, events), io, values.json ?? false);
}

/** The outcome: one JSON object, or the closing line (and the error on stderr, exit 1). */
function report(r: RecoverOutcome, io: RecoverIo, json: boolean): number {
  if (!r.ok) {
    if (json) io.out(JSON.stringify({ ok: false, node: r.node, error: r.error, seconds: r.seconds }));
    io.err(`maas-ha recover: node ${r.node} not recovered after ${formatSeconds(r.seconds)}: ${r.error}`);
    return 1;
  }
  if (json) {
    io.out(
      JSON.stringify({
        ok: true,
        node: r.node,
        primary: r.primary,
        rebuilt_from: r.rebuiltFrom,
        via: r.via,
        method: r.method,
        timeline: r.timeline,
        attached: r.attached,
        kept: r.kept,
        seconds: r.seconds,
        rebuild_seconds: r.rebuildSeconds,
      }),
    );
  }
  // Only what this run moved aside; older copies (kept by recovery.keep_old_data_dirs) are in --json's `kept`.
  const keptText = r.moved.length ? `; previous data directory kept at ${r.moved.join(', ')}` : '';
  const meanwhile = r.primary === r.rebuiltFrom ? '' : ` (a failover made it the primary meanwhile; rebuilt from node ${r.rebuiltFrom})`;
  if (!json) io.out(`node ${r.node} recovered by ${r.method} in ${formatSeconds(r.seconds)}: streams timeline ${r.timeline} from node ${r.primary}${meanwhile}${PGPOOL_TEXT[r.pgpool](r.node)}${keptText}`);
  return 0;
}

const PGPOOL_TEXT: Record<PgpoolOutcome, (node: number) => string> = {
  attached: () => ', attached in pgpool',
  unanswered: () => ' (pgpool did not answer: attach it once pgpool runs)',
  'unknown-node': (node) => ` (not in pgpool: add it as a backend, then pcp_attach_node -n ${node})`,
  'not-asked': () => '',
};

/** The node a command line names, by id or name. */
export function findNode(nodes: readonly NodeConfig[], arg: string, command = 'recover'): NodeConfig {
  const n = /^\d+$/.test(arg) ? nodes.find((x) => x.id === Number(arg)) : nodes.find((x) => x.name === arg);
  if (!n) throw new UsageError(`${command}: no node "${arg}" in the configuration (nodes: ${nodes.map((x) => `${x.id}=${x.name}`).join(', ')})`);
  return n;
}

function headline(d: Extract<RecoverDecision, { kind: 'rebuild' }>): string {
  const { node, primary, info } = d;
  const pgpoolError = d.pgpool?.error;
  const path =
    d.via === 'pcp'
      ? `through pgpool (pcp_recovery_node; pgpool has it ${info?.statusName ?? 'down'})`
      : `directly over ssh${pgpoolError ? ` (pgpool does not answer: ${pgpoolError})` : info ? ', then pcp_attach_node' : ` (pgpool does not know node ${node.id}: add it to pgpool.conf, then pcp_attach_node)`}`;
  return `recover node ${node.id} (${node.name}, ${node.hostname}:${node.port}) from primary node ${primary.id} by ${describePlannedMethod(d.plan)}, ${path}`;
}

async function installScripts(argv: string[], io: RecoverIo, selfUrl: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, { config: { type: 'string' }, bindir: { type: 'string' } }, { positionals: 1 });
  const dataDir = positionals[0];
  if (!dataDir || !dataDir.startsWith('/')) throw new UsageError('recover install-scripts: expected the absolute path of a PostgreSQL data directory');
  const cfg = resolve(configPath(values.config, process.env));
  loadConfig(cfg); // a wrapper pointing at a broken configuration would only fail later, inside a recovery
  const here = dirname(fileURLToPath(selfUrl));
  // Bundled: dist/bin/maas-ha.mjs; under tsx: hooks/maas-ha.ts (then the bundle is in ../dist/bin).
  const binDir = values.bindir ?? (basename(here) === 'hooks' ? join(here, '..', 'dist', 'bin') : here);
  const done = await installWrappers(dataDir, { configPath: cfg, binDir: resolve(binDir), nodePath: process.execPath }, hostFiles);
  for (const d of done) io.out(`${dataDir}/${d.name}: ${d.outcome}`);
  return 0;
}
