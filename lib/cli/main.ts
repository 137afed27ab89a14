// The CLI's dispatch: one function per command, each parsing its own flags strictly (an unknown flag is an error
// that names it) and returning an exit code. Output goes through `out` so tests can capture it. `--help`/`-h`
// anywhere on the line is answered here, before any command sees its argv (lib/cli/help.ts has every command's usage, lib/hook-help.ts the hooks').

import { readFileSync } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_PATH, configPath, loadConfig, nodeIo, parseConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { checkedPath } from '../config/checked.ts';
import { writeChecked } from '../adapters/checked-copy.ts';
import { createLog, newRunId } from '../adapters/log.ts';
import { createDeps } from '../wiring.ts';
import { ConfigError, UsageError, exitCodeOf, messageOf } from '../errors.ts';
import { renderLogLine } from '../log-render.ts';
import { gatherStatus, renderStatus, statusJson } from '../status.ts';
import { gatherPreflight, renderFindings, type PgpoolHost } from '../preflight.ts';
import { runningPgpool } from '../adapters/proc.ts';
import { planSwitchover, runSwitchover } from '../switchover.ts';
import { renderHookLines } from '../pgpool/conf.ts';
import { labDown, labIsUp, labUp, readLabOptions } from '../lab/lab.ts';
import { labPaths, type LabOptions } from '../lab/layout.ts';
import { runDrill, renderDrill } from '../lab/drill.ts';
import { describeFailoverPlan, planFailover } from '../failover/plan.ts';
import { journalName, resumeFrom } from '../failover/journal.ts';
import { formatLsn } from '../model/lsn.ts';
import { judgePrimaries, observeAll } from '../observe.ts';
import { helpFor, USAGE } from './help.ts';
import { recoverCommand } from './recover.ts';
import { parseFlags, wantsHelp, type FlagsSpec } from '../flags.ts';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIo: CliIo = { out: (t) => process.stdout.write(`${t}\n`), err: (t) => process.stderr.write(`${t}\n`) };

type Options = Readonly<Record<string, { type: 'string' | 'boolean' }>>;
type OptionValues<O extends Options> = { [K in keyof O | 'config']?: K extends keyof O ? (O[K]['type'] extends 'boolean' ? boolean : string) : string };

/** The commands' flags, every one with --config, through the one parser (lib/flags.ts). */
function flags<O extends Options>(argv: string[], options: O, positionals = 0): { values: OptionValues<O>; positionals: string[] } {
  const spec: FlagsSpec = Object.fromEntries(
    Object.entries({ ...options, config: { type: 'string' } }).map(([name, o]) => [name, { type: o.type === 'boolean' ? 'bool' : 'string' }]),
  );
  return parseFlags(argv, spec, { positionals }) as { values: OptionValues<O>; positionals: string[] };
}

/** The checkout or install root: dist/bin/maas-ha.mjs when bundled, hooks/maas-ha.ts under tsx. */
function installRoot(selfUrl: string): string {
  const here = dirname(fileURLToPath(selfUrl));
  return basename(here) === 'hooks' ? resolve(here, '..') : resolve(here, '../..');
}

/** The file's text; a file that cannot be read is reported by the loader, as a ConfigError (exit 2). */
function readConfigText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    loadConfig(path);
    throw new Error(`${path}: cannot be read`);
  }
}

function loadFor(configFlag: string | undefined) {
  return loadConfig(configPath(configFlag, process.env));
}

declare const __MAAS_HA_VERSION__: string | undefined;

