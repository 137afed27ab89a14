// The secondary ("slave") DNS on every region controller: a bind9 of its own that carries the MAAS zones as
// secondary zones transferred from the MAAS DNS on the VIP and forwards every other name to it, so machines and
// rack controllers that list every region controller's address keep resolving when one region controller is lost.
// Pure rendering (configuration → named.conf text) and a pure SOA comparison; the effects (writing the file,
// named-checkconf, the SOA queries) are in lib/cli/maas.ts and observeSoa below, behind the Net seam.
// The bind9 statements used here and why: docs/maas.md, "Slave DNS".

import type { MaasFlavour, SlaveDnsConfig, VipConfig } from '../config/types.ts';
import type { Net } from '../model/ports.ts';
import { messageOf } from '../errors.ts';
import { RCODES } from '../model/dns-wire.ts';

export interface SecondaryInput {
  slave: SlaveDnsConfig;
  /** The region controller this configuration is for: it listens on its address. */
  self: { name: string; address: string };
  /** Every region controller (this one included): they may control and notify this secondary. */
  regionControllers: readonly { name: string; address: string }[];
  vipAddress: string;
  zones: readonly string[];
}

const list = (xs: readonly string[]) => `{ ${xs.map((x) => `${x};`).join(' ')} }`;
const unique = (xs: readonly string[]) => [...new Set(xs)];

/** The whole named.conf of the secondary bind9 on `self` (a second named, with its own directory and ports). */
export function renderSecondaryConf(i: SecondaryInput): string {
  const s = i.slave;
  const peers = i.regionControllers.map((r) => r.address);
  // NOTIFY comes from whatever source address the primary's host picks, usually its own address rather than the
  // VIP: accept it from every region controller and from the primary's address.
  const notifiers = unique([s.primary.address, i.vipAddress, ...peers]);
  const zones = i.zones.map((z) =>
    [
      `zone "${z}" {`,
      // "slave"/"masters": the spelling every bind9 since 9.9 reads (9.16+ also reads secondary/primaries).
      '  type slave;',
      `  masters port ${s.primary.port} { ${s.primary.address}; };`,
      `  file "${s.directory}/${z}.db";`,
      `  allow-notify ${list(notifiers)};`,
      '};',
    ].join('\n'),
  );
  return [
    `// Secondary DNS of ${i.self.name} (${i.self.address}), rendered by \`maas-ha render dns\`: the MAAS zones as`,
    `// secondary zones from the MAAS DNS on ${s.primary.address} port ${s.primary.port}; every other name forwarded to`,
    `// ${s.forwarders.addresses.join(', ')} port ${s.forwarders.port}. Run as a named of its own: named -c ${s.conf_file}`,
    `include "${s.key_file}";`,
    'controls {',
    `  inet ${i.self.address} port ${s.port} allow ${list(unique(['127.0.0.1', ...peers]))} keys { "${s.key_name}"; };`,
    '};',
    'options {',
    `  directory "${s.directory}";`,
    `  pid-file "${s.directory}/named.pid";`,
    `  session-keyfile "${s.directory}/session.key";`,
    `  listen-on port 53 { ${i.self.address}; };`,
    '  listen-on-v6 { none; };',
    `  allow-query ${list(s.allow_query)};`,
    '  recursion yes;',
    `  allow-recursion ${list(s.allow_query)};`,
    `  forwarders port ${s.forwarders.port} ${list(s.forwarders.addresses)};`,
    `  forward ${s.forwarders.mode};`,
    // MAAS's own bind does not validate either; a forwarder that answers for private zones fails validation.
    '  dnssec-validation no;',
    '  notify no;',
    '  allow-transfer { none; };',
    '};',
    ...zones,
    '',
  ].join('\n');
}

/** Where the MAAS DNS's options block lives, per flavour: the snippet goes inside it (docs/maas.md). */
export const MASTER_OPTIONS_FILE: Record<MaasFlavour, string> = {
  'maas-1': '/etc/bind/named.conf.options',
  'maas-2-deb': '/etc/bind/named.conf.options',
  'maas-3-deb': '/etc/bind/named.conf.options',
  'maas-snap': '/var/snap/maas/current/bind/named.conf.options',
};

/**
 * Statements for the MAAS DNS (the primary) on every region controller, inside its `options { }` block: zone
 * transfers to and NOTIFY of every secondary, and listening only on the VIP (and loopback), so that the secondary
 * can own port 53 of the node's own address (MAAS writes no listen-on: it would take every address).
 */
