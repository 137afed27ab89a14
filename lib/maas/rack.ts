// A rack (MAAS 1.x: cluster) controller keeps no data worth restoring except its identity: which region it talks
// to (maas_url), the shared secret, and who it is (MAAS 1.x: the cluster UUID; 2.x/3.x: maas_id). A lost rack is
// rebuilt by installing the same MAAS and putting those files back. This file decides; lib/cli/maas.ts acts:
//   parseIdentity    the files' text → the facts (pure)
//   checkRack        the facts against the VIP, the region controllers and a backup → findings with fixes (pure)
//   planRestore      the archive's members against what is on disk → what would change (pure)
//   listingOf        GNU tar's verbose listing → members with owner, mode and size (pure)
// File locations per generation: ./layout.ts; the formats: docs/maas.md, "The rack controller's identity".

import type { IdentityFile, IdentityKind } from './layout.ts';

export interface Identity {
  /** undefined: the file that holds it is missing. */
  maasUrls?: string[];
  clusterUuid?: string;
  maasId?: string;
  secret: 'missing' | 'empty' | 'present';
}

/** Files as read: name (relative to the root) → text, or undefined when missing. */
export type IdentityTexts = Partial<Record<IdentityKind, string | undefined>>;

/** `KEY="value"` (or unquoted) from a shell-assignment file such as maas_cluster.conf. */
function shellValue(text: string, key: string): string | undefined {
  const m = new RegExp(`^\\s*(?:export\\s+)?${key}=(.*)$`, 'm').exec(text);
  return m ? m[1]!.trim().replace(/^(["'])(.*)\1$/, '$2') : undefined;
}

/** rackd.conf's maas_url: one URL, a flow list, or a block list (the forms MAAS writes; docs/maas.md). */
export function parseMaasUrls(yamlText: string): string[] | undefined {
  const lines = yamlText.split('\n');
  const i = lines.findIndex((l) => /^maas_url\s*:/.test(l));
  if (i === -1) return undefined;
  const unquote = (v: string) => v.trim().replace(/^(["'])(.*)\1$/, '$2');
  const rest = lines[i]!.replace(/^maas_url\s*:/, '').replace(/\s+#.*$/, '').trim();
  if (rest.startsWith('[')) return rest.replace(/^\[|\]$/g, '').split(',').map(unquote).filter(Boolean);
  if (rest) return [unquote(rest)];
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    const m = /^\s*-\s*(.+?)\s*$/.exec(l);
    if (!m) break;
    out.push(unquote(m[1]!));
  }
  return out;
}

/** Pure: the identity facts from the files' texts (undefined = missing file). */
export function parseIdentity(texts: IdentityTexts): Identity {
  const id: Identity = { secret: texts.secret === undefined ? 'missing' : texts.secret.trim() === '' ? 'empty' : 'present' };
  if (texts['cluster-conf'] !== undefined) {
    const url = shellValue(texts['cluster-conf'], 'MAAS_URL');
    if (url !== undefined) id.maasUrls = [url];
    const uuid = shellValue(texts['cluster-conf'], 'CLUSTER_UUID');
    if (uuid) id.clusterUuid = uuid;
  }
  if (texts['rackd-conf'] !== undefined) {
    const urls = parseMaasUrls(texts['rackd-conf']);
    if (urls) id.maasUrls = urls;
  }
  if (texts['maas-id'] !== undefined && texts['maas-id'].trim()) id.maasId = texts['maas-id'].trim();
  return id;
}

export interface RackFinding {
  level: 'ok' | 'warn' | 'fail';
  what: string;
  fix?: string;
}

export interface RackFacts {
  /** Which kinds this generation has (maas-1: cluster-conf and secret; others: rackd-conf, secret, maas-id). */
  kinds: readonly IdentityKind[];
  identity: Identity;
  /** The identity in a backup, when one is given. */
  backup?: Identity;
  vip?: string;
  regionControllers: readonly { name: string; address: string }[];
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/** Pure: what is wrong with this rack's identity, each with its fix. */
export function checkRack(f: RackFacts): RackFinding[] {
  const out: RackFinding[] = [];
  const file = f.kinds.includes('cluster-conf') ? 'maas_cluster.conf (MAAS_URL)' : 'rackd.conf (maas_url)';
  const urls = f.identity.maasUrls;
  const vipUrl = f.vip ? `http://${f.vip}${f.kinds.includes('cluster-conf') ? '' : ':5240'}/MAAS` : 'http://<VIP>/MAAS';
  const setUrl = f.kinds.includes('cluster-conf')
    ? `set MAAS_URL="${vipUrl}" in /etc/maas/maas_cluster.conf and restart maas-clusterd`
    : `maas-rack config --region-url ${vipUrl} (snap: maas config --maas-url ${vipUrl}), then restart the rack`;
  if (!urls || urls.length === 0) {
    out.push({ level: 'fail', what: `no maas_url: ${file} is missing or names no region`, fix: `restore the rack's backup (maas-ha rack restore FILE), or ${setUrl}` });
  } else {
    const hosts = urls.map((u) => ({ url: u, host: hostOf(u) }));
    const viaVip = hosts.some((h) => f.vip !== undefined && h.host === f.vip);
    for (const h of hosts) {
      const region = f.regionControllers.find((r) => r.address === h.host || r.name === h.host);
      if (h.host === undefined) out.push({ level: 'fail', what: `maas_url ${h.url} is not a URL`, fix: setUrl });
      else if (f.vip !== undefined && h.host === f.vip) out.push({ level: 'ok', what: `maas_url ${h.url} points at the VIP` });
      else if (region && !viaVip) {
        out.push({ level: 'fail', what: `maas_url ${h.url} points at region controller ${region.name}'s own address, not the VIP: the rack loses the region when ${region.name} is lost`, fix: setUrl });
      } else if (region) out.push({ level: 'warn', what: `maas_url ${h.url} names region controller ${region.name} besides the VIP`, fix: 'list only the VIP' });
      else if (f.vip === undefined) out.push({ level: 'warn', what: `maas_url ${h.url}: no VIP known to compare it with`, fix: 'run with the region\'s configuration (--config) or --vip ADDRESS' });
      else out.push({ level: 'warn', what: `maas_url ${h.url} is not the VIP ${f.vip} (fine only if ${h.host} resolves to it)`, fix: setUrl });
    }
  }
  if (f.identity.secret === 'missing') out.push({ level: 'fail', what: 'the shared secret is missing: the rack cannot authenticate to the region', fix: 'restore the backup, or copy /var/lib/maas/secret from a region controller (mode 0640, owner as on the region)' });
  else if (f.identity.secret === 'empty') out.push({ level: 'fail', what: 'the shared secret file is empty', fix: 'restore the backup, or copy the secret from a region controller' });
  else out.push({ level: 'ok', what: 'the shared secret is present (not shown)' });
  const idKind = f.kinds.includes('cluster-conf') ? 'cluster UUID' : f.kinds.includes('maas-id') ? 'maas_id' : undefined;
  if (idKind) {
    const mine = idKind === 'cluster UUID' ? f.identity.clusterUuid : f.identity.maasId;
    const theirs = f.backup ? (idKind === 'cluster UUID' ? f.backup.clusterUuid : f.backup.maasId) : undefined;
    if (mine === undefined) {
      out.push({ level: idKind === 'cluster UUID' ? 'fail' : 'warn', what: `no ${idKind}: the region will take this rack for a new controller`, fix: 'restore the backup (maas-ha rack restore FILE) before the rack service starts' });
    } else if (f.backup && theirs !== undefined && theirs !== mine) {
      out.push({ level: 'fail', what: `${idKind} ${mine} differs from the backup's ${theirs}: the region sees another controller`, fix: 'maas-ha rack restore FILE' });
    } else out.push({ level: 'ok', what: `${idKind} ${mine}${f.backup ? ' (as in the backup)' : ''}` });
  }
  return out;
}

// ---- the archive

export interface Member {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
}

/** `-rw-r----- 0/113 45 2025-01-01 00:00 etc/maas/rackd.conf` (GNU tar -tv --numeric-owner) → a member. */
export function listingOf(stdout: string): Member[] {
  const out: Member[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    const m = /^(\S)([rwxsStT-]{9})\s+(\d+)\/(\d+)\s+(\d+)\s+\S+\s+\S+\s+(.+)$/.exec(line);
    if (!m) throw new Error(`unexpected line in the archive's listing: ${JSON.stringify(line.slice(0, 120))}`);
    if (m[1] !== '-') throw new Error(`${m[6]}: not a regular file in the archive (type "${m[1]}"): not a maas-ha rack backup`);
    out.push({ name: m[6]!, mode: modeOf(m[2]!), uid: Number(m[3]), gid: Number(m[4]), size: Number(m[5]) });
  }
  return out;
}

/** `rw-r-----` → 0o640 (setuid/setgid/sticky letters included). */
export function modeOf(s: string): number {
  let mode = 0;
  const bit = (i: number, v: number) => (s[i] !== '-' && s[i] !== 'S' && s[i] !== 'T' ? v : 0);
  mode |= bit(0, 0o400) | bit(1, 0o200) | bit(2, 0o100) | bit(3, 0o40) | bit(4, 0o20) | bit(5, 0o10) | bit(6, 0o4) | bit(7, 0o2) | bit(8, 0o1);
  if (s[2] === 's' || s[2] === 'S') mode |= 0o4000;
  if (s[5] === 's' || s[5] === 'S') mode |= 0o2000;
  if (s[8] === 't' || s[8] === 'T') mode |= 0o1000;
  return mode;
}

export const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

/** A file as it is on disk now (undefined when missing). */
export interface OnDisk {
  text: string;
  mode: number;
  uid: number;
  gid: number;
}

export interface RestoreStep {
  file: IdentityFile;
  member: Member;
  action: 'create' | 'replace' | 'unchanged';
  /** What differs ("content", "mode 0644 → 0640", "owner 0:0 → 0:113"); secrets' contents are never shown. */
  changes: string[];
}

/**
 * Pure: the archive's members against the layout and the disk. Every member must be one of this generation's
 * identity files (an archive naming anything else, or a path with "..", is refused: restore writes as root).
 */
export function planRestore(files: readonly IdentityFile[], members: readonly Member[], contents: Readonly<Record<string, string>>, disk: Readonly<Record<string, OnDisk | undefined>>): RestoreStep[] {
  const known = new Map(files.map((f) => [f.name, f]));
  for (const m of members) {
    if (!known.has(m.name)) {
      throw new Error(`the archive holds ${JSON.stringify(m.name)}, which is not an identity file of this MAAS (${files.map((f) => f.name).join(', ')}): wrong --flavour, or not a maas-ha rack backup`);
    }
  }
  return members.map((m) => {
    const file = known.get(m.name)!;
    const now = disk[m.name];
    const text = contents[m.name] ?? '';
    if (!now) return { file, member: m, action: 'create', changes: [`new file, ${octal(m.mode)} ${m.uid}:${m.gid}`] };
    const changes: string[] = [];
    if (now.text !== text) changes.push(file.secret ? 'content (secret, not shown)' : 'content');
    if ((now.mode & 0o7777) !== m.mode) changes.push(`mode ${octal(now.mode)} → ${octal(m.mode)}`);
    if (now.uid !== m.uid || now.gid !== m.gid) changes.push(`owner ${now.uid}:${now.gid} → ${m.uid}:${m.gid}`);
    return { file, member: m, action: changes.length ? 'replace' : 'unchanged', changes };
  });
}

/** The argv that restarts the rack service (no shell; the commands manager's argv as configured). */
export function rackRestartArgv(service: { manager: 'systemd' | 'snap' | 'commands'; unit: string; restart?: string[] }, binaries: { systemctl: string; snap: string }): string[] {
  switch (service.manager) {
    case 'systemd':
      return [binaries.systemctl, 'restart', service.unit];
    case 'snap':
      return [binaries.snap, 'restart', service.unit];
    case 'commands':
      if (!service.restart) throw new Error('maas.rack.restart: required with manager: commands');
      return service.restart;
  }
}

/** `http://vip:5240/MAAS` → `http://vip:5240/MAAS/rpc/`: what rackd itself asks first to find the region's event loops. */
export function rpcUrl(maasUrl: string): string {
  return `${maasUrl.replace(/\/+$/, '')}/rpc/`;
}

/** Pure: does this answer of <maas_url>/rpc/ show a region a rack can connect to? */
export function judgeRpcAnswer(status: number, body: string): { ok: boolean; detail: string } {
  if (status !== 200) return { ok: false, detail: `HTTP ${status}` };
  try {
    const j = JSON.parse(body) as { eventloops?: unknown };
    if (j && typeof j.eventloops === 'object' && j.eventloops !== null && Object.keys(j.eventloops).length > 0) {
      return { ok: true, detail: `${Object.keys(j.eventloops).length} region event loop(s) offered` };
    }
    return { ok: false, detail: 'HTTP 200 but no region event loops in the answer' };
  } catch {
    return { ok: false, detail: `HTTP 200 but not JSON: ${body.slice(0, 60)}` };
  }
}
