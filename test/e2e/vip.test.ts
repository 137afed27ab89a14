// The region controller VIP end to end, against real pgpool-II 4.3 watchdogs in network namespaces (lib/lab/vip.ts):
// rc1 and rc2 are region controllers, a witness makes three watchdog members, the client checks the region through
// the VIP. One lab serves every scenario in order; each leaves the cluster whole (every member joined, both
// PostgreSQL nodes redundant) for the next.
//
// PostgreSQL fails over in this lab too (the leader pgpool runs maas-ha's database hooks), so the scenarios where a
// watchdog fault and a database fault meet run under the fault campaign's writer and probe (lib/lab/campaign.ts,
// inside the client namespace): no acknowledged row lost, one writable primary at a time (an isolated one demoted
// within 5 s of the heal), no row acknowledged by an old primary, and full redundancy back with `maas-ha recover`.
//
// The client namespace is also the cluster (rack) controller: its resolver lists both region controllers'
// secondary DNS servers, and its rack stand-in asks the region for its event loops through the VIP.

import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Allowance, Campaign, CampaignReport } from '../../lib/lab/campaign.ts';
import { waitFor } from '../../lib/lab/lab.ts';
import { vipLabForFile } from '../support/vip-lab.ts';
import { logRecords, type LogRecord } from '../../lib/log-render.ts';
import { createShell } from '../../lib/adapters/exec.ts';
import { readRackdStatus } from '../../lib/lab/vip-standin.ts';
import {
  addZoneRecord,
  askSecondary,
  breakService,
  canReachPostgres,
  clientChecks,
  clientVipCheck,
  clusterResolve,
  crash,
  fenced,
  killPgpool,
  killPostgres,
  maasHaOn,
  notifications,
  reboot,
  setLink,
  startPgpool,
  stopPgpool,
  vipHolders,
  waitForClientChecks,
  waitForHolder,
  bootFence,
  startVipCampaign,
  waitSettled,
} from '../../lib/lab/vip.ts';
import { assertInvariants, probePastGrace } from '../support/campaign.ts';
import { recoverJson } from '../support/lab.ts';
import { FENCED_USER, RCS, addr, clusterPaths, hostPaths, ns, vipAddr, vipPaths, type HostName, type RcName } from '../../lib/lab/vip-layout.ts';

const o = vipLabForFile(test, { dir: '/var/lib/maas-ha-test/vip-e2e', net: 122 });
const MOVE_MS = 60_000;

type Rec = LogRecord;
const marks = new Map<HostName, number>();
const logOf = (h: HostName) => hostPaths(o.dir, h).pgpoolLog;
function mark(): void {
  for (const h of ['rc1', 'rc2', 'wit'] as const) marks.set(h, existsSync(logOf(h)) ? statSync(logOf(h)).size : 0);
}
function since(h: HostName): string {
  return existsSync(logOf(h)) ? readFileSync(logOf(h)).subarray(marks.get(h) ?? 0).toString('utf8') : '';
}
function records(h: HostName): Rec[] {
  return logRecords(since(h));
}
const closing = (h: HostName, hook: string) => records(h).filter((r) => r.hook === hook && r.step === 'done');
/** The closing lines of `hook` on `h` once there is one: the hook may still run when the client's checks pass. */
const closed = (h: HostName, hook: string) => waitFor(`${hook} on ${h} to finish`, 30_000, async () => (closing(h, hook).length ? closing(h, hook) : undefined), 200);
/**
 * `hook` on `h` finished ok. When it did not, the message carries what that hook logged at warn or error level
 * since the mark (the step, its outcome and its words), so a failure in CI says which step failed and why.
 */
