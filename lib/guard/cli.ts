// maas-ha-guard's command line and wiring: parse argv strictly, load the configuration, find this host's node,
// build the guard's effects (the adapters) and run one command. Returns the exit code; nothing here calls
// process.exit(). Exit codes: 0 done (whatever the guard decided), 1 an action it decided on failed, 2 usage or
// configuration error.

import { setTimeout as delay } from 'node:timers/promises';
import { hostname, networkInterfaces } from 'node:os';
import { posix, resolve } from 'node:path';
import { systemClock } from '../adapters/clock.ts';
import { createShell } from '../adapters/exec.ts';
import { createLog, newRunId } from '../adapters/log.ts';
import { createPg, preloadPg } from '../adapters/pg.ts';
import { loadConfigFast } from '../config/checked.ts';
import { configPath } from '../config/path.ts';
import type { Config, NodeConfig } from '../config/types.ts';
import { ConfigError, UsageError, exitCodeOf, messageOf } from '../errors.ts';
import { parseFlags, wantsHelp } from '../flags.ts';
import { createGuardFiles } from './files.ts';
import { runGuard, runJson, watch, type GuardDeps, type GuardMode } from './guard.ts';
import { startCheckDropIn, watchService } from './units.ts';

export const GUARD_USAGE = `usage: maas-ha-guard <command> (--node ID | --data-directory DIR) [options]

Runs on a database host, as the PostgreSQL owner (postgres), and guards that host's node against becoming or
staying a second primary. It decides only from what the other nodes' PostgreSQL say.

  check [--json]             one pass: if this node is a primary and a peer is on a newer timeline, write
                             standby.signal and stop it (fast, immediate if needed, within 5 s). Two primaries
                             on one timeline, or no peer answering: a warning only, never a demotion.
  start-check                before PostgreSQL starts (systemd ExecStartPre): without standby.signal, and with a
                             peer that is a primary at least as new (or any peer on a newer timeline), write
                             standby.signal so it starts as a standby; otherwise allow the start.
  watch [--interval-ms N]    check every N ms (default 1000) until SIGTERM/SIGINT
  unit start-check|watch [--path] [--bin F] [--nodejs F] [--user U] [--interval-ms N] [--unit-dir D]
                             the systemd drop-in (ExecStartPre) or the watch service install.sh writes

options: --config FILE (default $MAAS_HA_CONFIG or /etc/maas-ha/maas-ha.yaml), --dry-run (say what it would
do, do nothing), --help`;

export interface GuardIo {
  out: (text: string) => void;
  /** Plain messages for a person or install.sh (`unit`); the guard's own runs log JSON lines instead. */
  err: (text: string) => void;
}

const defaultIo: GuardIo = { out: (t) => process.stdout.write(`${t}\n`), err: (t) => process.stderr.write(`${t}\n`) };

const norm = (p: string) => posix.normalize(p).replace(/(.)\/+$/, '$1');

/** What identifies this host among the configured nodes: its addresses and its names. */
export interface ThisHost {
  addresses: string[];
  names: string[];
}

function thisHost(): ThisHost {
  const addresses = Object.values(networkInterfaces()).flatMap((l) => (l ?? []).map((a) => a.address));
  const name = hostname();
  return { addresses, names: [...new Set([name, name.split('.')[0] ?? name])] };
}

/**
 * Pure: this host's node, by id or by its data directory, with a message that names the flag. Every host of a
 * Debian cluster has /var/lib/postgresql/15/main, so when several nodes share the data directory the one whose
 * hostname (backend_hostname) is an address or the name of this host is taken, and anything ambiguous is refused.
 */
export function findNode(config: Config, sel: { node?: number; dataDirectory?: string }, host: ThisHost = { addresses: [], names: [] }): NodeConfig {
  if ((sel.node === undefined) === (sel.dataDirectory === undefined)) throw new UsageError('give exactly one of --node ID and --data-directory DIR');
  if (sel.node !== undefined) {
    const n = config.nodes.find((x) => x.id === sel.node);
    if (!n) throw new UsageError(`--node: no node ${sel.node} in ${config.source} (nodes: ${config.nodes.map((x) => x.id).join(', ')})`);
    return n;
  }
  const dir = norm(sel.dataDirectory!);
  const same = config.nodes.filter((x) => norm(x.data_directory) === dir);
  if (same.length === 0) {
    throw new UsageError(`--data-directory: no node of ${config.source} has data_directory ${dir} (${config.nodes.map((x) => `node ${x.id}: ${x.data_directory}`).join('; ')})`);
  }
  if (same.length === 1) return same[0]!;
  const names = host.names.map((h) => h.toLowerCase());
  const here = same.filter((x) => host.addresses.includes(x.hostname) || names.includes(x.hostname.toLowerCase()) || names.includes(x.name.toLowerCase()));
  if (here.length === 1) return here[0]!;
  throw new UsageError(
    `--data-directory: nodes ${same.map((x) => `${x.id} (${x.hostname})`).join(', ')} all have data_directory ${dir}, and ${here.length ? 'more than one' : 'none'} of them is this host (${[...host.names, ...host.addresses].join(', ')}): give --node ID`,
  );
}

const COMMON = {
  node: { type: 'int' },
  'data-directory': { type: 'string' },
  config: { type: 'string' },
  'dry-run': { type: 'bool' },
  help: { type: 'bool' },
} as const;

function intervalOf(v: number | undefined): number {
  const ms = v ?? 1000;
  if (ms < 100 || ms > 60_000) throw new UsageError(`--interval-ms: expected 100 to 60000, got ${ms}`);
  return ms;
}

