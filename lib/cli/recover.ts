// `maas-ha recover NODE`: the operator's one command to bring a node back as a standby of the current primary
// (a failed standby, the old primary after a failover, a brand-new standby with --initial). With pgpool reachable
// it asks pgpool (pcp_recovery_node), which runs maas-ha's recovery hooks inside the primary and attaches the
// node when it answers; without pgpool, or when a method is forced, it runs the very same primitives itself over
// ssh. Either way it shows the plan first, a progress bar for a base backup, and one closing line.
//
// `maas-ha recover install-scripts DATADIR` writes the two wrappers pgpool's online recovery runs from a data
// directory (install.sh --database-host calls it).

import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createShell } from '../adapters/exec.ts';
import { createLog, newRunId } from '../adapters/log.ts';
import { configPath, loadConfig } from '../config/load.ts';
import type { NodeConfig } from '../config/types.ts';
import { createDeps } from '../deps.ts';
import { messageOf, OperationError, UsageError } from '../errors.ts';
import type { Deps, PcpNodeInfo } from '../model/deps.ts';
import { formatBytes } from '../model/lsn.ts';
import { observeAll } from '../observe.ts';
import { shScript } from '../pgctl.ts';
import { isAttached } from '../pgpool/pcp-output.ts';
import { describeMethod, describePlan, planRebuild, type RebuildPlan } from '../recovery/plan.ts';
import { parseFlags } from './flags.ts';
import { helpFor } from './help.ts';
import { formatSeconds, pollBasebackup, ProgressPrinter } from '../recovery/progress.ts';
import { gatherFacts, observeDisk, pickPrimary, prepareStandby, settle, startStandby, waitStreaming } from '../recovery/rebuild.ts';
import { LOG_REASON_SCRIPT } from '../recovery/scripts.ts';
import { installWrappers } from '../recovery/wrappers.ts';

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
  const started = Date.now();
  const human = !values.json;
  const say = (line: string) => human && io.out(line);

  // What pgpool thinks (when it answers) and what PostgreSQL says.
  const pgpool = values.direct ? undefined : await pgpoolView(deps);
  const obs = await observeAll(deps, 3000);
  const pick = pickPrimary(obs, pgpool?.primary);
  if ('error' in pick) throw new OperationError(pick.error);
  const primary = config.nodes.find((n) => n.id === pick.id)!;
  const facts = await gatherFacts(deps, node, primary, { sizes: values['dry-run'] ?? false });
  const plan = planRebuild(facts, {
    method,
    force: values.force ?? false,
    initial: values.initial ?? false,
    basebackup: true,
    now: new Date(),
  });
  const info = pgpool?.nodes.get(node.id);
  // pgpool runs its own choice of method; a forced method is carried out here and attached through pcp after.
  const via: 'pcp' | 'direct' = info && method === 'auto' ? 'pcp' : 'direct';
  if (plan.kind === 'refuse') {
    if (values.json) io.out(JSON.stringify({ ok: false, node: node.id, refused: plan.why }));
    io.err(`maas-ha recover: ${plan.why}`);
    return 1;
  }
  say(headline(node, primary, plan, via, info, pgpool?.error));
  say(`  why: ${plan.why}`);
  if (values['dry-run']) {
    for (const line of describePlan(facts, plan, config.recovery.keep_old_data_dirs)) say(line);
    if (values.json) io.out(JSON.stringify({ ok: true, node: node.id, primary: primary.id, via, plan, steps: describePlan(facts, plan, config.recovery.keep_old_data_dirs) }));
    return 0;
  }

  const printer = new ProgressPrinter(io.write ?? ((t) => io.out(t.replace(/\n$/, ''))), io.write ? (io.tty ?? false) : false);
  const copying = plan.method === 'basebackup' || plan.fallback;
  const poller = human && copying ? pollBasebackup(deps, node, plan.copyBytes ?? facts.primaryFacts.sizeBytes, (p) => printer.update(p, Date.now())) : undefined;
  const stopPoller = async () => {
    await poller?.stop();
    printer.finish();
  };

  let how: string;
  let timeline: number;
  // The primary the node ends up streaming from: the one it was rebuilt from, or a new one after a failover meanwhile.
  let streamsFrom = primary;
  let kept: string[] = [];
  let attached = false;
  /** The rebuild step alone (stop, rewind or copy and swap), when this process ran it. */
  let rebuildSeconds: number | undefined;
  try {
    if (info && isAttached(info)) {
      // Only reachable with --force: pgpool refuses to recover a node it has up, and must not send clients to a
      // node that is about to stop; take it out first (failover_command runs for a lost standby: no promotion).
      say(`  pgpool has node ${node.id} up: detaching it first (pcp_detach_node)`);
      await deps.pcp.detach(node.id);
      await waitPgpool(deps, node.id, (i) => i.status === 3, 15_000, 'detached');
    }
    if (via === 'pcp') {
      const budget = config.budgets_ms.recovery_1st_stage + config.budgets_ms.remote_start + 60_000;
      try {
        // pcp_recovery_node waits for both recovery hooks and for pgpool's attach; the 4.3.5 PCP worker can hang
        // for ever (docs/pgpool-hooks.md, "PCP"), hence the bound.
        await deps.pcp.recover(node.id, { timeoutMs: budget });
      } catch (err) {
        await stopPoller();
        const reason = await reasonFromPrimaryLog(deps, primary, started);
        throw new OperationError(
          `${messageOf(err)}${reason ? `\n  maas-ha's recovery hook on node ${primary.id} says: ${reason}` : `\n  the reason is in node ${primary.id}'s PostgreSQL log (lines with "hook":"recovery_1st_stage" or "remote_start")`}`,
        );
      }
      await stopPoller();
      ({ timeline, primary: streamsFrom } = await waitStreaming(deps, node, primary, config.recovery.stream_timeout_ms));
      await waitPgpool(deps, node.id, isAttached, 15_000, 'attached');
      attached = true;
      const after = await observeDisk(deps, node);
      kept = after.oldDirs;
      const fresh = after.oldDirs.filter((d) => !facts.disk.oldDirs.includes(d));
      how = plan.method === 'rewind' && fresh.length > 0 ? 'base backup (pg_rewind failed)' : describeMethod(plan.method);
      if (deps.state.fenced().some((m) => m.node === node.id)) deps.state.clearFenced(node.id);
    } else {
      const prepared = await prepareStandby(deps, facts, plan, { budgetMs: config.budgets_ms.recovery_1st_stage, now: () => new Date() });
      await stopPoller();
      how = describeMethod(prepared.method, prepared.rewindFailure);
      rebuildSeconds = prepared.durationMs / 1000;
      say(`  ${how} done in ${formatSeconds(rebuildSeconds)}; starting node ${node.id}`);
      ({ timeline, primary: streamsFrom } = await startStandby(deps, node, primary, {
        startTimeoutMs: config.recovery.start_timeout_ms,
        streamTimeoutMs: config.recovery.stream_timeout_ms,
        justPrepared: true,
      }));
      // What was beside the data directory before, plus what this run moved there (a fallback re-listed it).
      const known = prepared.rewindFailure ? undefined : [...facts.disk.oldDirs, ...(prepared.oldDir ? [prepared.oldDir] : [])];
      ({ kept } = await settle(deps, node, known));
      if (info) {
        await deps.pcp.attach(node.id);
        await waitPgpool(deps, node.id, isAttached, 15_000, 'attached');
        attached = true;
      }
    }
  } catch (err) {
    await stopPoller();
    if (values.json) io.out(JSON.stringify({ ok: false, node: node.id, error: messageOf(err), seconds: (Date.now() - started) / 1000 }));
    io.err(`maas-ha recover: node ${node.id} not recovered after ${formatSeconds((Date.now() - started) / 1000)}: ${messageOf(err)}`);
    return 1;
  }
  const total = (Date.now() - started) / 1000;
  // Only what this run moved aside; older copies (kept by recovery.keep_old_data_dirs) are in --json's `kept`.
  const moved = kept.filter((d) => !facts.disk.oldDirs.includes(d));
  const keptText = moved.length ? `; previous data directory kept at ${moved.join(', ')}` : '';
  const pgpoolText = attached
    ? ', attached in pgpool'
    : pgpool?.error
      ? ' (pgpool did not answer: attach it once pgpool runs)'
      : pgpool
        ? ` (not in pgpool: add it as a backend, then pcp_attach_node -n ${node.id})`
        : '';
  if (values.json) io.out(JSON.stringify({ ok: true, node: node.id, primary: streamsFrom.id, rebuilt_from: primary.id, via, method: how, timeline, attached, kept, seconds: total, rebuild_seconds: rebuildSeconds }));
  say(`node ${node.id} recovered by ${how} in ${formatSeconds(total)}: streams timeline ${timeline} from node ${streamsFrom.id}${streamsFrom.id === primary.id ? '' : ` (a failover made it the primary meanwhile; rebuilt from node ${primary.id})`}${pgpoolText}${keptText}`);
  return 0;
}