async function closedOk(t: ExecutionContext, h: HostName, hook: string): Promise<void> {
  const done = await closed(h, hook);
  const why = records(h)
    .filter((r) => r.hook === hook && (r.level === 'warn' || r.level === 'error' || r.step === 'done'))
    .map((r) => `${r.step ?? '-'} ${r.outcome ?? ''}: ${r.msg}`);
  t.deepEqual(done.map((r) => r.outcome), ['ok'], `${hook} on ${h}:\n${why.join('\n')}`);
}
/** maas-ha error records and pgpool FATAL/PANIC lines after the mark, minus what a scenario expects. */
function unexpected(expected: RegExp[] = []): string[] {
  return (['rc1', 'rc2', 'wit'] as const).flatMap((h) =>
    since(h)
      .split('\n')
      .filter((l) => (l.startsWith('{') ? /"level":"(error|fatal)"/.test(l) : /\b(FATAL|PANIC):/.test(l)))
      .filter((l) => !expected.some((re) => re.test(l)))
      .map((l) => `${h}: ${l}`),
  );
}
/** A member that (re)started has joined the watchdog cluster as a standby: the next move has a candidate. */
async function joined(h: HostName): Promise<void> {
  await waitFor(`${h} joined the watchdog cluster`, 40_000, async () => /successfully joined the watchdog cluster as standby node/.test(since(h)) || undefined, 200);
}

// ---- the database side

