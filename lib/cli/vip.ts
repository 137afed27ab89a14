// The VIP commands of the `maas-ha` executable, loaded only when one of them runs (the bundle keeps them in their
// own chunk, so pgpool's if_up_cmd/arping_cmd start as fast as the CLI does):
//   maas-ha ip up|down VIP    pgpool's if_up_cmd/if_down_cmd (exec'd by pgpool's watchdog utility process as
//                             postgres, no shell, no PATH; pgpool logs "failed to acquire/release the delegate
//                             IP" on a non-zero exit and does nothing else about it)
//   maas-ha arping VIP        pgpool's arping_cmd, run after if_up_cmd succeeded (same caller and user)
//   maas-ha vip check|plan|fence|fence-file|sudoers    for operators and install.sh
//   maas-ha lab vip ...       the VIP lab (test tooling)

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createNet } from '../adapters/net.ts';
import { systemClock } from '../adapters/clock.ts';
import { createShell } from '../adapters/exec.ts';
import { makeRootDirectory, SafeWriteError, writeFileSafely } from '../adapters/safe-write.ts';
import { configPath, loadConfig } from '../config/load.ts';
import type { Config, VipConfig } from '../config/types.ts';
import { ConfigError, OperationError, UsageError } from '../errors.ts';
import { runHook } from '../hook.ts';
import { runChecks } from '../vip/checks.ts';
import { describePlan, observeHost, runArping, runIpDown, runIpUp, vipPlanReport } from '../vip/escalate.ts';
import { fenceOffArgv, fenceOnArgv, fenceRuleset, fenceStatusArgv, interpretFenceOff, interpretFenceStatus } from '../vip/fence.ts';
import { failure } from '../vip/host.ts';
import { renderSudoers } from '../vip/sudoers.ts';
import { compareSoa, observeSoa } from '../maas/slave-dns.ts';
import { parseFlags } from '../flags.ts';
import { shJoin } from '../shquote.ts';
import type { CliIo } from './main.ts';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function requireVip(config: Config): VipConfig {
  if (!config.vip) throw new ConfigError(config.source, ['vip: required for this command (see pgpool/maas-ha.example.yaml)']);
  return config.vip;
}

/** pgpool passes $_IP_$ (its delegate_IP); maas-ha acts on vip.address, so the two must agree. */
function sameVip(vip: VipConfig, given: string): void {
  if (given !== vip.address) throw new UsageError(`pgpool's delegate_IP ${given} is not vip.address ${vip.address} of the maas-ha configuration`);
}

function vipArg(argv: string[], what: string): string {
  if (argv.length !== 1 || !IPV4.test(argv[0] ?? '')) throw new UsageError(`${what}: expected exactly one argument, the VIP ($_IP_$), got ${JSON.stringify(argv)}`);
  return argv[0]!;
}

/** Runs a hook body through runHook (config, log, budget, notification) and returns the exit code it set. */
async function hook(name: 'ip_up' | 'ip_down' | 'arping', argv: string[], body: Parameters<typeof runHook<string>>[3]): Promise<number> {
  await runHook(name, argv, (a) => vipArg(a, name === 'arping' ? 'maas-ha arping' : `maas-ha ip ${name === 'ip_up' ? 'up' : 'down'}`), body);
  return Number(process.exitCode ?? 0);
}

export async function ipCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'up' && sub !== 'down') throw new UsageError('ip: expected "ip up VIP" or "ip down VIP"');
  return hook(sub === 'up' ? 'ip_up' : 'ip_down', rest, async ({ deps }, given) => {
    const vip = requireVip(deps.config);
    sameVip(vip, given);
    const r = sub === 'up' ? await runIpUp(deps, vip) : await runIpDown(deps, vip);
    return { ok: r.ok, summary: r.summary, timeline: r.ok ? [] : r.timeline.events };
  });
}

export async function arpingCommand(argv: string[]): Promise<number> {
  return hook('arping', argv, async ({ deps, remainingMs }, given) => {
    const vip = requireVip(deps.config);
    sameVip(vip, given);
    const r = await runArping({ ...deps, net: deps.net ?? createNet() }, vip, remainingMs());
    return { ok: r.ok, summary: `${r.mode === 'whole' ? 'whole escalation (no escalation hook ran): ' : ''}${r.summary}`, timeline: r.timeline.events };
  });
}