/** package.json's version: put into the bundle by build.mjs; read from the checkout when run unbundled (tsx). */
function version(): string {
  if (typeof __MAAS_HA_VERSION__ === 'string') return __MAAS_HA_VERSION__;
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function runCli(argv: string[], selfUrl: string, io: CliIo = defaultIo): Promise<number> {
  // Before anything else: a command asked for help only prints its usage (it loads no configuration, starts or
  // removes nothing), whatever else the line says, an unknown or malformed flag included.
  if (wantsHelp(argv)) {
    io.out(helpFor(argv));
    return 0;
  }
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'status':
        return await status(rest, io);
      case 'preflight':
        return await preflight(rest, io, selfUrl);
      case 'switchover':
        return await switchover(rest, io);
      case 'plan':
        return await plan(rest, io);
      case 'config':
        return configCmd(rest, io, selfUrl);
      case 'log':
        return logCmd(rest, io);
      case 'history':
        // Loaded only when asked for, like the VIP commands: the maas-ha bundle is also a hook (ip up, arping).
        return await (await import('./history.ts')).historyCommand(rest, io);
      case 'maintenance':
        return await (await import('./maintenance.ts')).maintenanceCommand(rest, io, selfUrl);
      case 'metrics':
        return await (await import('./metrics.ts')).metricsCommand(rest, io);
      case 'recover':
        // The progress bar redraws itself on a terminal; a captured io (tests) gets plain lines.
        return await recoverCommand(rest, io === defaultIo ? { ...io, write: (t) => process.stdout.write(t), tty: process.stdout.isTTY === true } : io, selfUrl);
      case 'lab':
        // The VIP lab's code (and its CLI) loads only when asked for.
        if (rest[0] === 'vip') return await (await import('./vip.ts')).labVipCommand(rest.slice(1), io, installRoot(selfUrl));
        return await lab(rest, io, selfUrl);
      case 'ip':
        return await (await import('./vip.ts')).ipCommand(rest);
      case 'arping':
        return await (await import('./vip.ts')).arpingCommand(rest);
      case 'vip':
        return await (await import('./vip.ts')).vipCommand(rest, io);
      case 'render':
        // The slave DNS and DHCP renderings and the rack identity (lib/cli/maas.ts) load only when asked for.
        return await (await import('./maas.ts')).renderCommand(rest, io);
      case 'rack':
        return await (await import('./maas.ts')).rackCommand(rest, io);
      case 'help':
        // `maas-ha help lab up` = `maas-ha lab up --help`.
        io.out(helpFor(rest));
        return 0;
      case 'version':
      case '--version':
        if (rest.length) throw new UsageError(`version: takes no arguments, got "${rest[0]}"`);
        io.out(`maas-ha ${version()}`);
        return 0;
      case undefined:
        io.out(USAGE);
        return 2;
      default:
        throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
    }
  } catch (err) {
    io.err(err instanceof ConfigError || err instanceof UsageError ? `maas-ha: ${err.message}` : `maas-ha ${cmd}: ${messageOf(err)}`);
    return exitCodeOf(err);
  }
}

async function status(argv: string[], io: CliIo): Promise<number> {
  const { values } = flags(argv, { json: { type: 'boolean' } });
  const config = loadFor(values.config);
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  const s = await gatherStatus(deps);
  io.out(values.json ? statusJson(s) : renderStatus(s));
  return s.problems.length ? 1 : 0;
}

