// Writes through pgpool for the end-to-end tests, and what each node holds afterwards: the evidence for "no
// acknowledged row is lost". Rows go to maas_ha_drill (the drill's table), numbered by the writer.
import pg from 'pg';
import { resetDrillTable, Writer } from '../../lib/lab/drill.ts';
import type { TestLab } from './lab.ts';

const client = (host: string, port: number) =>
  new pg.Client({ host, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 3000, query_timeout: 10_000 });

async function withClient<T>(host: string, port: number, f: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = client(host, port);
  c.on('error', () => {});
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end().catch(() => {});
  }
}

async function freshTable(lab: TestLab): Promise<void> {
  await withClient(lab.pgpool.host, lab.pgpool.port, resetDrillTable);
}

/** A writer inserting numbered rows through pgpool until stopped, reconnecting after every error. */
export async function startWriter(lab: TestLab): Promise<Writer> {
  await freshTable(lab);
  const w = new Writer(pg, lab.pgpool.host);
  w.start();
  return w;
}

/** What pgpool answers while it is busy with a failover: the client reconnects and sends the row again. */
const TRANSIENT = /failed to create a backend connection|Connection terminated|ECONNREFUSED|ECONNRESET|server closed the connection|the database system is (starting up|shutting down)|unable to read data/;

/**
 * n committed rows through pgpool, one statement each; returns their numbers (each acknowledged). Connection
 * errors (pgpool processing a failover) are retried within 20 s, as a client would; a commit that does not
 * return (synchronous replication frozen) is not: the statement times out after 10 s and the call fails.
 */
export async function writeThroughPgpool(lab: TestLab, n: number): Promise<number[]> {
  await retrying(() => freshTable(lab));
  const acked: number[] = [];
  for (let i = 1; i <= n; i++) {
    await retrying(() =>
      // ON CONFLICT: a row whose acknowledgement was lost with the connection may already be there.
      withClient(lab.pgpool.host, lab.pgpool.port, (c) => c.query('INSERT INTO maas_ha_drill (seq) VALUES ($1) ON CONFLICT DO NOTHING', [i])),
    );
    acked.push(i);
  }
  return acked;
}

async function retrying<T>(f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (!TRANSIENT.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The row numbers a node has (a standby answers read-only queries); none if the table never reached it. */
export async function rowsOn(lab: TestLab, id: number): Promise<number[]> {
  const n = lab.nodes[id]!;
  return withClient(n.host, n.port, async (c) => {
    const exists = await c.query<{ t: string | null }>("SELECT to_regclass('maas_ha_drill')::text AS t");
    if (exists.rows[0]?.t === null) return [];
    return (await c.query<{ seq: string }>('SELECT seq FROM maas_ha_drill ORDER BY seq')).rows.map((r) => Number(r.seq));
  });
}