export async function vipCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { config: { type: 'string' }, json: { type: 'bool' }, 'timeout-ms': { type: 'int' }, target: { type: 'string' }, write: { type: 'bool' }, user: { type: 'string' }, 'dry-run': { type: 'bool' } },
    { positionals: 2 },
  );
  const dryRun = values['dry-run'] ?? false;
  const changes = (positionals[0] === 'fence' && (positionals[1] === 'on' || positionals[1] === 'off')) || (positionals[0] === 'fence-file' && values.write);
  if (dryRun && !changes) throw new UsageError('--dry-run: only for vip fence on|off and vip fence-file --write (the other vip commands change nothing)');
  const config = loadConfig(configPath(values.config, process.env));
  const vip = requireVip(config);
  const shell = createShell();
  switch (positionals[0]) {
    case 'check': {
      if (values.target !== undefined && !IPV4.test(values.target)) throw new UsageError(`--target: expected an IPv4 address, got "${values.target}"`);
      const net = createNet();
      const [checks, secondaries] = await Promise.all([
        runChecks(vip, net, systemClock, { ...(values.target ? { target: values.target } : {}), ...(values['timeout-ms'] ? { timeoutMs: values['timeout-ms'] } : {}) }),
        // Each secondary DNS has every zone at the primary's serial (lib/maas/slave-dns.ts).
        vip.slave_dns ? observeSoa(net, vip, vip.slave_dns, vip.slave_dns.zones).then((o) => compareSoa(vip.slave_dns!.zones, o)) : Promise.resolve([]),
      ]);
      if (values.json) io.out(JSON.stringify({ target: values.target ?? vip.address, checks, secondaries }, null, 2));
      else {
        for (const c of checks) io.out(`${c.ok ? 'ok    ' : 'FAILED'} ${c.check.padEnd(5)} ${c.detail}`);
        for (const f of secondaries) io.out(`${f.ok ? 'ok    ' : 'FAILED'} soa   ${f.server}: ${f.detail}${f.fix ? ` → ${f.fix}` : ''}`);
      }
      return checks.every((c) => c.ok) && secondaries.every((f) => f.ok) ? 0 : 1;
    }
    case 'plan': {
      const report = vipPlanReport(vip, await observeHost({ shell }, vip));
      io.out(values.json ? JSON.stringify(report, null, 2) : describePlan(report));
      return 0;
    }
    case 'fence': {
      const action = positionals[1];
      if (dryRun) {
        const argv = action === 'on' ? fenceOnArgv(vip) : fenceOffArgv(vip);
        io.out(`would run: ${shJoin(argv)}\n(${action === 'on' ? `${vip.fence.users.join(', ')} could no longer reach ports ${vip.fence.ports.join(', ')}` : 'the fence table removed'}); nothing was changed (--dry-run)`);
        return 0;
      }
      if (action === 'on') {
        const r = await shell.run(fenceOnArgv(vip), { timeoutMs: 10_000 });
        if (r.exitCode !== 0) throw new UsageError(`fence on: ${failure(r)}`);
        io.out(`fenced: ${vip.fence.users.join(', ')} cannot reach ports ${vip.fence.ports.join(', ')}`);
        return 0;
      }
      if (action === 'off') {
        const f = interpretFenceOff(await shell.run(fenceOffArgv(vip), { timeoutMs: 10_000 }));
        io.out(`fence ${f.detail}`);
        return f.ok ? 0 : 1;
      }
      if (action === 'status') {
        const s = interpretFenceStatus(await shell.run(fenceStatusArgv(vip), { timeoutMs: 10_000 }));
        io.out(values.json ? JSON.stringify({ fence: s }) : `fence ${s}`);
        return s === 'unknown' ? 1 : 0;
      }
      throw new UsageError('vip fence: expected on, off or status');
    }
    case 'fence-file': {
      const text = fenceRuleset(vip);
      if (!values.write) {
        io.out(text.trimEnd());
        return 0;
      }
      // Idempotent, for install.sh: an unchanged file is left alone and said to be. Root writes it and the sudoers
      // drop-in lets postgres run `nft -f` of it as root, so it must sit where only root can change it; the write
      // never follows a link anyone planted (lib/adapters/safe-write.ts).
      try {
        // A dry run makes the same checks and comparison as the write (lib/adapters/safe-write.ts), then stops.
        if (!dryRun) makeRootDirectory(dirname(vip.fence.file));
        else if (!existsSync(dirname(vip.fence.file))) {
          io.out(`would create ${dirname(vip.fence.file)} and write ${vip.fence.file} (root-owned, mode 0644); nothing was changed (--dry-run)`);
          return 0;
        }
        const outcome = writeFileSafely(vip.fence.file, text, { mode: 0o644, owner: { uid: 0, gid: 0 }, rootDirectory: true, dryRun });
        io.out(
          outcome === 'unchanged'
            ? `${vip.fence.file} unchanged${dryRun ? ': nothing to write' : ''}`
            : outcome === 'would-write'
              ? `would write ${vip.fence.file} (root-owned, mode 0644); nothing was changed (--dry-run)`
              : `wrote ${vip.fence.file}`,
        );
      } catch (err) {
        if (err instanceof SafeWriteError) throw new OperationError(`vip.fence.file: ${err.message}`, { cause: err });
        throw err;
      }
      return 0;
    }
    case 'sudoers': {
      io.out(renderSudoers(vip, values.user ?? 'postgres', config.source).trimEnd());
      return 0;
    }
    default:
      throw new UsageError('vip: expected check, plan, fence on|off|status, fence-file [--write] or sudoers [--user U]');
  }
}