interface Status {
  primary: number | null;
  rows: { id: number; pgRole: string; pgpoolStatus: string; timeline: number | null }[];
  problems: string[];
}
async function status(on: RcName): Promise<{ code: number | null; s?: Status; text: string }> {
  const r = await maasHaOn(o, on, ['status', '--json'], 30_000);
  try {
    return { code: r.exitCode, s: JSON.parse(r.stdout) as Status, text: r.stdout };
  } catch {
    return { code: r.exitCode, text: `${r.stdout}${r.stderr}` };
  }
}
/** `maas-ha status` on `on` finds nothing wrong: one primary, the other node streaming, both up in pgpool, synchronous. */
async function redundant(on: RcName, primary: number): Promise<void> {
  let last = '';
  try {
    await waitFor(`full redundancy with node ${primary} primary (maas-ha status on ${on})`, 60_000, async () => {
      const r = await status(on);
      last = r.text;
      return r.code === 0 && r.s?.primary === primary ? true : undefined;
    }, 1000);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last status:\n${last}`);
  }
}
/**
 * `maas-ha recover NODE` on `on`, as the operator would after the fault; the closing line goes to the test log.
 * A node that pgpool's own hooks already brought back (follow_primary rewinds a cleanly stopped former primary once
 * pgpool runs it for that node) is refused as a healthy standby that pgpool has up: nothing left to do, and the
 * caller's redundancy check still has to pass.
 */
async function recover(t: { log(...v: unknown[]): void }, on: RcName, node: number): Promise<void> {
  const r = await maasHaOn(o, on, ['recover', String(node), '--json']);
  if (r.exitCode === 1 && recoverJson(r.stdout)?.reason === 'healthy-standby') {
    t.log(`maas-ha recover ${node} on ${on}: nothing to do: ${r.stderr.trim()}`);
    return;
  }
  if (r.exitCode !== 0) throw new Error(`maas-ha recover ${node} on ${on}: exit ${r.exitCode}\n${r.stdout}${r.stderr}`);
  t.log(`maas-ha recover ${node} on ${on}: ${r.stdout.trim().split('\n').at(-1)}`);
}
/**
 * Rows acknowledged through the VIP by `node` after `t0`: before a fault, rows the old primary holds when it goes
 * (what the invariants must find again); after it, writes back on the primary expected.
 */
const writesBy = (c: Campaign, t0: number, node: number) =>
  waitFor(`20 rows acknowledged by node ${node} through the VIP`, 60_000, async () => c.acksAfter(t0, node).length >= 20 || undefined, 100);
/** Runs `body` under the campaign's writer and probe, then asserts the invariants over what they saw. */
async function underCampaign(t: Parameters<typeof assertInvariants>[0], body: (c: Campaign) => Promise<Allowance | void>): Promise<void> {
  const c = await startVipCampaign(o);
  let allow: Allowance = {};
  let report: CampaignReport;
  try {
    allow = (await body(c)) ?? {};
    await probePastGrace(c, allow);
  } finally {
    report = await c.stop();
  }
  assertInvariants(t, report, allow);
}

/** A pgpool back as its unit starts it (the fence first), joined as a standby, with `leader` still leading. */
async function pgpoolBack(h: RcName, leader: RcName): Promise<void> {
  await bootFence(o, h);
  await startPgpool(o, h);
  await joined(h);
  await waitSettled(o, leader);
}

test.serial('both region controllers up: rc1 leads and holds the VIP, its services answer through it, rc2 is fenced', async (t) => {
  t.deepEqual(await vipHolders(o), ['rc1']);
  const checks = await clientChecks(o);
  t.deepEqual(checks.map((c) => [c.check, c.ok]), [['api', true], ['dns', true], ['proxy', true]]);
  t.regex(checks[0]!.detail, /lab stand-in on rc1/);
  t.false(await fenced(o, 'rc1'));
  t.true(await fenced(o, 'rc2'));
  // The fence stops the region services' user, not pgpool's: the passive pgpool keeps its backends.
  t.false(await canReachPostgres(o, 'rc2', FENCED_USER));
  t.true(await canReachPostgres(o, 'rc2', 'postgres'));
  t.true(await canReachPostgres(o, 'rc1', FENCED_USER));
  const arping = (await waitFor('the arping notification', 30_000, async () => notifications(o).find((n) => n.hook === 'arping'), 200)) as {
    outcome: string;
    timeline: { event: string; check?: string }[];
  };
  t.is(arping.outcome, 'ok');
  t.true(notifications(o).some((n) => n.hook === 'escalation' && n.outcome === 'ok'));
  t.deepEqual(arping?.timeline.filter((e) => e.event === 'check_passed').map((e) => e.check), ['api', 'dns', 'proxy']);
  t.true(arping?.timeline.some((e) => e.event === 'vip_acquired'));
});

test.serial('graceful stop of the leader: the VIP moves to rc2, escalation restarts its services, the client checks pass, rc1 is fenced', async (t) => {
  mark();
  await stopPgpool(o, 'rc1');
  t.is(await waitForHolder(o, MOVE_MS, 'rc2'), 'rc2');
  const checks = await waitForClientChecks(o, 'rc2', 30_000);
  t.true(checks.every((c) => c.ok));
  t.true(await fenced(o, 'rc1'));
  t.false(await canReachPostgres(o, 'rc1', FENCED_USER));
  t.false(await fenced(o, 'rc2'));
  t.true(await canReachPostgres(o, 'rc2', FENCED_USER));
  await closedOk(t, 'rc1', 'de_escalation');
  await closedOk(t, 'rc2', 'escalation');
  const restarted = records('rc2').filter((r) => r.hook === 'escalation' && r.step === 'service' && r.outcome === 'ok').map((r) => r.service);
  t.deepEqual(restarted.sort(), ['maas-proxy', 'maas-regiond']);
  await closedOk(t, 'rc2', 'arping');
  t.deepEqual(unexpected(), []);
  // rc1 comes back as a standby, fenced from boot; no pre-emption (docs/lab.md, "No pre-emption").
  mark();
  await pgpoolBack('rc1', 'rc2');
  t.deepEqual(await vipHolders(o), ['rc2']);
  t.true(await fenced(o, 'rc1'));
});

test.serial('the cluster controller\'s DNS: both secondaries carry the new holder\'s zone after the move, its resolver answers, a record added on the active side reaches both', async (t) => {
  t.deepEqual(await clusterResolve(o, 'api.maas'), [vipAddr(o)]);
  // The arping hook of the new holder (rc2) had both secondaries transfer its zone again, whatever the serials.
  for (const rc of RCS) t.deepEqual(await askSecondary(o, rc, 'region.maas', 'TXT'), ['rc2'], `${rc}'s secondary`);
  const { secondaries } = await clientVipCheck(o);
  t.deepEqual(secondaries.map((f) => [f.server.split(' ')[0], f.ok]), RCS.map((rc) => [rc, true]), JSON.stringify(secondaries));
  // A machine gets an address: the record lands on the active primary and its NOTIFY brings it to both secondaries.
  const address = `198.18.${o.net}.77`;
  await addZoneRecord(o, 'rc2', 'machine-1', address);
  for (const rc of RCS) {
    await waitFor(`machine-1.maas on ${rc}'s secondary`, 15_000, async () => (await askSecondary(o, rc, 'machine-1.maas', 'A')).includes(address) || undefined, 200);
  }
  t.deepEqual(await clusterResolve(o, 'machine-1.maas'), [address]);
});

