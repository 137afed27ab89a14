// Parsing of pcp tool output (pgpool 4.3 format), kept pure so it is table-tested without a pgpool.

import type { PcpNodeInfo } from '../model/ports.ts';
import { OperationError } from '../errors.ts';

/**
 * `pcp_node_info -n N` prints one line of 12 fields, the last being a date and a time:
 * `127.0.0.1 15432 2 0.333333 up up primary primary 0 none none 2026-11-24 21:17:17`
 */
export function parseNodeInfoLine(id: number, line: string): PcpNodeInfo {
  const f = line.trim().split(/\s+/);
  if (f.length < 12 || !/^\d+$/.test(f[1] ?? '') || !/^\d$/.test(f[2] ?? '')) {
    throw new OperationError(`pcp_node_info -n ${id}: unexpected output "${line.trim()}"`);
  }
  const at = (i: number) => f[i] ?? '';
  return {
    id,
    host: at(0),
    port: Number(at(1)),
    status: Number(at(2)),
    weight: Number(at(3)),
    statusName: at(4),
    actualStatus: at(5),
    role: at(6),
    actualRole: at(7),
    replicationDelay: at(8),
    replicationState: at(9),
    replicationSyncState: at(10),
    lastStatusChange: f.slice(11).join(' '),
  };
}

/** pgpool counts a node as attached when its status is 1 (up) or 2 (up, pooled connections). */
export const isAttached = (n: Pick<PcpNodeInfo, 'status'>): boolean => n.status === 1 || n.status === 2;

/**
 * What a pcp tool prints when pgpool closed a connection it had accepted: its PCP process restarting, which pgpool
 * does about a second after every failover and failback (docs/pgpool-hooks.md, "PCP"). The command may or may not
 * have reached pgpool.
 */
export const PCP_CUT = /unable to read data from socket/i;
