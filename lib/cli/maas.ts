// `maas-ha render dns|dhcp` and `maas-ha rack backup|restore|check`: the parts of the region and rack controller
// setup that used to be done by hand (docs/maas.md). Parse, call the use case in lib/maas, print. Loaded only when
// one of these commands runs.

import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { systemClock } from '../adapters/clock.ts';
import { createShell } from '../adapters/exec.ts';
import { hostFileSystem } from '../adapters/host-files.ts';
import { createNet } from '../adapters/net.ts';
import { createPg } from '../adapters/pg.ts';
import { SafeWriteError } from '../adapters/safe-write.ts';
import { configPath, DEFAULT_CONFIG_PATH, loadConfig } from '../config/load.ts';
import type { Config, MaasConfig, MaasFlavour, SlaveDnsConfig, VipConfig } from '../config/types.ts';
import { ConfigError, OperationError, UsageError } from '../errors.ts';
import { patchDhcpTemplate, subnetCommands, TemplateError } from '../maas/dhcp.ts';
import { installChecked } from '../maas/install.ts';
import { maasOf, rackLayout } from '../maas/layout.ts';
import { checkRack, octal, type RackFinding } from '../maas/rack.ts';
import { backupRack, planRackRestore, readArchive, readIdentity, restoreRack, type RackDeps } from '../maas/rack-run.ts';
import { renderMasterSnippet, renderSecondaryConf } from '../maas/slave-dns.ts';
import { readMaasRows, zonesFromRows } from '../maas/zones.ts';
import { observeHost } from '../vip/escalate.ts';
import { parseFlags } from '../flags.ts';
import type { CliIo } from './main.ts';

const FLAVOURS: readonly MaasFlavour[] = ['maas-1', 'maas-2-deb', 'maas-3-deb', 'maas-snap'];
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function requireVip(config: Config): VipConfig {
  if (!config.vip) throw new ConfigError(config.source, ['vip: required for this command (see pgpool/maas-ha.example.yaml)']);
  return config.vip;
}

function requireSlaveDns(config: Config, vip: VipConfig): SlaveDnsConfig {
  if (!vip.slave_dns) throw new ConfigError(config.source, ['vip.slave_dns: required for render dns (key_file and zones at least; docs/maas.md, "Slave DNS")']);
  return vip.slave_dns;
}


/** The region controller the rendering is for: --host (name or address), else the one whose address is local. */
async function whichRegion(vip: VipConfig, host: string | undefined): Promise<{ name: string; address: string }> {
  if (host !== undefined) {
    const rc = vip.region_controllers.find((r) => r.name === host || r.address === host);
    if (!rc) throw new UsageError(`--host: "${host}" is not in vip.region_controllers (${vip.region_controllers.map((r) => `${r.name}=${r.address}`).join(', ')})`);
    return rc;
  }
  const view = await observeHost({ shell: createShell() }, vip);
  if (!view.self) throw new UsageError(`this host has none of the addresses of vip.region_controllers: name the region controller with --host NAME`);
  return view.self;
}

export async function renderCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    { config: { type: 'string' }, host: { type: 'string' }, 'from-maas-db': { type: 'bool' }, write: { type: 'bool' }, 'dry-run': { type: 'bool' }, json: { type: 'bool' } },
    { positionals: 1 },
  );
  const what = positionals[0];
  if (what !== 'dns' && what !== 'dhcp') throw new UsageError('render: expected "render dns" or "render dhcp"');
  if (values['dry-run'] && !values.write) throw new UsageError('--dry-run: only with --write (without --write nothing is changed anyway)');
  const config = loadConfig(configPath(values.config, process.env));
  const maas = maasOf(config);
  const rows = values['from-maas-db'] ? await readMaasRows({ pg: createPg(config.postgres), config }, maas.database) : undefined;
  return what === 'dns' ? renderDns(config, maas, values, rows, io) : renderDhcp(config, maas, values, rows, io);
}

type RenderFlags = { host?: string | undefined; write?: boolean | undefined; 'dry-run'?: boolean | undefined; json?: boolean | undefined };
type Rows = Awaited<ReturnType<typeof readMaasRows>> | undefined;