async function preflight(argv: string[], io: CliIo, selfUrl: string): Promise<number> {
  const { values } = flags(argv, { json: { type: 'boolean' }, 'pgpool-conf': { type: 'string' } });
  const config = loadFor(values.config);
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  // Which pgpool.conf: the one asked for, else the one the running pgpool was started with, else Debian's.
  const running = runningPgpool();
  const confFile = values['pgpool-conf'] ?? running?.conf ?? '/etc/pgpool2/pgpool.conf';
  const how = values['pgpool-conf'] !== undefined ? 'given with --pgpool-conf' : running?.conf ? `the running pgpool's (pid ${running.pid})` : "Debian's default: no running pgpool found";
  let pgpool: PgpoolHost | undefined;
  try {
    const version = await deps.shell.run([running?.exe ?? '/usr/sbin/pgpool', '--version'], { timeoutMs: 5000 });
    pgpool = { text: readFileSync(confFile, 'utf8'), source: `${confFile} (${how})`, versionText: `${version.stdout}${version.stderr}`, user: running?.user };
  } catch (err) {
    if (values['pgpool-conf'] !== undefined) throw new UsageError(`--pgpool-conf: cannot read ${confFile}: ${messageOf(err)}`);
  }
  const template = readFileSync(join(installRoot(selfUrl), 'pgpool', 'hooks.conf'), 'utf8');
  const findings = await gatherPreflight(deps, pgpool, template);
  if (!pgpool) findings.unshift({ area: 'pgpool.conf', level: 'warn', what: `${confFile} (${how}) not found on this host: its settings were not checked`, fix: 'run preflight on a pgpool host, or pass --pgpool-conf FILE' });
  io.out(values.json ? JSON.stringify(findings, null, 2) : renderFindings(findings));
  return findings.some((f) => f.level === 'fail') ? 1 : 0;
}

async function switchover(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = flags(argv, { timeout: { type: 'string' }, force: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } }, 1);
  const node = Number(positionals[0]);
  if (positionals[0] === undefined || !/^\d+$/.test(positionals[0])) throw new UsageError(`switchover: expected a node id, got "${positionals[0] ?? ''}"`);
  const timeoutS = values.timeout === undefined ? 120 : Number(values.timeout);
  if (!Number.isInteger(timeoutS) || timeoutS < 5 || timeoutS > 3600) throw new UsageError(`--timeout: expected seconds from 5 to 3600, got "${values.timeout}"`);
  if (values.json && !values['dry-run']) throw new UsageError('--json: only with --dry-run (a running switchover prints each change as it happens)');
  const deps = createDeps(loadFor(values.config), createLog('cli', newRunId(), 'warn'));
  if (values['dry-run']) {
    const { decision } = await planSwitchover(deps, node, values.force ?? false);
    if (values.json) io.out(JSON.stringify({ node, ...decision }, null, 2));
    else if (decision.kind === 'refuse') io.out(`would refuse: ${decision.why}`);
    else io.out([`would switch the primary from node ${decision.from} to node ${node}${decision.despite ? ` despite: ${decision.despite}` : ''}:`, ...decision.steps.map((x, i) => `  ${i + 1}. ${x}`), 'nothing was changed (--dry-run)'].join('\n'));
    return decision.kind === 'refuse' ? 1 : 0;
  }
  const r = await runSwitchover(deps, node, { timeoutMs: timeoutS * 1000, force: values.force ?? false }, (l) => io.out(l));
  if (r.ok) {
    const followers = r.status.rows.filter((x) => x.id !== node).map((x) => x.id);
    io.out(`switchover done in ${r.seconds.toFixed(1)} s: node ${node} is the primary, node${followers.length === 1 ? '' : 's'} ${followers.join(' and ')} follow${followers.length === 1 ? 's' : ''} it`);
    return 0;
  }
  io.out(`switchover NOT finished after ${timeoutS} s; the cluster now:\n${renderStatus(r.status)}`);
  return 1;
}

