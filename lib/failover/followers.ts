// The standbys of a new primary, right after the promotion: repoint the running ones at it (a reload, no restart,
// no ssh) and make its commits wait for them, so that nothing is acknowledged that only the new primary holds. A
// second failure while pgpool's follow_primary is still running (it handles one node after another, the dead old
// primary first) then loses no acknowledged write: the surviving standby has every one. When none streams within
// the hook's budget, synchronous replication is relaxed after all, and the failback hook restores it later.
//
// What to do is decided by planFollowers (./plan.ts, pure); this file carries it out.

import type { NodeConfig } from '../config/types.ts';
import { messageOf } from '../errors.ts';
import type { Deps } from '../model/ports.ts';
import { ensureSlot } from '../recovery/rebuild.ts';
import { standbyLines } from '../recovery/standby-conf.ts';
import type { Followers } from './plan.ts';
import { holdSynchronous, relaxSynchronous, streamingStandbys } from './sync.ts';
import type { Timeline } from './timeline.ts';

/**
 * Points a running standby at `primary`: its replication slot there, then primary_conninfo (and the other standby
 * settings) by ALTER SYSTEM and a reload; PostgreSQL restarts its WAL receiver on the new conninfo and follows the
 * timeline switch (recovery_target_timeline 'latest').
 */
export async function repointStandby(deps: Pick<Deps, 'pg' | 'config'>, node: NodeConfig, primary: NodeConfig): Promise<void> {
  await ensureSlot(deps, primary, node);
  const target = { host: node.hostname, port: node.port };
  for (const line of standbyLines(deps, primary, node)) {
    const [key, value] = line.split(/ = (.*)/s) as [string, string];
    await deps.pg.query(target, `ALTER SYSTEM SET ${key} = ${value}`);
  }
  await deps.pg.query(target, 'SELECT pg_reload_conf()');
}

/** How often the new primary is asked which standbys stream while the hook waits for them. */
const POLL_MS = 100;

/**
 * Carries out `f` on the promoted (or adopted) primary within `budgetMs`. Returns the sentence for the closing line.
 * Never throws: the promotion stands whatever happens here, and the worst outcome is a relaxed setting.
 */
export async function settleFollowers(deps: Deps, f: Followers, budgetMs: number, tl: Timeline): Promise<string | undefined> {
  const { config, log } = deps;
  const primary = config.nodes.find((n) => n.id === f.primary)!;
  const deadline = deps.clock.now() + budgetMs;
  log.info({ step: 'followers', node_id: primary.id, outcome: 'started', repoint: f.repoint, synchronous: f.synchronous }, f.why);
  if (f.synchronous === 'hold') {
    try {
      if (await holdSynchronous(deps, primary)) tl.add('synchronous_held', { node: primary.id });
    } catch (err) {
      log.warn({ step: 'followers', node_id: primary.id, outcome: 'failed' }, `could not set synchronous replication on node ${primary.id}: ${messageOf(err)}`);
    }
  }
  const repointed: number[] = [];
  await Promise.all(
    f.repoint.map(async (id) => {
      const node = config.nodes.find((n) => n.id === id)!;
      try {
        await repointStandby(deps, node, primary);
        repointed.push(id);
      } catch (err) {
        log.warn({ step: 'followers', node_id: id, outcome: 'failed' }, `could not repoint node ${id} to node ${primary.id}: ${messageOf(err)} (follow_primary tries again)`);
      }
    }),
  );
  if (repointed.length) tl.add('standbys_repointed', { node: primary.id, standbys: repointed });
  if (f.synchronous === 'off') return undefined;
  if (f.synchronous === 'hold') {
    const required = config.replication.synchronous.count;
    let streaming: string[] = [];
    for (;;) {
      streaming = await streamingStandbys(deps, primary).catch(() => []);
      if (streaming.length >= required || deps.clock.now() + POLL_MS > deadline) break;
      await deps.clock.sleep(POLL_MS);
    }
    if (streaming.length >= required) {
      const note = `commits on node ${primary.id} are synchronous again (${streaming.join(', ')} streaming)`;
      log.info({ step: 'followers', node_id: primary.id, outcome: 'ok', streaming }, note);
      tl.add('synchronous_followers', { node: primary.id, streaming });
      return note;
    }
    log.warn({ step: 'followers', node_id: primary.id, outcome: 'failed' }, `no standby streams from node ${primary.id} within ${budgetMs} ms: relaxing synchronous replication`);
  }
  const relaxed = await relaxSynchronous(deps, primary, undefined);
  if (relaxed) tl.add('synchronous_relaxed', { node: primary.id });
  return relaxed;
}
