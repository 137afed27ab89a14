// Waiting for pgpool to carry out a request: pcp_attach_node and pcp_detach_node only queue it and return (the
// main process performs it when it is free; docs/pgpool-hooks.md, "PCP"), so whoever needs it done polls
// pcp_node_info. One loop for every caller: follow's attach, `maas-ha recover` and `maas-ha maintenance`.

import { messageOf } from '../errors.ts';
import type { Deps, PcpNodeInfo } from '../model/ports.ts';
import { isAttached } from './pcp-output.ts';

const POLL_MS = 200;

/**
 * How long an attach is waited for. pgpool queues pcp_attach_node and carries it out only once what it is doing
 * has ended: after a failover that promoted nobody (a cluster in maintenance, say) it searches for a primary for
 * search_primary_node_timeout first (the labs: 30 s; preflight asks for about that).
 */
export const ATTACH_WAIT_MS = 45_000;

/** pcp_attach_node, then the wait until pgpool shows the node up: undefined once it does, else what it said last. */
export async function attachAndWait(deps: Pick<Deps, 'pcp' | 'clock'>, id: number, timeoutMs = ATTACH_WAIT_MS): Promise<string | undefined> {
  await deps.pcp.attach(id);
  return waitPgpoolNode(deps, id, isAttached, timeoutMs);
}

/**
 * Polls pcp_node_info of node `id` until `ok` holds, for at most `timeoutMs`. Undefined once it holds; otherwise
 * what pgpool said last ("status down", or why pcp did not answer), for the caller's message.
 */
export async function waitPgpoolNode(deps: Pick<Deps, 'pcp' | 'clock'>, id: number, ok: (i: PcpNodeInfo) => boolean, timeoutMs: number): Promise<string | undefined> {
  const deadline = deps.clock.now() + timeoutMs;
  for (;;) {
    const i = await deps.pcp.nodeInfo(id).catch((err: unknown) => messageOf(err));
    if (typeof i !== 'string' && ok(i)) return undefined;
    if (deps.clock.now() > deadline) return typeof i === 'string' ? i : `status ${i.statusName}`;
    await deps.clock.sleep(POLL_MS);
  }
}