test.serial('the cluster controller\'s identity: backup, wiped, restored, and its rack reaches the region through the VIP again; rack check catches a maas_url on a node', async (t) => {
  const c = clusterPaths(o);
  const inCl = (args: string[]) => createShell().run(['ip', 'netns', 'exec', ns(o, 'cl'), join(vipPaths(o.dir).bin, 'maas-ha'), ...args], { timeoutMs: 60_000 });
  const rack = (...args: string[]) => inCl(['rack', ...args, '--config', c.config]);
  const files = ['etc/maas/rackd.conf', 'var/lib/maas/secret', 'var/lib/maas/maas_id'].map((f) => join(c.root, f));
  const url = `http://${vipAddr(o)}:5240/MAAS`;
  t.like(readRackdStatus(o), { connected: true, url });
  const before = files.map((f) => readFileSync(f, 'utf8'));
  t.is((await rack('check')).exitCode, 0);

  const archive = join(o.dir, 'cl', 'rack-backup.tar');
  const backup = await rack('backup', '--out', archive);
  t.is(backup.exitCode, 0, backup.stderr);
  t.is(statSync(archive).mode & 0o777, 0o600);
  t.false(`${backup.stdout}${backup.stderr}`.includes(before[1]!.trim()), 'the secret is never printed');

  // The host is rebuilt: no identity, and the rack will not start without one.
  for (const f of files) rmSync(f);
  const broken = await inCl(['lab', 'vip', 'rackd', 'restart', '--dir', o.dir]);
  t.not(broken.exitCode, 0);
  t.like(readRackdStatus(o), { connected: false, detail: 'no maas_url in rackd.conf' });
  t.is((await rack('check')).exitCode, 1);

  const dry = await rack('restore', archive, '--dry-run');
  t.is(dry.exitCode, 0, dry.stderr);
  t.false(files.some((f) => existsSync(f)), '--dry-run writes nothing');
  const restored = await rack('restore', archive);
  t.is(restored.exitCode, 0, `${restored.stdout}${restored.stderr}`);
  t.regex(restored.stdout, /rack restored: GET .*\/MAAS\/rpc\/: 1 region event loop/);
  t.deepEqual(files.map((f) => readFileSync(f, 'utf8')), before);
  t.is(statSync(files[1]!).mode & 0o777, 0o600);
  t.like(readRackdStatus(o), { connected: true, url });
  t.is((await rack('check', '--backup', archive)).exitCode, 0);

  // A maas_url on one region controller's own address: the rack would lose the region with that node.
  writeFileSync(files[0]!, `maas_url: http://${addr(o, 'rc1')}:5240/MAAS\n`);
  const wrong = await rack('check');
  t.is(wrong.exitCode, 1);
  t.true(wrong.stdout.includes(addr(o, 'rc1')) && wrong.stdout.includes(vipAddr(o)), wrong.stdout);
  t.is((await rack('restore', archive)).exitCode, 0);
  t.is((await rack('check')).exitCode, 0);
});