async function renderDns(config: Config, maas: MaasConfig, values: RenderFlags, rows: Rows, io: CliIo): Promise<number> {
  const vip = requireVip(config);
  const slave = requireSlaveDns(config, vip);
  const self = await whichRegion(vip, values.host);
  const fromDb = rows ? zonesFromRows(rows.domains, rows.subnets) : undefined;
  const zones = fromDb ? fromDb.zones : slave.zones;
  if (zones.length === 0) throw new OperationError(`the MAAS database on ${rows?.node} has no authoritative domain and no subnet: no zone to serve`);
  const conf = renderSecondaryConf({ slave, self, regionControllers: vip.region_controllers, vipAddress: vip.address, zones });
  const snippet = renderMasterSnippet(vip, slave, maas.flavour);
  const source = rows ? `the MAAS database on ${rows.node}` : `${config.source} (vip.slave_dns.zones)`;
  if (values.json && !values.write) {
    io.out(JSON.stringify({ host: self, zones, zones_from: source, skipped: fromDb?.skipped ?? [], primary: slave.primary, forwarders: slave.forwarders, allow_query: slave.allow_query, conf_file: slave.conf_file, conf, master_snippet: snippet }, null, 2));
    return 0;
  }
  if (!values.write) {
    io.out(`// ${slave.conf_file} for ${self.name}; zones from ${source}`);
    for (const s of fromDb?.skipped ?? []) io.out(`// skipped ${s}`);
    io.out(conf);
    io.out(snippet);
    return 0;
  }
  const now = hostFileSystem.read(slave.conf_file);
  if (values['dry-run']) {
    io.out(now?.text === conf ? `${slave.conf_file} is already this configuration: nothing would change` : `would write ${slave.conf_file} (${now ? 'replacing it' : 'a new file'}, 0644) and check it with ${vip.binaries.named_checkconf}`);
    return 0;
  }
  try {
    // named-checkconf (and named) change into the working directory: it must exist. It takes the owner and group of
    // the directory above it (Debian's /var/cache/bind is root:bind 0775), so bind can keep its zone copies there.
    if (!hostFileSystem.isDir(slave.directory)) hostFileSystem.ensureDir(slave.directory, { ownerFrom: dirname(slave.directory), mode: 0o775 });
    const r = await installChecked({ shell: createShell(), files: hostFileSystem }, slave.conf_file, conf, { mode: 0o644, check: (p) => [vip.binaries.named_checkconf, p], timeoutMs: 10_000 });
    io.out(`${r.outcome === 'unchanged' ? `${slave.conf_file} unchanged` : `wrote ${slave.conf_file}`} (${zones.length} zone${zones.length === 1 ? '' : 's'} from ${source}); ${r.check}`);
  } catch (err) {
    if (err instanceof SafeWriteError) throw new OperationError(`vip.slave_dns.conf_file: ${err.message}`, { cause: err });
    throw err;
  }
  io.out(`the MAAS DNS on every region controller needs, in its options block (then rndc reconfig):\n${snippet}`);
  return 0;
}

