// What a region controller knows about its own addresses and the VIP, and the argv that change them. Pure: the use
// cases (./escalate.ts) run these through the Shell/Ssh seam. pgpool's if_up_cmd/if_down_cmd are exec'd without a
// shell (docs/pgpool-hooks.md, "Interface commands"), and sudo matches its drop-in against exact argv, so every
// command here is one fixed argv built from validated config values.

import type { VipConfig } from '../config/types.ts';
import type { RunResult } from '../model/ports.ts';

export type RegionController = VipConfig['region_controllers'][number];

export interface LocalAddress {
  iface: string;
  address: string;
  prefix: number;
}

/** Prefixes `sudo -n` when root-only commands go through the sudoers drop-in (never a password prompt). */
export function asRoot(vip: VipConfig, argv: string[]): string[] {
  return vip.privilege === 'sudo' ? [vip.binaries.sudo, '-n', ...argv] : argv;
}

export const vipCidr = (vip: VipConfig): string => `${vip.address}/${vip.prefix_length}`;

/** `ip addr add VIP/len dev IF`: the privileged part of if_up_cmd. */
export const ipAddArgv = (vip: VipConfig): string[] => [vip.binaries.ip, 'addr', 'add', vipCidr(vip), 'dev', vip.interface];
export const ipDelArgv = (vip: VipConfig): string[] => [vip.binaries.ip, 'addr', 'del', vipCidr(vip), 'dev', vip.interface];
/** Reading addresses needs no privilege. */
export const ipShowArgv = (vip: VipConfig): string[] => [vip.binaries.ip, '-o', '-4', 'addr', 'show'];

/**
 * A gratuitous ARP for the VIP (iputils arping: -U unsolicited, so every neighbour updates its cache now rather
 * than when its entry expires; Habets' arping does not do that: docs/lab.md, "Use iputils arping"). iputils arping
 * carries cap_net_raw itself: no root needed.
 */
export const arpingArgv = (vip: VipConfig): string[] => [vip.binaries.arping, '-U', '-c', '1', '-w', '1', '-I', vip.interface, vip.address];

/** Parses `ip -o -4 addr show`: `2: eth0    inet 10.0.0.11/24 brd ... scope global eth0\       valid_lft ...`. */
export function parseIpAddrs(stdout: string): LocalAddress[] {
  const out: LocalAddress[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^\d+:\s+(\S+?)(?:@\S+)?\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(line);
    if (m) out.push({ iface: m[1]!, address: m[2]!, prefix: Number(m[3]) });
  }
  return out;
}

export interface HostView {
  /** This host's entry in vip.region_controllers, found by its address; undefined when none is local. */
  self?: RegionController;
  /** Every other region controller: a peer that may still hold the VIP. */
  peers: RegionController[];
  /** The VIP is configured on vip.interface here. */
  holdsVip: boolean;
}

export function hostView(vip: VipConfig, addrs: readonly LocalAddress[]): HostView {
  const local = new Set(addrs.map((a) => a.address));
  const self = vip.region_controllers.find((rc) => local.has(rc.address));
  return {
    ...(self ? { self } : {}),
    peers: vip.region_controllers.filter((rc) => rc !== self),
    holdsVip: addrs.some((a) => a.address === vip.address && a.iface === vip.interface),
  };
}

/** `ip addr add` of an address that is already there is success: pgpool re-runs if_up_cmd when it thinks the VIP vanished. */
export function interpretIpAdd(r: RunResult): { ok: boolean; already: boolean; detail: string } {
  const text = `${r.stderr}\n${r.stdout}`.trim();
  if (r.exitCode === 0) return { ok: true, already: false, detail: 'added' };
  if (/File exists|already assigned/i.test(text)) return { ok: true, already: true, detail: 'already present' };
  return { ok: false, already: false, detail: failure(r) };
}

/** `ip addr del` of an address that is not there is success too (a de-escalation after a crash, a re-run). */
export function interpretIpDel(r: RunResult): { ok: boolean; already: boolean; detail: string } {
  const text = `${r.stderr}\n${r.stdout}`.trim();
  if (r.exitCode === 0) return { ok: true, already: false, detail: 'removed' };
  if (/Cannot assign requested address|not found|does not exist/i.test(text)) return { ok: true, already: true, detail: 'was not present' };
  return { ok: false, already: false, detail: failure(r) };
}

/** One line about why a command failed: a timeout, a missing binary (exit 127) or its own last words. */
export function failure(r: RunResult): string {
  if (r.timedOut) return `${r.argv[0]} timed out after ${r.durationMs} ms`;
  if (r.exitCode === 127 || r.exitCode === 126) return `${r.argv[0]} could not be run (exit ${r.exitCode}: missing or not executable)`;
  const words = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-2).join(' | ');
  return `${r.argv.join(' ')} exited ${r.exitCode ?? r.signal}${words ? `: ${words}` : ''}`;
}

/**
 * Run on a peer over ssh (as constant text; values arrive as positional parameters): removes the VIP only if the
 * peer holds it, so a healthy peer costs one read. `$5...` is the privilege prefix (sudo -n) or nothing.
 * Prints one word: absent, removed. A peer that cannot remove it exits 1.
 */
export const PEER_REMOVE_SCRIPT = `
addr="$1"; cidr="$2"; dev="$3"; ip="$4"; shift 4
if "$ip" -o -4 addr show dev "$dev" 2>/dev/null | grep -qF " inet $addr/"; then
  "$@" "$ip" addr del "$cidr" dev "$dev" || exit 1
  echo removed
else
  echo absent
fi`;

export function peerRemoveArgv(vip: VipConfig): string[] {
  const prefix = vip.privilege === 'sudo' ? [vip.binaries.sudo, '-n'] : [];
  return ['sh', '-c', PEER_REMOVE_SCRIPT, 'maas-ha', vip.address, vipCidr(vip), vip.interface, vip.binaries.ip, ...prefix];
}

export type PeerOutcome = { peer: string; outcome: 'removed' | 'absent' | 'unreachable' | 'failed'; detail: string; durationMs: number };

/** ssh exits 255 for its own failures (no route, timeout, host key); a timeout of ours, or the peer's own bound
 *  (timeout(1) exits 124, or 137 after its KILL), means the same: nobody could say whether it holds the VIP. */
export function interpretPeerRemove(peer: string, r: RunResult): PeerOutcome {
  const word = r.stdout.trim().split('\n').pop() ?? '';
  const base = { peer, durationMs: r.durationMs };
  if (r.exitCode === 124 || r.exitCode === 137) return { ...base, outcome: 'unreachable', detail: `its side did not finish within its bound (timeout exit ${r.exitCode})` };
  if (r.timedOut || r.exitCode === 255) return { ...base, outcome: 'unreachable', detail: r.timedOut ? `no answer within ${r.durationMs} ms` : r.stderr.trim().split('\n').pop() ?? 'ssh failed' };
  if (r.exitCode === 0 && (word === 'removed' || word === 'absent')) return { ...base, outcome: word, detail: word === 'removed' ? 'it still held the VIP' : 'it did not hold the VIP' };
  return { ...base, outcome: 'failed', detail: failure(r) };
}