test.serial('crash of the leader with the standby on it (pgpool, PostgreSQL, link): the VIP moves to rc1, writes go on, rc2 comes back fenced and recovered', async (t) => {
  await redundant('rc1', 0);
  mark();
  await underCampaign(t, async (c) => {
    await writesBy(c, c.startedAt, 0);
    const crashedAt = Date.now();
    await crash(o, 'rc2');
    await waitFor('rc1 holding the VIP', MOVE_MS, async () => (await vipHolders(o)).includes('rc1') || undefined, 100);
    await waitForClientChecks(o, 'rc1', 30_000);
    // The cluster controller keeps resolving MAAS names with rc2's host gone.
    t.deepEqual(await clusterResolve(o, 'api.maas'), [vipAddr(o)]);
    t.false(await fenced(o, 'rc1'));
    t.true(await canReachPostgres(o, 'rc1', FENCED_USER));
    // No de-escalation ran on rc2; the new leader could not reach it to remove its stale VIP, and says so.
    const peer = records('rc1').find((r) => r.hook === 'escalation' && r.step === 'peer');
    t.is(peer?.peer_outcome, 'unreachable');
    await closedOk(t, 'rc1', 'escalation');
    await closedOk(t, 'rc1', 'arping');
    // The standby died with its host: the new leader's failover hook relaxed synchronous replication, so the
    // primary on rc1 goes on committing through the VIP.
    await closedOk(t, 'rc1', 'failover');
    await writesBy(c, crashedAt, 0);
    t.deepEqual(unexpected(), []);
    // Back from the crash as a reboot: the stale VIP is gone, the fence is up before pgpool starts; its
    // PostgreSQL comes back through maas-ha recover (a crashed standby on the primary's timeline: a start).
    mark();
    await reboot(o, 'rc2');
    await joined('rc2');
    await waitSettled(o, 'rc1');
    t.true(await fenced(o, 'rc2'));
    t.false(await canReachPostgres(o, 'rc2', FENCED_USER));
    t.deepEqual(await vipHolders(o), ['rc1']);
    await recover(t, 'rc1', 1);
    await redundant('rc1', 0);
  });
});

test.serial('isolation of the leader holding the primary: rc1 loses quorum and gives up the VIP, rc2 takes it and is promoted; after the heal the guard demotes rc1, recover rejoins it', async (t) => {
  await redundant('rc1', 0);
  mark();
  await underCampaign(t, async (c) => {
    await writesBy(c, c.startedAt, 0);
    const cutAt = Date.now();
    await setLink(o, 'rc1', 'down');
    await waitFor('rc1 giving up the VIP', MOVE_MS, async () => !(await vipHolders(o)).includes('rc1') || undefined, 100);
    t.is(await waitForHolder(o, MOVE_MS, 'rc2'), 'rc2');
    await waitForClientChecks(o, 'rc2', 30_000);
    // The cluster controller's resolver: rc1's secondary (listed first) does not answer, rc2's does.
    t.deepEqual(await clusterResolve(o, 'api.maas'), [vipAddr(o)]);
    t.true(await fenced(o, 'rc1'));
    await closedOk(t, 'rc1', 'de_escalation');
    await closedOk(t, 'rc1', 'ip_down');
    await closedOk(t, 'rc2', 'escalation');
    // The database: rc2's pgpool and the witness agree the primary is gone; the new leader's failover hook promotes
    // rc2 and, unable to reach rc1 over ssh, leaves its fence pending. The isolated rc1 keeps running as a primary
    // no client can reach (its synchronous standby is gone, so it acknowledges nothing).
    const failover = await closed('rc2', 'failover');
    t.deepEqual(failover.map((r) => r.outcome), ['ok']);
    t.regex(failover[0]!.msg, /promoted node 1/);
    await writesBy(c, cutAt, 1);
    // The isolated rc1 could not be asked about the VIP; it had already released it by itself. Its fence could
    // not run either: the one error expected (the guard finishes the job once the link is back).
    t.deepEqual(unexpected([/old primary node 0 could not be stopped over ssh .*fenced-pending/]), []);
    mark();
    await setLink(o, 'rc1', 'up');
    const healedAt = Date.now();
    // rc1's guard sees the newer timeline and demotes it (standby.signal, stop) within the 5 s the invariants allow.
    await waitFor('rc1 no longer answering writable', 15_000, async () => {
      const s = c.lastSample(0, healedAt);
      return s && s.state !== 'writable' ? true : undefined;
    }, 100);
    await waitSettled(o, 'rc2');
    t.deepEqual(await vipHolders(o), ['rc2']);
    await recover(t, 'rc2', 0);
    await redundant('rc2', 1);
    return { allowIsolatedPrimary: { node: 0, healedAt } };
  });
});