async function renderDhcp(config: Config, maas: MaasConfig, values: RenderFlags, rows: Rows, io: CliIo): Promise<number> {
  const servers = maas.dhcp.dns_servers ?? requireVip(config).region_controllers.map((r) => r.address);
  if (maas.flavour !== 'maas-1') {
    if (values.write) throw new UsageError(`--write: MAAS 2.x/3.x keeps DNS servers in the region's database; run the printed commands with a logged-in maas CLI (profile ${maas.dhcp.profile})`);
    const subnets = rows ? rows.subnets.map((s) => s.cidr) : maas.dhcp.subnets;
    if (subnets.length === 0) throw new ConfigError(config.source, ['maas.dhcp.subnets: list the subnets whose DNS servers to set, or use --from-maas-db']);
    const lines = subnetCommands(maas.dhcp.profile, subnets, servers);
    io.out(values.json ? JSON.stringify({ flavour: maas.flavour, dns_servers: servers, commands: lines }, null, 2) : lines.join('\n'));
    return 0;
  }
  const layout = rackLayout(maas);
  const now = hostFileSystem.read(layout.dhcpTemplate);
  if (!now) throw new OperationError(`${layout.dhcpTemplate}: no such file (the MAAS 1.x cluster controller's DHCP template; maas.dhcp.template names another)`);
  let patch;
  try {
    patch = patchDhcpTemplate(now.text, servers, layout.dhcpTemplate);
  } catch (err) {
    if (err instanceof TemplateError) throw new OperationError(err.message);
    throw err;
  }
  if (values.json) {
    io.out(JSON.stringify({ flavour: maas.flavour, template: layout.dhcpTemplate, dns_servers: servers, changed: patch.diff !== '', diff: patch.diff }, null, 2));
    if (!values.write) return 0;
  } else if (!values.write || values['dry-run']) {
    io.out(patch.diff || `${layout.dhcpTemplate} already lists ${servers.join(', ')}`);
  }
  if (!values.write || values['dry-run'] || patch.diff === '') {
    if (values['dry-run'] && patch.diff) io.out(`would back ${layout.dhcpTemplate} up and write it`);
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const backup = `${layout.dhcpTemplate}.maas-ha-${stamp}`;
  const owner = { uid: now.uid, gid: now.gid };
  hostFileSystem.write(backup, now.text, { mode: now.mode, owner });
  hostFileSystem.write(layout.dhcpTemplate, patch.text, { mode: now.mode, owner });
  if (!values.json) io.out(`wrote ${layout.dhcpTemplate} (${patch.lines} line${patch.lines === 1 ? '' : 's'}: domain-name-servers ${servers.join(', ')}); the packaged one is in ${backup}; restart maas-clusterd so MAAS renders dhcpd.conf again`);
  return 0;
}

// ---- rack

/** The configuration when there is one: a rack controller may have none, and then flags and defaults decide. */
function optionalConfig(flag: string | undefined): Config | undefined {
  const path = configPath(flag, process.env);
  if (flag === undefined && process.env.MAAS_HA_CONFIG === undefined && path === DEFAULT_CONFIG_PATH && !existsSync(path)) return undefined;
  return loadConfig(path);
}

function rackDeps(): RackDeps {
  return { shell: createShell(), files: hostFileSystem, net: createNet(), clock: systemClock };
}

const mark = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL' } as const;
const renderRackFindings = (fs: RackFinding[]) => fs.map((f) => `${mark[f.level]}  ${f.what}${f.fix ? `\n      → ${f.fix}` : ''}`).join('\n');

export async function rackCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      config: { type: 'string' },
      root: { type: 'string' },
      flavour: { type: 'string' },
      out: { type: 'string' },
      backup: { type: 'string' },
      vip: { type: 'string' },
      region: { type: 'string', repeatable: true },
      'dry-run': { type: 'bool' },
      json: { type: 'bool' },
    },
    { positionals: 2 },
  );
  const [sub, file] = positionals;
  if (sub !== 'backup' && sub !== 'restore' && sub !== 'check') throw new UsageError('rack: expected "rack backup [--out FILE]", "rack restore FILE [--dry-run]" or "rack check [--backup FILE]"');
  if (sub !== 'restore' && file !== undefined) throw new UsageError(`rack ${sub}: unexpected argument "${file}"`);
  if (values.flavour !== undefined && !(FLAVOURS as readonly string[]).includes(values.flavour)) throw new UsageError(`--flavour: expected one of ${FLAVOURS.join(', ')}, got "${values.flavour}"`);
  if (values.root !== undefined && !values.root.startsWith('/')) throw new UsageError(`--root: expected an absolute directory, got "${values.root}"`);
  if (values.vip !== undefined && !IPV4.test(values.vip)) throw new UsageError(`--vip: expected an IPv4 address, got "${values.vip}"`);
  for (const r of values.region) if (!IPV4.test(r)) throw new UsageError(`--region: expected a region controller's IPv4 address, got "${r}"`);
  if (values['dry-run'] && sub !== 'restore') throw new UsageError('--dry-run: only rack restore changes anything');
  const config = optionalConfig(values.config);
  const base = maasOf(config);
  const maas: MaasConfig = { ...base, ...(values.flavour ? { flavour: values.flavour as MaasFlavour } : {}), ...(values.root ? { root: resolve(values.root) } : {}) };
  const layout = rackLayout(maas);
  const deps = rackDeps();

  switch (sub) {
    case 'backup': {
      const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
      const out = resolve(values.out ?? `maas-rack-${maas.flavour}-${stamp}.tar`);
      const r = await backupRack(deps, maas, layout, out);
      if (values.json) io.out(JSON.stringify({ out: r.out, mode: '0600', members: r.members.map((m) => ({ ...m, mode: octal(m.mode) })), missing: r.missing }, null, 2));
      else {
        io.out(`wrote ${r.out} (0600): ${r.members.map((m) => `${m.name} (${octal(m.mode)} ${m.uid}:${m.gid}, ${m.size} bytes)`).join(', ')}`);
        for (const m of r.missing) io.out(`note: ${m} does not exist here and is not in the archive`);
      }
      return 0;
    }
    case 'restore': {
      if (!file) throw new UsageError('rack restore: expected the archive, e.g. "rack restore maas-rack.tar"');
      const plan = await planRackRestore(deps, maas, layout, resolve(file));
      const lines = plan.steps.map((s) => `${s.action.padEnd(9)} ${s.file.path}${s.changes.length ? ` (${s.changes.join(', ')})` : ''}`);
      if (values['dry-run']) {
        io.out(values.json ? JSON.stringify({ dry_run: true, steps: plan.steps.map((s) => ({ path: s.file.path, action: s.action, changes: s.changes })) }, null, 2) : [...lines, `then: restart the rack service (${layout.service.manager} ${layout.service.unit}) and wait for its region`].join('\n'));
        return 0;
      }
      const r = await restoreRack(deps, maas, layout, plan, values.json ? () => {} : (l) => io.out(l));
      if (values.json) io.out(JSON.stringify({ written: r.written, reconnect: r.reconnect }, null, 2));
      else io.out(`${r.reconnect.ok ? 'rack restored' : 'rack restored, but its region does not answer'}: ${r.reconnect.detail}`);
      return r.reconnect.ok ? 0 : 1;
    }
    case 'check': {
      const { identity } = readIdentity(deps, layout);
      const backup = values.backup ? (await readArchive(deps, maas, layout, resolve(values.backup))).identity : undefined;
      const vipAddress = values.vip ?? config?.vip?.address;
      const regions = values.region.length ? values.region.map((a: string) => ({ name: a, address: a })) : (config?.vip?.region_controllers ?? []);
      const findings = checkRack({ kinds: layout.files.map((f) => f.kind), identity, ...(backup ? { backup } : {}), ...(vipAddress ? { vip: vipAddress } : {}), regionControllers: regions });
      io.out(values.json ? JSON.stringify({ flavour: maas.flavour, root: maas.root, findings }, null, 2) : renderRackFindings(findings));
      return findings.some((f) => f.level === 'fail') ? 1 : 0;
    }
  }
  throw new UsageError(`rack: unknown subcommand "${sub}"`);
}
