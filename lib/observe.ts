// What one PostgreSQL node says about itself, in one bounded query. Used by `maas-ha status` and by the
// failover decision (which standby is most advanced), so both see the cluster the same way.

import type { NodeConfig } from './config/types.ts';
import { messageOf } from './errors.ts';
import type { Deps } from './model/deps.ts';
import { parseLsnOrUndefined, type Lsn } from './model/lsn.ts';

export interface WalReceiver {
  status: string;
  senderHost: string | null;
  senderPort: number | null;
  receivedTli: number | null;
  slotName: string | null;
}

export interface ReplicationPeer {
  applicationName: string;
  clientAddr: string | null;
  state: string;
  syncState: string;
  flushLsn?: Lsn;
  replayLsn?: Lsn;
}

export type NodeObservation =
  | {
      id: number;
      reachable: false;
      error: string;
      /**
       * The host answered and nothing listens on the port (ECONNREFUSED): the postmaster is gone. Unlike a
       * timeout (host down, or a partition that may hide a running primary), this proves it accepts no writes.
       */
      refused?: boolean;
    }
  | {
      id: number;
      reachable: true;
      inRecovery: boolean;
      timeline: number;
      /** Primary: pg_current_wal_lsn(). */
      currentLsn?: Lsn;
      /** Standby: WAL received (flushed by the walreceiver) and replayed. */
      receiveLsn?: Lsn;
      replayLsn?: Lsn;
      walReceiver?: WalReceiver;
      replication: ReplicationPeer[];
      synchronousStandbyNames: string;
    };

export const OBSERVE_SQL = `
SELECT pg_is_in_recovery() AS in_recovery,
  CASE WHEN pg_is_in_recovery() THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS primary_tli,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli,
  CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS current_lsn,
  pg_last_wal_receive_lsn()::text AS receive_lsn,
  pg_last_wal_replay_lsn()::text AS replay_lsn,
  (SELECT json_build_object('status', status, 'sender_host', sender_host, 'sender_port', sender_port,
                            'received_tli', received_tli, 'slot_name', slot_name)
     FROM pg_stat_wal_receiver LIMIT 1) AS wal_receiver,
  (SELECT coalesce(json_agg(json_build_object('application_name', application_name, 'client_addr', client_addr::text,
                   'state', state, 'sync_state', sync_state, 'flush_lsn', flush_lsn::text, 'replay_lsn', replay_lsn::text)), '[]')
     FROM pg_stat_replication) AS replication,
  current_setting('synchronous_standby_names') AS synchronous_standby_names`;

interface Row {
  in_recovery: boolean;
  primary_tli: number | null;
  checkpoint_tli: number;
  current_lsn: string | null;
  receive_lsn: string | null;
  replay_lsn: string | null;
  wal_receiver: { status: string; sender_host: string | null; sender_port: number | null; received_tli: number | null; slot_name: string | null } | null;
  replication: { application_name: string; client_addr: string | null; state: string; sync_state: string; flush_lsn: string | null; replay_lsn: string | null }[];
  synchronous_standby_names: string;
}

/** Pure: a query row to an observation. */
export function toObservation(id: number, row: Row): NodeObservation {
  const wr = row.wal_receiver;
  const walReceiver: WalReceiver | undefined = wr
    ? { status: wr.status, senderHost: wr.sender_host, senderPort: wr.sender_port, receivedTli: wr.received_tli, slotName: wr.slot_name }
    : undefined;
  const timeline = row.in_recovery ? Math.max(row.checkpoint_tli, walReceiver?.receivedTli ?? 0) : (row.primary_tli ?? row.checkpoint_tli);
  return {
    id,
    reachable: true,
    inRecovery: row.in_recovery,
    timeline,
    currentLsn: parseLsnOrUndefined(row.current_lsn),
    receiveLsn: parseLsnOrUndefined(row.receive_lsn),
    replayLsn: parseLsnOrUndefined(row.replay_lsn),
    walReceiver,
    replication: row.replication.map((r) => ({
      applicationName: r.application_name,
      clientAddr: r.client_addr,
      state: r.state,
      syncState: r.sync_state,
      flushLsn: parseLsnOrUndefined(r.flush_lsn),
      replayLsn: parseLsnOrUndefined(r.replay_lsn),
    })),
    synchronousStandbyNames: row.synchronous_standby_names,
  };
}

export async function observeNode(deps: Pick<Deps, 'pg'>, node: NodeConfig, timeoutMs?: number): Promise<NodeObservation> {
  try {
    const rows = await deps.pg.query<Row & Record<string, unknown>>({ host: node.hostname, port: node.port }, OBSERVE_SQL, [], timeoutMs ? { timeoutMs } : {});
    const row = rows[0];
    if (!row) return { id: node.id, reachable: false, error: 'no row returned' };
    return toObservation(node.id, row);
  } catch (err) {
    const cause = err instanceof Error ? (err.cause as { code?: unknown } | undefined) : undefined;
    return { id: node.id, reachable: false, error: messageOf(err), ...(cause?.code === 'ECONNREFUSED' ? { refused: true } : {}) };
  }
}

export function observeAll(deps: Pick<Deps, 'pg' | 'config'>, timeoutMs?: number): Promise<NodeObservation[]> {
  return Promise.all(deps.config.nodes.map((n) => observeNode(deps, n, timeoutMs)));
}
