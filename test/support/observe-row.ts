// The row lib/observe.ts's OBSERVE_SQL returns, for a node modelled as plain values: in-process worlds (follow,
// rebuild) answer the observation with it instead of each spelling the columns out.
import type { NodeConfig } from '../../lib/config/types.ts';

export interface ModelledNode {
  primary: boolean;
  timeline: number;
  /** A standby streaming from this node (undefined: its WAL receiver is gone). */
  upstream?: Pick<NodeConfig, 'hostname' | 'port'>;
  /** Where its WAL is: written (primary), received and replayed (standby). */
  lsn?: string;
}

export function observeRow(n: ModelledNode) {
  const lsn = n.lsn ?? '0/3000000';
  return {
    in_recovery: !n.primary,
    primary_tli: n.primary ? n.timeline : null,
    checkpoint_tli: n.timeline,
    current_lsn: n.primary ? lsn : null,
    receive_lsn: n.primary ? null : lsn,
    replay_lsn: n.primary ? null : lsn,
    wal_receiver: n.upstream
      ? { status: 'streaming', sender_host: n.upstream.hostname, sender_port: n.upstream.port, received_tli: n.timeline, slot_name: null }
      : null,
    replication: [],
    synchronous_standby_names: '',
  };
}
