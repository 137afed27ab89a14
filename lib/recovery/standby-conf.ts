// The standby settings maas-ha writes into a rebuilt or rewound node: one place for follow-primary, online
// recovery and `maas-ha recover`, so every path produces the same primary_conninfo. pg_rewind and pg_basebackup
// copy postgresql.auto.conf from the primary, so these lines replace whatever the copy brought along.

import type { NodeConfig } from '../config/types.ts';
import type { Deps } from '../model/ports.ts';

/** The replication slot a node streams through, on whichever node is its primary. */
export const slotName = (id: number) => `maas_ha_node_${id}`;

export function conninfo(deps: Pick<Deps, 'config'>, primary: NodeConfig, node: NodeConfig): string {
  const r = deps.config.replication;
  // host exactly as backend_hostname: pgpool's false-primary check compares it as a string (docs/pgpool-hooks.md, "detach_false_primary").
  const parts = [`host=${primary.hostname}`, `port=${primary.port}`, `user=${r.user}`, `application_name=${node.name}`, 'connect_timeout=3'];
  if (r.password_file) parts.push(`passfile=${r.password_file}`);
  return parts.join(' ');
}

const confLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The lines appended to postgresql.auto.conf (standby.signal is written beside them). */
export function standbyLines(deps: Pick<Deps, 'config'>, primary: NodeConfig, node: NodeConfig): string[] {
  const lines = [`primary_conninfo = ${confLiteral(conninfo(deps, primary, node))}`, "recovery_target_timeline = 'latest'"];
  if (deps.config.replication.use_slots) lines.push(`primary_slot_name = ${confLiteral(slotName(node.id))}`);
  return lines;
}

/**
 * Settings that must never survive from the copy's source: the standby settings (rewritten) and the primary's
 * synchronous_standby_names, which maas-ha manages with ALTER SYSTEM on the primary only (a standby that kept it
 * would make commits wait forever once promoted).
 */
export const STANDBY_KEYS = ['primary_conninfo', 'primary_slot_name', 'recovery_target_timeline', 'synchronous_standby_names'] as const;