export async function runGuardCli(argv: string[], io: GuardIo = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  const runId = newRunId();
  let log = createLog('guard', runId);
  try {
    // --help anywhere on the line is answered before anything on it is looked at (the house rule: adding --help
    // to a command line must always be safe).
    if (cmd === undefined || cmd === 'help' || wantsHelp(argv)) {
      io.out(GUARD_USAGE);
      return cmd === undefined ? 2 : 0;
    }
    if (cmd === 'unit') {
      try {
        return await unit(rest, io);
      } catch (err) {
        io.err(`maas-ha-guard unit: ${messageOf(err)}`);
        return exitCodeOf(err);
      }
    }
    if (cmd !== 'check' && cmd !== 'start-check' && cmd !== 'watch') throw new UsageError(`unknown command "${cmd}"`);
    const spec = { ...COMMON, json: { type: 'bool' }, 'interval-ms': { type: 'int' } } as const;
    const { values } = parseFlags(rest, spec);
    if (values.help) {
      io.out(GUARD_USAGE);
      return 0;
    }
    if (values.json && cmd !== 'check') throw new UsageError(`--json: only for check`);
    if (values['interval-ms'] !== undefined && cmd !== 'watch') throw new UsageError(`--interval-ms: only for watch`);
    const dryRun = values['dry-run'] ?? false;
    if (process.getuid?.() === 0 && !dryRun) {
      throw new UsageError(
        `run me as the PostgreSQL owner, not root (pg_ctl refuses root, and standby.signal must belong to PostgreSQL's user): runuser -u postgres -- maas-ha-guard ${argv.join(' ')}`,
      );
    }
    preloadPg();
    const config = await loadConfigFast(configPath(values.config, process.env));
    const node = findNode(config, { node: values.node, dataDirectory: values['data-directory'] }, thisHost());
    log = createLog('guard', runId, config.log_level);
    const deps: GuardDeps = {
      config,
      log,
      shell: createShell(),
      pg: createPg(config.postgres, 'maas-ha-guard'),
      clock: systemClock,
      files: createGuardFiles(),
    };
    if (cmd === 'watch') return await watchCommand(deps, node, intervalOf(values['interval-ms']), dryRun);
    return await once(deps, node, cmd, { dryRun, json: values.json ?? false }, io);
  } catch (err) {
    const code = exitCodeOf(err);
    const message = err instanceof ConfigError || err instanceof UsageError ? err.message : messageOf(err);
    log.error({ step: code === 2 ? 'arguments' : 'done', outcome: 'failed' }, `maas-ha-guard ${cmd ?? ''}: ${message}`);
    return code;
  }
}

async function once(deps: GuardDeps, node: NodeConfig, mode: GuardMode, opts: { dryRun: boolean; json: boolean }, io: GuardIo): Promise<number> {
  const started = deps.clock.now();
  const r = await runGuard(deps, node, mode, opts);
  const ms = deps.clock.now() - started;
  const level = r.ok ? r.plan.level : 'error';
  deps.log[level]({ step: 'done', node_id: node.id, outcome: r.ok ? 'ok' : 'failed', duration_ms: ms }, `guard ${mode} ${r.ok ? 'done' : 'failed'} in ${(ms / 1000).toFixed(2)} s: ${r.summary}`);
  if (opts.json) io.out(JSON.stringify(runJson(node, mode, r), null, 2));
  else if (opts.dryRun) io.out(r.summary);
  return r.ok ? 0 : 1;
}

async function watchCommand(deps: GuardDeps, node: NodeConfig, intervalMs: number, dryRun: boolean): Promise<number> {
  const abort = new AbortController();
  const stop = (signal: string) => {
    deps.log.info({ step: 'watch', node_id: node.id }, `guard watch: ${signal}, stopping after this check`);
    abort.abort();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.once('SIGTERM', onTerm);
  process.once('SIGINT', onInt);
  deps.log.info({ step: 'watch', node_id: node.id, outcome: 'started' }, `guard watch started: node ${node.id} (${node.hostname}:${node.port}, ${node.data_directory}) every ${intervalMs} ms${dryRun ? ', dry run' : ''}`);
  try {
    await watch(deps, node, {
      intervalMs,
      dryRun,
      stopped: () => abort.signal.aborted,
      sleep: (ms) => delay(ms, undefined, { signal: abort.signal }).catch(() => {}),
    });
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
  deps.log.info({ step: 'watch', node_id: node.id, outcome: 'ok' }, `guard watch of node ${node.id} stopped`);
  return 0;
}

async function unit(argv: string[], io: GuardIo): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      ...COMMON,
      path: { type: 'bool' },
      bin: { type: 'string' },
      nodejs: { type: 'string' },
      user: { type: 'string' },
      'interval-ms': { type: 'int' },
      'unit-dir': { type: 'string' },
    },
    { positionals: 1 },
  );
  if (values.help) {
    io.out(GUARD_USAGE);
    return 0;
  }
  const which = positionals[0];
  if (which !== 'start-check' && which !== 'watch') throw new UsageError(`unit: expected "unit start-check" or "unit watch", got "${which ?? ''}"`);
  const file = resolve(configPath(values.config, process.env));
  const config = await loadConfigFast(file);
  const o = {
    node: findNode(config, { node: values.node, dataDirectory: values['data-directory'] }, thisHost()),
    guardBin: values.bin ?? process.argv[1] ?? '',
    nodejs: values.nodejs ?? process.execPath,
    configPath: file,
    user: values.user ?? 'postgres',
    intervalMs: intervalOf(values['interval-ms']),
    ...(values['unit-dir'] ? { unitDir: values['unit-dir'] } : {}),
  };
  const u = which === 'start-check' ? startCheckDropIn(o) : watchService(o);
  io.out(values.path ? u.path : u.text.replace(/\n$/, ''));
  return 0;
}
