// The passive node's fence: while a region controller does not hold the VIP, its MAAS services must not write to
// the database (two regiond writing at once is what the original setup's packet filter prevented). The fence is
// one dedicated nftables table, so maas-ha never touches anyone else's rules: loading it replaces the table
// atomically, deleting it lifts the fence. It matches the *socket owner* (meta skuid) of the region services, not
// destinations: the local pgpool and PostgreSQL run as postgres and must keep talking to every backend, or the
// passive pgpool would mark the cluster down.
//
// The ruleset is a file written by root (`maas-ha vip fence-file`), so the sudoers drop-in can allow exactly
// `nft -f <that file>` rather than `nft` with arbitrary rules from a user that pgpool runs as.

import type { VipConfig } from '../config/types.ts';
import type { RunResult } from '../model/ports.ts';
import { asRoot, failure } from './host.ts';

export const FENCE_TABLE = 'maas_ha';

export function fenceRuleset(vip: VipConfig): string {
  const users = vip.fence.users.map((u) => `"${u}"`).join(', ');
  const ports = vip.fence.ports.join(', ');
  return [
    '#!/usr/sbin/nft -f',
    '# maas-ha passive-node fence (written by `maas-ha vip fence-file`; loaded on de-escalation, deleted on escalation).',
    `# Blocks the region services' users (${vip.fence.users.join(', ')}) from the PostgreSQL/pgpool ports; nothing else.`,
    // Declaring, deleting and re-creating the table in one file is one transaction: idempotent and atomic.
    `table inet ${FENCE_TABLE}`,
    `delete table inet ${FENCE_TABLE}`,
    `table inet ${FENCE_TABLE} {`,
    '  chain fence {',
    '    type filter hook output priority 0; policy accept;',
    // A reset, not a drop: the fenced service fails at once instead of hanging in connect().
    `    meta skuid { ${users} } tcp dport { ${ports} } counter reject with tcp reset`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export const fenceOnArgv = (vip: VipConfig): string[] => asRoot(vip, [vip.binaries.nft, '-f', vip.fence.file]);
export const fenceOffArgv = (vip: VipConfig): string[] => asRoot(vip, [vip.binaries.nft, 'delete', 'table', 'inet', FENCE_TABLE]);
export const fenceStatusArgv = (vip: VipConfig): string[] => asRoot(vip, [vip.binaries.nft, 'list', 'table', 'inet', FENCE_TABLE]);

/** Deleting a table that is not there is a lifted fence, not a failure. */
export function interpretFenceOff(r: RunResult): { ok: boolean; detail: string } {
  if (r.exitCode === 0) return { ok: true, detail: 'lifted' };
  if (/No such file or directory/.test(r.stderr)) return { ok: true, detail: 'was not in place' };
  return { ok: false, detail: failure(r) };
}

export function interpretFenceStatus(r: RunResult): 'on' | 'off' | 'unknown' {
  if (r.exitCode === 0 && r.stdout.includes(`table inet ${FENCE_TABLE}`)) return 'on';
  if (/No such file or directory/.test(r.stderr)) return 'off';
  return 'unknown';
}
