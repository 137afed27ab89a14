// The failback_command use case: pgpool runs it (leader, as postgres, exit code ignored) when a node is attached
// again. The one thing maas-ha does here is give synchronous replication back once enough standbys stream.

import { messageOf } from '../errors.ts';
import type { Deps } from '../model/ports.ts';
import { isWritable, observeAll } from '../observe.ts';
import { restoreSynchronous } from './sync.ts';

export async function runFailback(deps: Deps, attached: number): Promise<{ ok: boolean; summary: string }> {
  if (deps.config.replication.synchronous.mode === 'off') return { ok: true, summary: `node ${attached} attached; synchronous replication is off` };
  const obs = await observeAll(deps, 2000);
  const primaries = obs.filter(isWritable);
  if (primaries.length !== 1) return { ok: false, summary: `node ${attached} attached, but ${primaries.length} primaries answer: synchronous setting left as it is` };
  const primary = deps.config.nodes.find((n) => n.id === primaries[0]!.id)!;
  try {
    const note = await restoreSynchronous(deps, primary);
    return { ok: true, summary: `node ${attached} attached; ${note ?? 'synchronous setting already as wanted or not enough standbys yet'}` };
  } catch (err) {
    return { ok: false, summary: `node ${attached} attached, restoring synchronous replication on node ${primary.id} failed: ${messageOf(err)}` };
  }
}
