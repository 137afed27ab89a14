// PostgreSQL adapter: one short-lived connection per call. A failover hook talks to nodes that may be dying, so
// the connect timeout and the statement timeout are always set, and a whole call (connect + query + end) is
// also raced against a hard deadline: a half-open TCP connection must not outlive the hook's budget.

import type { PostgresAccess } from '../config/types.ts';
import type { Pg, QueryTarget } from '../model/ports.ts';
import { OperationError } from '../errors.ts';

type PgModule = typeof import('pg');
let pgModule: Promise<PgModule> | undefined;
const loadPg = () => (pgModule ??= import('pg').then((m) => (m.default ?? m) as PgModule));

/**
 * Starts loading the PostgreSQL driver now, for a hook that will certainly query: its chunk then loads while the
 * hook reads its configuration, instead of after (the failover hook's first query is on the clock of every
 * failover). A failed load is reported by the first query, as without this.
 */
export function preloadPg(): void {
  loadPg().catch(() => {});
}

export function createPg(access: PostgresAccess, appName = 'maas-ha'): Pg {
  // node-postgres reads the libpq password file itself when no password is given.
  if (access.password_file) process.env.PGPASSFILE = access.password_file;
  return {
    async query(target: QueryTarget, sql: string, params: unknown[] = [], opts = {}) {
      const { Client } = await loadPg();
      const timeoutMs = opts.timeoutMs ?? access.connect_timeout_ms + access.statement_timeout_ms;
      const client = new Client({
        host: target.host,
        port: target.port,
        database: target.database ?? access.database,
        user: target.user ?? access.user,
        connectionTimeoutMillis: Math.min(access.connect_timeout_ms, timeoutMs),
        statement_timeout: Math.min(access.statement_timeout_ms, timeoutMs),
        query_timeout: timeoutMs,
        application_name: appName,
        ...(target.replicationConnection ? { replication: 'database' } : {}),
      });
      client.on('error', () => {}); // a server that dies mid-call reports through the pending query instead
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new OperationError(`${target.host}:${target.port}: no answer within ${timeoutMs} ms`));
          // end() waits for the server; a dead one never answers, so drop the socket instead.
          (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
        }, timeoutMs);
      });
      try {
        const work = (async () => {
          await client.connect();
          // node-postgres writes the statement to the socket as it queues it on a ready connection.
          const pending = client.query(sql, params);
          opts.onSent?.();
          const res = await pending;
          return res.rows as never[];
        })();
        work.catch(() => {});
        return await Promise.race([work, deadline]);
      } catch (err) {
        if (err instanceof OperationError) throw err;
        throw new OperationError(`${target.host}:${target.port}: ${(err as Error).message}`, { cause: err });
      } finally {
        clearTimeout(timer);
        client.end().catch(() => {});
      }
    },
  };
}