async function plan(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = flags(argv, { json: { type: 'boolean' }, failed: { type: 'string' } }, 1);
  if (positionals[0] !== 'failover') throw new UsageError('plan: expected "plan failover"');
  if (values.failed !== undefined && !/^\d+$/.test(values.failed)) throw new UsageError(`--failed: expected a node id, got "${values.failed}"`);
  const config = loadFor(values.config);
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  const obs = await observeAll(deps, 3000);
  const fenced = deps.state.fenced();
  // The node whose loss is planned: the current primary by the one rule, or the one asked for.
  const judged = judgePrimaries(obs, { fenced: fenced.map((m) => m.node) });
  const failed = values.failed !== undefined ? Number(values.failed) : judged.current;
  if (failed === undefined) {
    io.err(`maas-ha plan failover: no current primary to plan the loss of (${judged.why}); name one with --failed N`);
    return 1;
  }
  if (!config.nodes.some((n) => n.id === failed)) throw new UsageError(`--failed: node ${failed} is not in ${config.source}`);
  const resume = resumeFrom(deps.state.readJournal(journalName(failed)), failed, failed, Date.now());
  const facts = { config, failedNode: failed, oldPrimary: failed, observations: obs.filter((o) => o.id !== failed), resume, fenced };
  // The fence order depends on the old primary's port at the moment of the failure: show both cases.
  const gone = planFailover({ ...facts, oldPort: 'refused' });
  const alive = planFailover({ ...facts, oldPort: 'open' });
  if (values.json) {
    io.out(JSON.stringify({ failed, current_primary: judged, if_postmaster_gone: gone, if_still_answering: alive }, (_, v) => (typeof v === 'bigint' ? formatLsn(v) : v), 2));
  } else {
    io.out(`if primary node ${failed} were lost now (its postmaster gone):`);
    for (const l of describeFailoverPlan(gone, failed)) io.out(`  ${l}`);
    io.out(`if it still answered, or its host were silent: ${alive.fence.why}; then the standbys are compared again after its fence.`);
  }
  return gone.decision.kind === 'none' ? 1 : 0;
}

function configCmd(argv: string[], io: CliIo, selfUrl: string): number {
  const { values, positionals } = flags(argv, { bindir: { type: 'string' }, json: { type: 'boolean' } }, 2);
  if (values.json && positionals[0] !== 'check') throw new UsageError('--json: only config check reports');
  switch (positionals[0]) {
    case 'check': {
      const path = configPath(values.config, process.env);
      let text: string;
      let config: Config;
      try {
        text = readConfigText(path);
        // One read: the copy pairs exactly the text that was validated with its result.
        config = parseConfig(text, path, nodeIo);
      } catch (err) {
        // --json: the same problems as data (one per line of the text report), the same exit code (2).
        if (values.json && err instanceof ConfigError) io.out(JSON.stringify({ ok: false, source: err.source, problems: err.problems }, null, 2));
        throw err;
      }
      // The copy hooks start from without loading the YAML parser (lib/config/checked.ts).
      const why = writeChecked(path, text, config);
      if (values.json) {
        const nodes = config.nodes.map((n) => ({ id: n.id, name: n.name, hostname: n.hostname, port: n.port }));
        io.out(JSON.stringify({ ok: true, source: config.source, nodes, checked_copy: why ? null : checkedPath(path), ...(why ? { note: `no checked copy written (${why}): hooks will parse the YAML on every run` } : {}) }, null, 2));
        return 0;
      }
      io.out(`${config.source}: ok (${config.nodes.length} nodes: ${config.nodes.map((n) => `${n.id}=${n.hostname}:${n.port}`).join(', ')})`);
      io.out(why ? `note: no checked copy written (${why}): hooks will parse the YAML on every run` : `checked copy: ${checkedPath(path)}`);
      return 0;
    }
    case 'get': {
      // `maas-ha config get state_dir`: one value of the validated file, for scripts (install.sh).
      const key = positionals[1];
      if (!key) throw new UsageError('config get: expected a key, e.g. "config get state_dir"');
      const value = key.split('.').reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), loadFor(values.config));
      if (value === undefined || (typeof value === 'object' && value !== null)) throw new UsageError(`config get: ${key} is not a setting with a single value`);
      io.out(String(value));
      return 0;
    }
    case 'render-pgpool': {
      const template = readFileSync(join(installRoot(selfUrl), 'pgpool', 'hooks.conf'), 'utf8');
      // The hooks run with pgpool's environment: a configuration anywhere but the default is named in the lines.
      const path = configPath(values.config, process.env);
      io.out(renderHookLines(template, values.bindir ?? '/usr/local/bin', path === DEFAULT_CONFIG_PATH ? undefined : path));
      return 0;
    }
    default:
      throw new UsageError('config: expected "config check", "config get KEY" or "config render-pgpool"');
  }
}