function findNode(nodes: readonly NodeConfig[], arg: string): NodeConfig {
  const n = /^\d+$/.test(arg) ? nodes.find((x) => x.id === Number(arg)) : nodes.find((x) => x.name === arg);
  if (!n) throw new UsageError(`recover: no node "${arg}" in the configuration (nodes: ${nodes.map((x) => `${x.id}=${x.name}`).join(', ')})`);
  return n;
}

function headline(node: NodeConfig, primary: NodeConfig, plan: Extract<RebuildPlan, { kind: 'rebuild' }>, via: 'pcp' | 'direct', info: PcpNodeInfo | undefined, pgpoolError: string | undefined): string {
  const method = plan.method === 'basebackup' ? `${describeMethod('basebackup')} (about ${formatBytes(plan.copyBytes ?? 0)})` : describeMethod(plan.method);
  const path =
    via === 'pcp'
      ? `through pgpool (pcp_recovery_node; pgpool has it ${info?.statusName ?? 'down'})`
      : `directly over ssh${pgpoolError ? ` (pgpool does not answer: ${pgpoolError})` : info ? ', then pcp_attach_node' : ` (pgpool does not know node ${node.id}: add it to pgpool.conf, then pcp_attach_node)`}`;
  return `recover node ${node.id} (${node.name}, ${node.hostname}:${node.port}) from primary node ${primary.id} by ${method}, ${path}`;
}

