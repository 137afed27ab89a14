// Synchronous replication without freezing writes. With `ANY 1 (standbys...)` every acknowledged commit is on a
// standby, so promoting the most advanced standby loses nothing; but when no standby is left streaming, every
// commit on the primary would wait forever. maas-ha owns synchronous_standby_names (ALTER SYSTEM on the
// primary): it relaxes it when the last synchronous candidate is gone and restores it when one is back.

import type { NodeConfig, Config } from '../config/types.ts';
import { causeCode, messageOf } from '../errors.ts';
import type { Deps } from '../model/ports.ts';

const quoteIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The setting maas-ha wants on `primary` when its standbys stream: ANY/FIRST n over every other node. */
export function desiredSynchronousNames(config: Config, primaryId: number): string {
  const s = config.replication.synchronous;
  if (s.mode === 'off') return '';
  const names = config.nodes.filter((n) => n.id !== primaryId).map((n) => quoteIdent(n.name));
  return `${s.mode.toUpperCase()} ${s.count} (${names.join(', ')})`;
}

/**
 * The walsenders that count as synchronous standbys of `primary`: those under the application_name of a configured
 * node other than the primary (`streaming`: application_names of walsenders in state 'streaming'). pg_basebackup,
 * pg_receivewal and anything else that streams WAL under another name can never confirm a commit for
 * `ANY n (configured names)`, so counting them would keep the setting with no real standby left and freeze every
 * commit.
 */
export function configuredStandbys(config: Config, primaryId: number, streaming: readonly string[]): string[] {
  const names = new Set(config.nodes.filter((n) => n.id !== primaryId).map((n) => n.name));
  // A name counts once: two walsenders under one name (a standby and a tool borrowing its name) are one standby.
  return [...new Set(streaming)].filter((n) => names.has(n));
}

interface SyncRow {
  current: string;
  /** application_name of every walsender in state 'streaming' (not catchup, not backup). */
  streaming: string[];
}

async function readSync(deps: Pick<Deps, 'pg'>, primary: NodeConfig): Promise<SyncRow> {
  const rows = await deps.pg.query<{ current: string; streaming: string[] }>(
    { host: primary.hostname, port: primary.port },
    `SELECT current_setting('synchronous_standby_names') AS current,
            coalesce((SELECT array_agg(application_name::text) FROM pg_stat_replication WHERE state = 'streaming'), '{}') AS streaming`,
  );
  return rows[0] ?? { current: '', streaming: [] };
}

async function setSync(deps: Pick<Deps, 'pg'>, primary: NodeConfig, value: string): Promise<void> {
  const target = { host: primary.hostname, port: primary.port };
  // ALTER SYSTEM takes no bind parameters; the value is quoted as a literal (standard_conforming_strings is on).
  await deps.pg.query(target, `ALTER SYSTEM SET synchronous_standby_names = ${quoteLiteral(value)}`);
  await deps.pg.query(target, 'SELECT pg_reload_conf()');
}

/**
 * Relaxes the setting when fewer configured standbys than required still stream (excluding `lost`). Returns a
 * note, or undefined.
 */
export async function relaxSynchronous(deps: Pick<Deps, 'pg' | 'log' | 'config'>, primary: NodeConfig, lost: number | undefined): Promise<string | undefined> {
  const lostName = deps.config.nodes.find((n) => n.id === lost)?.name;
  try {
    const s = await readSync(deps, primary);
    if (s.current === '') return undefined;
    const left = configuredStandbys(deps.config, primary.id, s.streaming).filter((n) => n !== lostName);
    if (left.length >= deps.config.replication.synchronous.count) return undefined;
    await setSync(deps, primary, '');
    const note = `synchronous replication relaxed on node ${primary.id} (${left.length} standby streaming, ${deps.config.replication.synchronous.count} required): writes continue without a synchronous copy`;
    deps.log.warn({ step: 'synchronous', node_id: primary.id, outcome: 'ok' }, note);
    return note;
  } catch (err) {
    if (causeCode(err) === 'ECONNREFUSED') {
      // The primary went down too (a standby and the primary lost together): nothing waits on it any more, and
      // its own failover decides what comes next.
      deps.log.warn({ step: 'synchronous', node_id: primary.id, outcome: 'skipped' }, `node ${primary.id} refuses connections (not running): no synchronous setting to relax there`);
      return undefined;
    }
    deps.log.error({ step: 'synchronous', node_id: primary.id, outcome: 'failed' }, `could not relax synchronous replication on node ${primary.id}: ${messageOf(err)}`);
    return undefined;
  }
}

/**
 * Sets the managed value on `primary` now, whether or not its standbys stream yet: from here on its commits wait
 * for them. Returns true when the setting changed.
 */
export async function holdSynchronous(deps: Pick<Deps, 'pg' | 'config'>, primary: NodeConfig): Promise<boolean> {
  const desired = desiredSynchronousNames(deps.config, primary.id);
  const s = await readSync(deps, primary);
  if (s.current === desired) return false;
  await setSync(deps, primary, desired);
  return true;
}

/** The configured standbys streaming from `primary` now (application_names). */
export async function streamingStandbys(deps: Pick<Deps, 'pg' | 'config'>, primary: NodeConfig): Promise<string[]> {
  return configuredStandbys(deps.config, primary.id, (await readSync(deps, primary)).streaming);
}

/** Restores the managed setting once enough standbys stream. Returns a note, or undefined when nothing changed. */
export async function restoreSynchronous(deps: Pick<Deps, 'pg' | 'log' | 'config'>, primary: NodeConfig): Promise<string | undefined> {
  const desired = desiredSynchronousNames(deps.config, primary.id);
  if (desired === '') return undefined;
  const s = await readSync(deps, primary);
  if (s.current === desired) return undefined;
  const streaming = configuredStandbys(deps.config, primary.id, s.streaming);
  if (streaming.length < deps.config.replication.synchronous.count) return undefined;
  await setSync(deps, primary, desired);
  const note = `synchronous replication restored on node ${primary.id}: ${desired} (${streaming.join(', ')} streaming)`;
  deps.log.info({ step: 'synchronous', node_id: primary.id, outcome: 'ok' }, note);
  return note;
}
