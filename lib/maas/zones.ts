// The zones the secondary DNS servers carry, as MAAS names them: its authoritative domains (forward zones) and one
// reverse zone per subnet. Pure derivation from what the MAAS database holds; the one read (readMaasZones) goes
// through deps.pg and takes any node of the cluster, since a standby holds the same rows.
//
// Reverse zones follow MAAS's own naming (docs/maas.md, "Reverse zones"):
//   IPv4 /8, /16, /24          the zone of the leading octets:        10.0.0.0/16 → 0.10.in-addr.arpa
//   IPv4 between boundaries   one zone per block of the next boundary: 10.0.4.0/22 → 4..7.0.10.in-addr.arpa
//   IPv4 longer than /24       RFC 2317: "<first>-<len>" below the /24, plus the /24 itself, which MAAS
//                              generates as the parent holding the glue: 192.0.2.64/26 → 64-26.2.0.192.in-addr.arpa
//                              and 2.0.192.in-addr.arpa
//   IPv6                       the same with nibbles (4 bits) instead of octets, up to /124: 2001:db8::/32 →
//                              8.b.d.0.1.0.0.2.ip6.arpa
// A subnet whose rdns_mode is 0 (reverse DNS disabled) has no reverse zone; a row without the column counts as
// MAAS's default (RFC 2317).

import { isIP } from 'node:net';
import type { Config } from '../config/types.ts';
import type { Pg } from '../model/ports.ts';
import { OperationError, messageOf } from '../errors.ts';

/** A network that would split into more zones than this is refused rather than listed (a /1 would be 128). */
const MAX_SPLIT = 256;

function v4ToBigInt(addr: string): bigint {
  return addr.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
}