interface PgpoolView {
  nodes: Map<number, PcpNodeInfo>;
  primary?: number;
  error?: string;
}

/**
 * pcp_node_info for every node; an unreachable pgpool is not an error here (the direct path is the answer), and a
 * node pgpool does not know (a new standby not yet in pgpool.conf: "invalid node ID") is absent from `nodes`. Any
 * other failure (pgpool shutting down, say) counts as pgpool not answering.
 */
async function pgpoolView(deps: Deps): Promise<PgpoolView> {
  const results = await Promise.allSettled(deps.config.nodes.map((n) => deps.pcp.nodeInfo(n.id)));
  const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !/invalid node/i.test(messageOf(r.reason)));
  if (failure) return { nodes: new Map(), error: messageOf(failure.reason).split('\n')[0] };
  const infos = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const nodes = new Map(infos.map((i) => [i.id, i]));
  return { nodes, primary: infos.find((i) => i.role === 'primary' && isAttached(i))?.id };
}

async function waitPgpool(deps: Deps, id: number, ok: (i: PcpNodeInfo) => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  for (;;) {
    const i = await deps.pcp.nodeInfo(id).catch((err: unknown) => messageOf(err));
    if (typeof i !== 'string' && ok(i)) return;
    last = typeof i === 'string' ? i : `status ${i.statusName}`;
    if (Date.now() > deadline) throw new OperationError(`pgpool does not show node ${id} ${what} after ${timeoutMs} ms (${last})`);
    await deps.clock.sleep(200);
  }
}

/** The last error line maas-ha's recovery hooks wrote into the primary's server log since `since` (best effort). */
async function reasonFromPrimaryLog(deps: Deps, primary: NodeConfig, since: number): Promise<string | undefined> {
  const file = primary.control.method === 'pg_ctl' ? primary.control.log_file : `/var/log/postgresql/postgresql-${primary.control.version}-${primary.control.name}.log`;
  const r = await deps.ssh.run(primary.ssh_host, shScript(LOG_REASON_SCRIPT, file), { timeoutMs: deps.config.ssh.connect_timeout_s * 1000 + 5000 }).catch(() => undefined);
  if (!r || r.exitCode !== 0) return undefined;
  const records = r.stdout
    .split('\n')
    .flatMap((l) => {
      try {
        return [JSON.parse(l.slice(l.indexOf('{'))) as { time?: string; msg?: string; step?: string }];
      } catch {
        return [];
      }
    })
    .filter((x) => x.msg && (!x.time || Date.parse(x.time) >= since - 5000));
  return (records.filter((x) => x.step === 'done').pop() ?? records.pop())?.msg;
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
  const done = await installWrappers(createShell(), dataDir, { configPath: cfg, binDir: resolve(binDir), nodePath: process.execPath });
  for (const d of done) io.out(`${dataDir}/${d.name}: ${d.outcome}`);
  return 0;
}