export function renderMasterSnippet(vip: Pick<VipConfig, 'address' | 'region_controllers'>, slave: Pick<SlaveDnsConfig, 'primary'>, flavour: MaasFlavour): string {
  const secondaries = vip.region_controllers.map((r) => r.address);
  return [
    `// maas-ha: for the MAAS DNS on every region controller, inside the options { } block of ${MASTER_OPTIONS_FILE[flavour]}`,
    `  listen-on port ${slave.primary.port} { ${vip.address}; 127.0.0.1; };`,
    `  allow-transfer ${list(secondaries)};`,
    '  notify yes;',
    `  also-notify ${list(secondaries)};`,
    '',
  ].join('\n');
}

// ---- the SOA check: every secondary has every zone, at the primary's serial

export interface SoaAnswer {
  /** The serial, when the server answered authoritatively with the zone's SOA. */
  serial?: number;
  /** Why there is no serial: "REFUSED", "not authoritative", "no DNS answer from ... within 2000 ms". */
  error?: string;
}

export interface SoaObservation {
  primary: { address: string; port: number; answers: Record<string, SoaAnswer> };
  secondaries: { name: string; address: string; answers: Record<string, SoaAnswer> }[];
}

export interface SoaFinding {
  server: string;
  zone: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

/** Pure: what each secondary lacks, zone by zone, against the primary's serials. */
export function compareSoa(zones: readonly string[], obs: SoaObservation): SoaFinding[] {
  const out: SoaFinding[] = [];
  const where = `${obs.primary.address}:${obs.primary.port}`;
  for (const zone of zones) {
    const p = obs.primary.answers[zone];
    if (p?.serial === undefined) {
      out.push({
        server: `primary ${where}`,
        zone,
        ok: false,
        detail: `the MAAS DNS does not serve ${zone}: ${p?.error ?? 'not asked'}`,
        fix: 'drop the zone from vip.slave_dns.zones, or check MAAS DNS on the VIP (maas-ha vip check)',
      });
      continue;
    }
    for (const s of obs.secondaries) {
      const a = s.answers[zone];
      const server = `${s.name} ${s.address}`;
      if (a?.serial === undefined) {
        out.push({ server, zone, ok: false, detail: `has no copy of ${zone}: ${a?.error ?? 'not asked'}`, fix: `maas-ha render dns --host ${s.name} --write on it, and allow-transfer to ${s.address} on the primary` });
      } else if (a.serial !== p.serial) {
        out.push({ server, zone, ok: false, detail: `${zone} at serial ${a.serial}, the primary at ${p.serial}`, fix: `rndc -s ${s.address} retransfer ${zone} (notify from the primary is not reaching it: also-notify)` });
      } else {
        out.push({ server, zone, ok: true, detail: `${zone} at the primary's serial ${p.serial}` });
      }
    }
  }
  return out;
}

/** The SOA of one zone at one server, as a SoaAnswer (never throws). */
async function askSoa(net: Net, server: string, port: number, zone: string, timeoutMs: number): Promise<SoaAnswer> {
  try {
    const r = await net.dnsQuery(server, port, zone, 'SOA', timeoutMs);
    if (r.rcode !== 0) return { error: RCODES[r.rcode] ?? `rcode ${r.rcode}` };
    if (!r.authoritative) return { error: 'answered, but not authoritatively (no zone here)' };
    if (r.soaSerial === undefined) return { error: 'authoritative answer without an SOA record' };
    return { serial: r.soaSerial };
  } catch (err) {
    return { error: messageOf(err) };
  }
}

/** Asks the primary and every secondary (port 53 of each region controller) for every zone's SOA, all at once. */
export async function observeSoa(net: Net, vip: Pick<VipConfig, 'region_controllers'>, slave: SlaveDnsConfig, zones: readonly string[], timeoutMs = slave.timeout_ms): Promise<SoaObservation> {
  const ask = async (address: string, port: number) =>
    Object.fromEntries(await Promise.all(zones.map(async (z) => [z, await askSoa(net, address, port, z, timeoutMs)] as const)));
  const [primary, ...secondaries] = await Promise.all([
    ask(slave.primary.address, slave.primary.port),
    ...vip.region_controllers.map((r) => ask(r.address, 53)),
  ]);
  return {
    primary: { ...slave.primary, answers: primary! },
    secondaries: vip.region_controllers.map((r, i) => ({ ...r, answers: secondaries[i]! })),
  };
}
