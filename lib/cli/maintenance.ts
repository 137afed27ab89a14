// `maas-ha maintenance [on|off] [NODE] [--reason TEXT] [--dry-run] [--json]`: the operator's switch for planned
// work (lib/maintenance.ts has the rules and the use cases). Without on/off it lists the marks and changes
// nothing. `off NODE` on a node that no longer streams hands over to the recover use case, through the recover
// command itself (its plan, progress and closing line). Loaded by lib/cli/main.ts only when the command runs.

import { createLog, newRunId } from '../adapters/log.ts';
import { configPath, loadConfig } from '../config/load.ts';
import { UsageError } from '../errors.ts';
import { parseFlags } from '../flags.ts';
import { describeMark, maintenanceOff, maintenanceOn, type MaintenanceResult } from '../maintenance.ts';
import type { MaintenanceMark } from '../model/ports.ts';
import { gatherStatus } from '../status.ts';
import { createDeps } from '../wiring.ts';
import { helpFor } from './help.ts';
import type { CliIo } from './main.ts';
import { findNode, recoverCommand } from './recover.ts';

const SPEC = { config: { type: 'string' }, reason: { type: 'string' }, 'dry-run': { type: 'bool' }, json: { type: 'bool' } } as const;

const listLines = (marks: readonly MaintenanceMark[]) =>
  marks.length ? marks.map((m) => `${m.node === undefined ? 'cluster' : `node ${m.node}`}: in maintenance ${describeMark(m)}`) : ['nothing is in maintenance'];

export async function maintenanceCommand(argv: string[], io: CliIo, selfUrl: string): Promise<number> {
  const { values, positionals } = parseFlags(argv, SPEC, { positionals: 2 });
  const [action, nodeArg] = positionals;
  if (action !== undefined && action !== 'on' && action !== 'off') throw new UsageError(`maintenance: expected on or off, got "${action}"\n${helpFor(['maintenance'])}`);
  if (action === undefined && (values.reason !== undefined || values['dry-run'])) throw new UsageError(`maintenance: --reason and --dry-run go with on or off`);
  if (action === 'off' && values.reason !== undefined) throw new UsageError('--reason: only with maintenance on');
  const reason = (values.reason ?? '').trim();
  if (/[\r\n]/.test(reason)) throw new UsageError('--reason: one line, please');
  const config = loadConfig(configPath(values.config, process.env));
  const node = nodeArg === undefined ? undefined : findNode(config.nodes, nodeArg, 'maintenance');
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  const dryRun = values['dry-run'] ?? false;

  if (action === undefined) {
    const marks = deps.state.maintenance();
    io.out(values.json ? JSON.stringify({ marks }, null, 2) : listLines(marks).join('\n'));
    return 0;
  }
  const r: MaintenanceResult & { next?: { kind: string; why: string } } =
    action === 'on' ? await maintenanceOn(deps, node, reason, dryRun) : await maintenanceOff(deps, node, dryRun);
  if (action === 'off' && !node && !dryRun) {
    // Nothing the hooks skipped while the cluster was marked is redone now: say what is left for the operator.
    const left = (await gatherStatus(deps)).problems;
    r.lines.push(left.length ? `the cluster now: ${left.join('; ')} (see maas-ha status; README.md, "Maintenance")` : 'the cluster now: no problems found');
    r.ok = left.length === 0;
  }
  if (!values.json) for (const line of r.lines) io.out(line);
  if (action === 'off' && node && r.next?.kind === 'recover') {
    // The recover command prints its own plan and closing line (one JSON object with --json).
    const recoverArgv = [String(node.id), ...(values.config ? ['--config', values.config] : []), ...(dryRun ? ['--dry-run'] : []), ...(values.json ? ['--json'] : [])];
    if (!values.json) return recoverCommand(recoverArgv, io, selfUrl);
    let recovered: unknown;
    const code = await recoverCommand(recoverArgv, { out: (l) => (recovered = parseJson(l)), err: io.err }, selfUrl);
    io.out(JSON.stringify({ ok: code === 0, action, node: node.id, dryRun, lines: r.lines, marks: r.marks, recover: recovered ?? null }, null, 2));
    return code;
  }
  if (values.json) io.out(JSON.stringify({ ok: r.ok, action, node: node?.id ?? null, dryRun, lines: r.lines, marks: r.marks }, null, 2));
  return r.ok ? 0 : 1;
}

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch {
    return line;
  }
}