export async function labVipCommand(argv: string[], io: CliIo, root: string): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      net: { type: 'int' },
      dir: { type: 'string' },
      purge: { type: 'bool' },
      mode: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'int' },
      out: { type: 'string' },
      'max-ms': { type: 'int' },
      json: { type: 'bool' },
    },
    { positionals: 3 },
  );
  const lab = await import('../lab/vip.ts');
  const layout = await import('../lab/vip-layout.ts');
  const standin = await import('../lab/vip-standin.ts');
  const dir = values.dir ?? '/var/lib/maas-ha-test/vip';
  const wanted = {
    dir,
    net: values.net ?? 120,
    hookBinDir: join(root, 'dist', 'bin'),
    watchdogTemplate: join(root, 'pgpool', 'watchdog.conf'),
    pgBinDir: '/usr/lib/postgresql/15/bin',
    mode: labMode(values.mode),
  };
  const o = positionals[0] === 'up' ? wanted : (lab.readVipLabOptions(dir) ?? wanted);
  const rc = () => {
    if (values.host !== 'rc1' && values.host !== 'rc2') throw new UsageError(`--host: expected rc1 or rc2, got "${values.host}"`);
    return values.host;
  };
  switch (positionals[0]) {
    case 'up':
      await lab.vipLabUp(o, (l) => io.out(l));
      io.out(lab.describeVipLabStatus(await lab.vipLabStatus(o)));
      return 0;
    case 'status': {
      const s = await lab.vipLabStatus(o);
      io.out(values.json ? JSON.stringify(s, null, 2) : lab.describeVipLabStatus(s));
      return 0;
    }
    case 'down':
      await lab.vipLabDown(o, (l) => io.out(l), { purge: values.purge ?? false });
      return 0;
    case 'service': {
      const [, action, name] = positionals;
      if (action !== 'start' && action !== 'stop' && action !== 'restart' && action !== 'status') throw new UsageError(`service: unknown action "${action}"`);
      if (!(layout.LAB_SERVICES as readonly string[]).includes(name ?? '')) throw new UsageError(`service: unknown service "${name}" (${layout.LAB_SERVICES.join(', ')})`);
      io.out(await standin.labService(o, rc(), name as never, action));
      return 0;
    }
    case 'rackd': {
      // The cluster controller's rack stand-in (lib/lab/vip-standin.ts): run is the process itself, the others
      // what systemctl is for it.
      const action = positionals[1];
      if (action === 'run') return standin.runRackd(o);
      if (action !== 'start' && action !== 'stop' && action !== 'restart') throw new UsageError(`rackd: expected start, stop, restart or run, got "${action ?? ''}"`);
      io.out(await standin.labRackd(o, action));
      return 0;
    }
    case 'serve-api':
      standin.serveApi(rc(), values.port ?? layout.API_PORT);
      await new Promise(() => {});
      return 0;
    case 'campaign': {
      // The fault campaign's writer and probe, run inside the client namespace (lib/lab/campaign.ts, runCampaignAgent).
      const { runCampaignAgent } = await import('../lab/campaign.ts');
      const stopRequested = new Promise<void>((resolve) => {
        process.stdin.setEncoding('utf8').on('data', (d: string) => d.includes('stop') && resolve());
        process.stdin.on('end', () => resolve());
      });
      await runCampaignAgent(layout.vipCampaignTarget(o), { maxMs: values['max-ms'] }, { write: (l) => io.out(l), stopRequested });
      return 0;
    }
    case 'serve-sink':
      if (!values.out) throw new UsageError('--out: missing (required)');
      standin.serveSink(values.port ?? layout.SINK_PORT, values.out);
      await new Promise(() => {});
      return 0;
    default:
      throw new UsageError('lab vip: expected up [--net K] [--dir D], status, down [--purge]');
  }
}


function labMode(v: string | undefined): 'active-passive' | 'active-active' {
  if (v === undefined || v === 'active-passive' || v === 'active-active') return v ?? 'active-passive';
  throw new UsageError(`--mode: expected active-passive or active-active, got "${v}"`);
}
