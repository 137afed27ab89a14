// The fault campaign's scenario kit, shared by every campaign file (test/e2e/campaign*.test.ts): a lab of the
// file's own, reused by its scenarios and left redundant between them; the operator's commands and views
// (`maas-ha` as built, status, waits); `underCampaign`, which runs a scenario under the writer and the probe of
// lib/lab/campaign.ts and judges the issue's invariants; and the log scan every scenario ends with.

import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterStatus } from '../../lib/status.ts';
import { assertInvariants, probePastGrace, removeBlackHole, startCampaign, summary, violations, type Allowance, type Campaign } from './campaign.ts';
import {
  DIST_BIN,
  NODE_DOWN_NOISE,
  closingLines,
  clusterStatus,
  healLab,
  logMark,
  recoverJson,
  redundant,
  serverLogHookRecords,
  serverLogMark,
  startLab,
  stopLab,
  waitStatus,
  unexpectedErrors,
  waitFor as waitForLab,
  type HookRecord,
  type LabRequest,
  type TestLab,
} from './lab.ts';

export interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Registers the file's lab (started before its scenarios, stopped after, rebuilt before a scenario only when the
 * one before failed to leave it redundant) and returns the kit bound to it.
 */
export function campaignLab(req: LabRequest) {
  // Filled in by the before hook; one object for the whole file, so scenarios may hold on to it.
  const lab = {} as TestLab;
  /** pgpool's noise around a node going down (NODE_DOWN_NOISE), and what the campaign's own writer causes. */
  const NOISE = [
    ...NODE_DOWN_NOISE,
    // The campaign's writer gives up on a statement after 2 s, as a client with a timeout does, and reconnects;
    // when pgpool finishes that statement later (a backend that hung, then failed over or came back), nobody is
    // left to answer.
    /maas-ha-campaign-writer pid \d+: ERROR: {2}unable to flush data to frontend/,
  ];


  /** The built CLI, as an operator runs it; asynchronous, so the campaign's writer and probe keep running. */
  function maasHa(...args: string[]): Promise<Cli> {
    return new Promise((resolve) => {
      execFile(join(DIST_BIN, 'maas-ha'), [...args, '--config', lab.paths.config], { timeout: 150_000, encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  async function primaryNow(): Promise<number> {
    const s = await clusterStatus(lab);
    if (s.primary === null) throw new Error(`no primary: ${JSON.stringify(s.problems)}`);
    return s.primary;
  }

  /** Synchronous replication is what the lab runs normally: the primary waits for a standby (ANY 1). */
  async function synchronousOn(primary: number): Promise<boolean> {
    const n = lab.nodes[primary]!;
    const rows = await lab.deps.pg.query<{ names: string; sync: number }>(
      { host: n.host, port: n.port },
      "SELECT current_setting('synchronous_standby_names') AS names, (SELECT count(*)::int FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')) AS sync",
    );
    return rows[0]!.names !== '' && rows[0]!.sync > 0;
  }

  /** Full redundancy: one primary, every standby streaming its timeline and attached in pgpool, commits synchronous. */
  async function healthy(s: ClusterStatus): Promise<boolean> {
    return redundant(s, lab.o.nodes) && (await synchronousOn(s.primary!).catch(() => false));
  }

  const waitHealthy = (timeoutMs = 45_000): Promise<ClusterStatus> => waitStatus(lab, 'full redundancy with synchronous replication', timeoutMs, healthy, waitFor);


  /** The closing sentence of the failover hook that handled node `failed`, written after `mark`. */
  function failoverDone(failed: number, mark: number, timeoutMs = 30_000): Promise<HookRecord> {
    return waitFor(`the failover hook for node ${failed} has finished`, timeoutMs, async () =>
      closingLines(lab, mark).find((r) => r.hook === 'failover' && new RegExp(`\\bnode ${failed}\\b`).test(r.msg)),
    );
  }

  /**
   * Back to full redundancy with maas-ha's own commands: `maas-ha recover N` for every node that is not a
   * streaming, attached standby of pgpool's primary. A node that still runs as a second primary is refused
   * without --force (rebuilding it discards its writes); the scenario has already judged that, so --force it. A
   * node recover calls a healthy standby is not rebuilt: the status is asked again.
   */
  async function healWithMaasHa(t: ExecutionContext, since: number): Promise<{ node: number; cli: Cli }[]> {
    const ran: { node: number; cli: Cli }[] = [];
    await hooksFinished(since);
    for (let round = 0; round < 3; round++) {
      const s = await clusterStatus(lab);
      if (await healthy(s)) return ran;
      const primary = s.rows.find((r) => r.pgRole === 'primary' && r.pgpoolRole === 'primary' && r.pgpoolStatus === 'up')?.id ?? s.primary;
      if (primary === null) throw new Error(`no primary to recover from: ${JSON.stringify(s.problems)}`);
      const broken = s.rows.filter((r) => r.id !== primary && (r.pgRole !== 'standby' || r.pgpoolStatus !== 'up' || r.problems.length > 0));
      for (const r of broken) {
        const mark = logMark(lab);
        trace(`maas-ha recover ${r.id}`);
        let cli = await maasHa('recover', String(r.id), '--json');
        trace(`maas-ha recover ${r.id}: exit ${cli.code}`);
        const refused = cli.code !== 0 ? recoverJson(cli.stdout)?.reason : undefined;
        if (refused === 'healthy-standby') {
          // It healed between the status and the recover (follow_primary rejoined it, or it caught up): nothing to
          // rebuild. The next round asks the status again; a node it still calls broken is then a real disagreement.
          t.log(`maas-ha recover ${r.id}: ${cli.stderr.trim()} → left as it is`);
          ran.push({ node: r.id, cli });
          continue;
        }
        if (refused === 'second-primary') {
          t.log(`maas-ha recover ${r.id}: ${cli.stderr.trim()} → again with --force`);
          cli = await maasHa('recover', String(r.id), '--force', '--json');
        }
        ran.push({ node: r.id, cli });
        if (cli.code !== 0) throw new Error(`maas-ha recover ${r.id} failed (exit ${cli.code}):\n${cli.stdout}${cli.stderr}`);
        t.log(`maas-ha recover ${r.id}: ${cli.stdout.trim().split('\n').at(-1)}`);
        // pcp_recovery_node returns before pgpool has run its failback hook (which restores synchronous
        // replication): the next fault must not hit that window.
        await waitFor(`failback_command for node ${r.id}`, 20_000, async () =>
          closingLines(lab, mark).some((x) => x.hook === 'failback' && new RegExp(`node ${r.id} attached`).test(x.msg)) || undefined,
        );
      }
      await waitHealthy(30_000).catch(() => undefined);
    }
    await waitHealthy(15_000);
    return ran;
  }

  const HOOK_OF: Record<string, string> = { 'maas-ha-failover': 'failover', 'maas-ha-follow-primary': 'follow_primary', 'maas-ha-failback': 'failback' };

  /**
   * Every hook pgpool started after `mark` has written its closing line: maas-ha recover must not race a
   * follow_primary run that is still rebuilding the same node.
   */
  async function hooksFinished(mark: number): Promise<void> {
    await waitFor('the hooks pgpool started have finished', 60_000, async () => {
      const text = readFileSync(lab.paths.pgpoolLog).subarray(mark).toString('utf8');
      const started = new Map<string, number>();
      for (const l of text.split('\n')) {
        const exe = /execute command: \S*\/(maas-ha-[a-z-]+) /.exec(l)?.[1];
        if (exe && HOOK_OF[exe]) started.set(HOOK_OF[exe]!, (started.get(HOOK_OF[exe]!) ?? 0) + 1);
      }
      const done = closingLines(lab, mark);
      return [...started].every(([hook, n]) => done.filter((r) => r.hook === hook).length >= n) || undefined;
    }, 200);
  }

  /** waitFor of the e2e support, traced. */
  async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, everyMs?: number): Promise<T> {
    trace(`waiting for ${what} (up to ${timeoutMs / 1000} s)`);
    const v = await waitForLab(what, timeoutMs, probe, everyMs).catch((err: unknown) => {
      trace(`NOT reached: ${what}`);
      throw err;
    });
    trace(`reached: ${what}`);
    return v;
  }

  const T0 = Date.now();
  /** Progress on stderr with CAMPAIGN_TRACE=1, to see where a scenario spends its time. */
  function trace(msg: string): void {
    if (process.env.CAMPAIGN_TRACE) process.stderr.write(`[campaign +${((Date.now() - T0) / 1000).toFixed(1)} s] ${msg}\n`);
  }

  /** The log positions a scenario scans from: pgpool's (hooks included) and every node's server log. */
  function marks() {
    return { pgpool: logMark(lab), servers: lab.nodes.map((n) => serverLogMark(n)) };
  }

  /** Errors nobody expected after `m`: pgpool's log, and maas-ha's records in the PostgreSQL logs (recovery hooks). */
  function unexpected(m: ReturnType<typeof marks>, expected: RegExp[] = []): string[] {
    const hooks = lab.nodes.flatMap((n) =>
      serverLogHookRecords(n, m.servers[n.id]!)
        .filter((r) => r.level === 'error' || r.level === 'fatal')
        .map((r) => `${n.name}'s log: ${r.hook}/${r.step ?? '-'}: ${r.msg}`),
    );
    return [...unexpectedErrors(lab, m.pgpool, [...NOISE, ...expected]), ...hooks.filter((l) => !expected.some((re) => re.test(l)))];
  }

  /**
   * Runs a scenario under the campaign: the body injects the fault, waits for the cluster to react, heals with
   * maas-ha's commands and returns what the invariants may allow; then the campaign stops and is judged. A body
   * that throws still stops the campaign (its findings are logged) before the error is reported.
   */
  async function underCampaign(t: ExecutionContext, body: (c: Campaign) => Promise<Allowance | void>): Promise<void> {
    // A scenario is one or two failovers and `maas-ha recover` runs; on a busy 2-core host (load average 20, where
    // one recover took 60-90 s) that was up to 2.5 min: more than ava's 120 s without a finished test.
    t.timeout(300_000, 'a campaign scenario');
    trace(`scenario: ${t.title}`);
    const c = await startCampaign(lab, { maxMs: 280_000 });
    let allow: Allowance = {};
    try {
      await waitFor('50 acknowledged writes before the fault', 20_000, async () => c.acks.length >= 50 || undefined);
      allow = (await body(c)) ?? {};
    } catch (err) {
      const report = await c.stop();
      t.log(summary(report));
      for (const v of violations(report, allow)) t.log(v);
      throw err;
    }
    trace('stopping the campaign');
    await probePastGrace(c, allow);
    const report = await c.stop();
    trace(summary(report));
    assertInvariants(t, report, allow);
  }

  const writeAfter = (c: Campaign, t0: number, node?: number) =>
    waitFor(`a write acknowledged${node === undefined ? '' : ` by node ${node}`} after the fault`, 30_000, async () => c.acksAfter(t0, node).length > 0 || undefined);


  test.before(async () => {
    Object.assign(lab, await startLab(req));
    await removeBlackHole(lab); // a table left by an earlier, killed run of this file
  });
  test.after.always(async () => {
    if (!lab.o) return;
    await removeBlackHole(lab);
    await stopLab(lab);
  });
  /**
   * Every scenario ends redundant by maas-ha's own commands. Only when one failed to (a broken scenario) is the lab
   * rebuilt here, so that one failure does not cascade into the next scenario.
   */
  test.beforeEach(async (t) => {
    await removeBlackHole(lab);
    const s = await clusterStatus(lab).catch(() => undefined);
    if (s && (await healthy(s))) return;
    t.timeout(180_000, 'rebuilding the lab');
    t.log(`the lab is not redundant after the previous scenario (${JSON.stringify(s?.problems ?? 'no status')}): rebuilding it`);
    await healLab(lab, { primary: 0 });
  });


  return {
    lab,
    NOISE,
    maasHa,
    primaryNow,
    healthy,
    waitHealthy,
    failoverDone,
    healWithMaasHa,
    hooksFinished,
    waitFor,
    trace,
    marks,
    unexpected,
    underCampaign,
    writeAfter,
  };
}