function v6ToBigInt(addr: string): bigint {
  let a = addr;
  // An embedded IPv4 tail (::ffff:10.0.0.1) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a)?.[1];
  if (v4) {
    const n = v4ToBigInt(v4);
    a = a.slice(0, -v4.length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

/** The reverse zone names of one subnet in CIDR notation; throws on a malformed CIDR. */
export function reverseZones(cidr: string): string[] {
  const [addr = '', lenText = ''] = cidr.trim().split('/');
  const family = isIP(addr);
  const len = Number(lenText);
  if (family === 0 || !/^\d{1,3}$/.test(lenText)) throw new Error(`"${cidr}" is not a CIDR`);
  const bits = family === 4 ? 32 : 128;
  if (len > bits) throw new Error(`"${cidr}": prefix /${len} is longer than ${bits} bits`);
  const unit = family === 4 ? 8 : 4; // bits per label: an octet, or a nibble
  const labels = bits / unit;
  const suffix = family === 4 ? 'in-addr.arpa' : 'ip6.arpa';
  const value = family === 4 ? v4ToBigInt(addr) : v6ToBigInt(addr);
  const mask = len === 0 ? 0n : ((1n << BigInt(len)) - 1n) << BigInt(bits - len);
  const first = value & mask;
  /** The label values of an address, most significant first. */
  const parts = (n: bigint) => Array.from({ length: labels }, (_, i) => Number((n >> BigInt((labels - 1 - i) * unit)) & BigInt((1 << unit) - 1)));
  const show = (v: number) => (family === 4 ? String(v) : v.toString(16));
  /** The zone of the leading `count` labels of `n`. */
  const zoneOf = (n: bigint, count: number) => [...parts(n).slice(0, count).reverse().map(show), suffix].join('.');

  const boundary = bits - unit; // /24, or /124
  if (len > boundary) {
    // RFC 2317: a zone named after the first address and the length, below its /24 (or /124), and that parent.
    const p = parts(first);
    const parent = zoneOf(first, labels - 1);
    return [`${show(p[labels - 1]!)}-${len}.${parent}`, parent];
  }
  const zoneLabels = Math.ceil(len / unit);
  const blocks = 2 ** (zoneLabels * unit - len);
  if (blocks > MAX_SPLIT) throw new Error(`"${cidr}" would need ${blocks} reverse zones; list the zones in vip.slave_dns.zones instead`);
  const step = 1n << BigInt(bits - zoneLabels * unit);
  // A /0 has no leading label: its zone is the suffix itself (never a MAAS subnet, but well defined).
  return Array.from({ length: blocks }, (_, i) => (zoneLabels === 0 ? suffix : zoneOf(first + BigInt(i) * step, zoneLabels)));
}

/** A row of maasserver_domain. */
export interface DomainRow {
  name: string;
  authoritative: boolean;
}

/** A row of maasserver_subnet (rdns_mode absent in a stand-in that leaves the column out). */
export interface SubnetRow {
  cidr: string;
  rdns_mode?: number | null;
}

export interface MaasZones {
  zones: string[];
  /** What was left out and why ("domain example.com: not authoritative"). */
  skipped: string[];
}

/** Pure: the zones a secondary must carry for these rows, forward zones first, each once, in a stable order. */
export function zonesFromRows(domains: readonly DomainRow[], subnets: readonly SubnetRow[]): MaasZones {
  const forward: string[] = [];
  const reverse: string[] = [];
  const skipped: string[] = [];
  for (const d of [...domains].sort((a, b) => a.name.localeCompare(b.name))) {
    if (d.authoritative) forward.push(d.name.replace(/\.$/, '').toLowerCase());
    else skipped.push(`domain ${d.name}: not authoritative (MAAS forwards it, serves no zone)`);
  }
  for (const s of subnets) {
    if (s.rdns_mode === 0) {
      skipped.push(`subnet ${s.cidr}: reverse DNS disabled (rdns_mode 0)`);
      continue;
    }
    try {
      reverse.push(...reverseZones(s.cidr));
    } catch (err) {
      skipped.push(`subnet ${s.cidr}: ${messageOf(err)}`);
    }
  }
  const unique = (xs: string[]) => [...new Set(xs)];
  return { zones: [...unique(forward), ...unique(reverse).sort()], skipped };
}

/**
 * The MAAS database's domains and subnets, from the first node of the cluster that answers (a standby will do).
 * Each row is read as JSON so a stand-in table with only the columns maas-ha uses is enough.
 */
export async function readMaasRows(deps: { pg: Pg; config: Config }, database: { name: string; user?: string }): Promise<{ domains: DomainRow[]; subnets: SubnetRow[]; node: string }> {
  const problems: string[] = [];
  for (const n of deps.config.nodes) {
    const target = { host: n.hostname, port: n.port, database: database.name, ...(database.user ? { user: database.user } : {}) };
    try {
      const domains = await deps.pg.query<{ row: Record<string, unknown> }>(target, 'SELECT to_jsonb(d) AS row FROM maasserver_domain d');
      const subnets = await deps.pg.query<{ row: Record<string, unknown> }>(target, 'SELECT to_jsonb(s) AS row FROM maasserver_subnet s');
      return {
        domains: domains.map(({ row }) => ({ name: String(row.name ?? ''), authoritative: row.authoritative !== false })),
        subnets: subnets.map(({ row }) => ({ cidr: String(row.cidr ?? ''), rdns_mode: typeof row.rdns_mode === 'number' ? row.rdns_mode : null })),
        node: `${n.name} (${n.hostname}:${n.port})`,
      };
    } catch (err) {
      problems.push(`${n.name}: ${messageOf(err)}`);
    }
  }
  throw new OperationError(
    `cannot read maasserver_domain and maasserver_subnet from database ${database.name} on any node (${problems.join('; ')}); MAAS 1.x has no maasserver_domain: list its zones in vip.slave_dns.zones`,
  );
}

/** The zones of the MAAS database (readMaasRows, then zonesFromRows). */
export async function readMaasZones(deps: { pg: Pg; config: Config }, database: { name: string; user?: string }): Promise<MaasZones & { node: string }> {
  const rows = await readMaasRows(deps, database);
  return { ...zonesFromRows(rows.domains, rows.subnets), node: rows.node };
}