test.serial('a service that fails to restart: escalation exits 1, logs the error and notifies, while the VIP still comes up', async (t) => {
  breakService(o, 'rc1', 'maas-proxy', true);
  t.teardown(() => breakService(o, 'rc1', 'maas-proxy', false));
  mark();
  await stopPgpool(o, 'rc2');
  t.is(await waitForHolder(o, MOVE_MS, 'rc1'), 'rc1');
  // The proxy that would not restart is the old one, still running: the checks pass, the hook still failed.
  await waitForClientChecks(o, 'rc1', 30_000);
  await waitFor('pgpool to log the escalation exit status', 20_000, async () => /watchdog escalation command failed with exit status: 1/.test(since('rc1')) || undefined, 200);
  const done = await closed('rc1', 'escalation');
  t.deepEqual(done.map((r) => [r.level, r.outcome]), [['error', 'failed']]);
  t.regex(done[0]!.msg, /maas-proxy did not restart/);
  t.true(records('rc1').some((r) => r.hook === 'escalation' && r.step === 'service' && r.service === 'maas-proxy' && r.level === 'error'));
  const sent = await waitFor('the failure notification', 10_000, async () => notifications(o).find((n) => n.hook === 'escalation' && n.outcome === 'failed'), 200);
  t.regex(String(sent.summary), /maas-proxy did not restart/);
  t.deepEqual(unexpected([/maas-proxy/]), []);
  // Leave the cluster whole.
  await bootFence(o, 'rc2');
  await startPgpool(o, 'rc2');
  await waitSettled(o, 'rc1');
});

test.serial('the leader pgpool and the primary crash at once, on different hosts: the new leader takes the VIP and runs the failover; no acknowledged write lost', async (t) => {
  // After the scenarios above rc1 leads and rc2 holds the primary.
  t.deepEqual(await vipHolders(o), ['rc1']);
  await redundant('rc1', 1);
  mark();
  await underCampaign(t, async (c) => {
    await writesBy(c, c.startedAt, 1);
    const at = Date.now();
    // The leader's pgpool dies (no de-escalation, its failover_command never runs) as the primary's postmaster does.
    killPgpool(o, 'rc1');
    killPostgres(o, 'rc2');
    t.is(await waitForHolder(o, MOVE_MS, 'rc2'), 'rc2');
    await waitForClientChecks(o, 'rc2', 30_000);
    // The new leader (rc2's pgpool, with the witness's vote) fails the dead primary over: rc1's standby is promoted.
    const failover = await closed('rc2', 'failover');
    t.deepEqual(failover.map((r) => r.outcome), ['ok']);
    t.regex(failover[0]!.msg, /promoted node 0/);
    await closedOk(t, 'rc2', 'escalation');
    await writesBy(c, at, 0);
    t.deepEqual(unexpected(), []);
    // rc1's pgpool comes back as its unit would (fenced first) and joins as a standby; rc2's PostgreSQL rejoins
    // through maas-ha recover.
    mark();
    await pgpoolBack('rc1', 'rc2');
    t.deepEqual(await vipHolders(o), ['rc2']);
    await recover(t, 'rc2', 1);
    await redundant('rc2', 0);
  });
});
