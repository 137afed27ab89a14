// The fault campaign of the failover-safety issue, the tests' layer: the writer, the probe and the verdict live in
// lib/lab/campaign.ts (shared with `maas-ha lab soak`); here they become one ava assertion (`assertInvariants`),
// and here live the faults the scenarios need and lib/ does not offer: a clean stop, a start by hand without
// standby.signal (what a reboot with autostart does to a former primary), and a black hole (nftables, loopback
// only) around one node's addresses, in a table of our own that is always deleted at the end.

import type { ExecutionContext } from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summary, violations, type Allowance, type CampaignReport } from '../../lib/lab/campaign.ts';
import { postgresUser, serviceEnv } from '../../lib/lab/lab.ts';
import { LAB_SSH_PORT, type LabNode } from '../../lib/lab/layout.ts';
import type { TestLab } from './lab.ts';

// What the scenarios use of the shared instruments, so that they import from one place.
export { probePastGrace, startCampaign, summary, violations, type Allowance, type Campaign } from '../../lib/lab/campaign.ts';

/**
 * The issue's invariants, as one assertion that lists every breach: zero acknowledged rows lost, never two
 * writable primaries (but the allowed isolated one, demoted or stopped within 5 s of the heal), no row
 * acknowledged by an old primary after a newer one was promoted.
 */
export function assertInvariants(t: ExecutionContext, report: CampaignReport, allow: Allowance = {}): void {
  t.log(summary(report));
  t.true(report.acks.length > 0, 'the writer must have had rows acknowledged, or the campaign proves nothing');
  const v = violations(report, allow);
  t.deepEqual(v, [], `campaign invariants broken:\n${v.map((x) => `  - ${x}`).join('\n')}`);
}

// ---- faults

const asPostgres = (argv: string[]) => ['--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];

function run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, encoding: 'utf8', ...(opts.env ? { env: opts.env } : {}) }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

async function pgCtl(lab: TestLab, node: LabNode, args: string[]): Promise<void> {
  const r = await run('setpriv', asPostgres([join(lab.o.pgBinDir, 'pg_ctl'), '-D', node.conf, ...args]), {
    env: serviceEnv(lab.o, postgresUser()),
    timeoutMs: 70_000,
  });
  if (r.code !== 0) throw new Error(`pg_ctl ${args.join(' ')} on ${node.name}: exit ${r.code}: ${r.out.trim()}`);
}

/** A clean stop, as an operator (or a package upgrade) does it: pg_ctl stop -m fast, shutdown checkpoint and all. */
export const cleanStop = (lab: TestLab, node: LabNode) => pgCtl(lab, node, ['-w', '-t', '60', 'stop', '-m', 'fast']);

/**
 * What a reboot with autostart does to a stopped former primary: PostgreSQL starts from its data directory as it
 * is. standby.signal is removed first if present, so the node comes up writable on its old timeline.
 */
export async function startByHand(lab: TestLab, node: LabNode): Promise<void> {
  rmSync(join(node.data, 'standby.signal'), { force: true });
  if (existsSync(join(node.data, 'recovery.signal'))) rmSync(join(node.data, 'recovery.signal'));
  await pgCtl(lab, node, ['-l', node.log, '-w', '-t', '60', 'start']);
}

const exitHooks = new Set<string>();
/** By absolute path: under npx, node_modules/.bin comes first in PATH and holds an unrelated `nft` (@vercel/nft). */
const NFT = '/usr/sbin/nft';

/** Our own nftables table for a lab: deleting it is the whole heal, and nothing else on the machine is touched. */
export const blackHoleTable = (lab: TestLab) => `maas_ha_test_${lab.o.net}`;

/**
 * Cuts one node off, clients and pgpool included: every packet to or from its address on its PostgreSQL port
 * and its sshd port (or only on `only`: `'ssh'` cuts ssh and leaves PostgreSQL reachable) is dropped (loopback
 * only; dropped, not rejected, so it looks like a dead link, not a dead server). Returns the heal, which deletes
 * the table and says when.
 */
export async function blackHole(lab: TestLab, node: LabNode, only?: 'ssh'): Promise<{ heal: () => Promise<number> }> {
  const table = blackHoleTable(lab);
  const ports = only === 'ssh' ? `${LAB_SSH_PORT}` : `{ ${node.port}, ${LAB_SSH_PORT} }`;
  const rules = [
    `ip daddr ${node.host} tcp dport ${ports} drop`,
    `ip saddr ${node.host} tcp sport ${ports} drop`,
  ];
  const ruleset = [
    `table inet ${table} {`,
    '  chain out {',
    '    type filter hook output priority 0; policy accept;',
    ...rules.map((r) => `    oifname "lo" ${r}`),
    '  }',
    '  chain in {',
    '    type filter hook input priority 0; policy accept;',
    ...rules.map((r) => `    iifname "lo" ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
  await removeBlackHole(lab);
  // Even if the test file dies (a crashed worker, an ava timeout), the table goes with the process.
  if (!exitHooks.has(table)) {
    exitHooks.add(table);
    process.once('exit', () => {
      try {
        execFileSync(NFT, ['delete', 'table', 'inet', table], { stdio: 'ignore', timeout: 5000 });
      } catch {
        // already deleted
      }
    });
  }
  const r = await run(NFT, ['-f', '-'], { input: ruleset, timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nft -f (black hole around ${node.name}): exit ${r.code}: ${r.out.trim()}`);
  const check = await run(NFT, ['list', 'table', 'inet', table], { timeoutMs: 10_000 });
  if (check.code !== 0 || !check.out.includes(node.host)) throw new Error(`the black hole around ${node.name} is not in place: ${check.out.trim()}`);
  return {
    heal: async () => {
      await removeBlackHole(lab);
      return Date.now();
    },
  };
}

/** Deletes the lab's table if it exists (idempotent): for the heal, and for every exit path of a test file. */
export async function removeBlackHole(lab: TestLab): Promise<void> {
  const table = blackHoleTable(lab);
  const list = await run(NFT, ['list', 'table', 'inet', table], { timeoutMs: 10_000 });
  if (list.code !== 0) return;
  const r = await run(NFT, ['delete', 'table', 'inet', table], { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`nft delete table inet ${table}: exit ${r.code}: ${r.out.trim()}`);
}