function logCmd(argv: string[], io: CliIo): number {
  const { positionals } = flags(argv, {}, 1);
  const text = readFileSync(positionals[0] ?? 0, 'utf8');
  for (const line of text.split('\n')) if (line) io.out(renderLogLine(line));
  return 0;
}

async function lab(argv: string[], io: CliIo, selfUrl: string): Promise<number> {
  const { values, positionals } = flags(
    argv,
    {
      nodes: { type: 'string' },
      net: { type: 'string' },
      dir: { type: 'string' },
      sync: { type: 'string' },
      purge: { type: 'boolean' },
      json: { type: 'boolean' },
      cycles: { type: 'string' },
    },
    1,
  );
  const dir = values.dir ?? process.env.MAAS_HA_LAB_DIR ?? '/var/lib/maas-ha-lab';
  const number = (flag: string, raw: string | undefined, dflt: number, min: number, max: number) => {
    const n = raw === undefined ? dflt : Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${flag}: expected a number from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  const sync = values.sync ?? 'any';
  if (sync !== 'any' && sync !== 'off') throw new UsageError(`--sync: expected "any" or "off", got "${sync}"`);
  const root = installRoot(selfUrl);
  const wanted: LabOptions = {
    dir,
    nodes: number('nodes', values.nodes, 3, 2, 9),
    net: number('net', values.net, 0, 0, 255),
    hookBinDir: join(root, 'dist', 'bin'),
    hooksTemplate: join(root, 'pgpool', 'hooks.conf'),
    pgBinDir: '/usr/lib/postgresql/15/bin',
    synchronous: sync,
  };
  // After `lab up`, the lab's own record of its options is what the other subcommands act on.
  const o = positionals[0] === 'up' ? wanted : (readLabOptions(dir) ?? wanted);
  const say = (l: string) => io.out(l);
  const labStatus = async (json = false) => {
    if (!labIsUp(o)) {
      io.out(json ? JSON.stringify({ running: false, dir: o.dir }) : `no lab is running in ${o.dir} (start one with: maas-ha lab up)`);
      return 1;
    }
    return status(['--config', labPaths(o.dir).config, ...(json ? ['--json'] : [])], io);
  };
  switch (positionals[0]) {
    case 'up':
      await labUp(o, say);
      return labStatus();
    case 'status':
      return labStatus(values.json ?? false);
    case 'down':
      await labDown(o, say, { purge: values.purge ?? false });
      return 0;
    case 'drill': {
      // With --json, stdout carries only the result; progress goes to stderr.
      const progress = values.json ? (l: string) => io.err(l) : say;
      if (!labIsUp(o)) await labUp(o, progress);
      const result = await runDrill(o, progress);
      if (values.json) {
        io.out(JSON.stringify(result, null, 2));
      } else {
        io.out(renderDrill(result));
        await labStatus();
        if (result.promoted_node !== null) {
          io.out(`node ${result.killed_node} stays down, fenced; to bring it back as a standby: maas-ha recover ${result.killed_node} --config ${labPaths(o.dir).config}`);
        }
      }
      return result.ok ? 0 : 1;
    }
    case 'soak': {
      const cycles = number('cycles', values.cycles, 10, 1, 10_000);
      // One line per cycle as it ends; with --json they go to stderr and stdout carries only the result.
      const progress = values.json ? (l: string) => io.err(l) : say;
      const { runSoak, renderSoak } = await import('../lab/soak.ts');
      const result = await runSoak(o, cycles, progress);
      io.out(values.json ? JSON.stringify(result, null, 2) : renderSoak(result));
      return result.ok ? 0 : 1;
    }
    default:
      throw new UsageError('lab: expected "lab up", "lab status", "lab drill", "lab soak" or "lab down"');
  }
}
