// The region controller VIP end to end, against real pgpool-II 4.3 watchdogs in network namespaces (lib/lab/vip.ts):
// rc1 and rc2 are region controllers, a witness makes three watchdog members, the client checks the region through
// the VIP. One lab serves every scenario in order; each leaves the cluster whole (every member joined) for the next.

import test from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { waitFor } from '../../lib/lab/lab.ts';
import { logRecords, type LogRecord } from '../../lib/log-render.ts';
import {
  breakService,
  canReachPostgres,
  clientChecks,
  crash,
  fenced,
  notifications,
  reboot,
  setLink,
  startPgpool,
  stopPgpool,
  vipHolders,
  vipLabDown,
  vipLabUp,
  waitForClientChecks,
  waitForHolder,
  bootFence,
  waitSettled,
} from '../../lib/lab/vip.ts';
import { FENCED_USER, hostPaths, type HostName, type RcName, type VipLabOptions } from '../../lib/lab/vip-layout.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const o: VipLabOptions = {
  dir: '/var/lib/maas-ha-test/vip-e2e',
  net: 122,
  hookBinDir: join(ROOT, 'dist', 'bin'),
  watchdogTemplate: join(ROOT, 'pgpool', 'watchdog.conf'),
  pgBinDir: '/usr/lib/postgresql/15/bin',
};
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

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the VIP lab needs root (network namespaces, nftables, sshd)');
  await vipLabUp(o, () => {});
});
test.after.always(async () => {
  if (!process.env.MAAS_HA_KEEP_LAB) await vipLabDown(o, () => {}, { purge: true });
});

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
  t.deepEqual((await closed('rc1', 'de_escalation')).map((r) => r.outcome), ['ok']);
  t.deepEqual((await closed('rc2', 'escalation')).map((r) => r.outcome), ['ok']);
  const restarted = records('rc2').filter((r) => r.hook === 'escalation' && r.step === 'service' && r.outcome === 'ok').map((r) => r.service);
  t.deepEqual(restarted.sort(), ['maas-proxy', 'maas-regiond']);
  t.deepEqual((await closed('rc2', 'arping')).map((r) => r.outcome), ['ok']);
  t.deepEqual(unexpected(), []);
  // rc1 comes back as a standby, fenced from boot; no pre-emption (docs/lab.md, "No pre-emption").
  mark();
  await bootFence(o, 'rc1');
  await startPgpool(o, 'rc1');
  await joined('rc1');
  await waitSettled(o, 'rc2');
  t.deepEqual(await vipHolders(o), ['rc2']);
  t.true(await fenced(o, 'rc1'));
});

test.serial('crash of the leader (pgpool SIGKILL, link down): the VIP moves to rc1, the client checks pass; rc2 comes back fenced', async (t) => {
  mark();
  await crash(o, 'rc2');
  await waitFor('rc1 holding the VIP', MOVE_MS, async () => (await vipHolders(o)).includes('rc1') || undefined, 100);
  await waitForClientChecks(o, 'rc1', 30_000);
  t.false(await fenced(o, 'rc1'));
  t.true(await canReachPostgres(o, 'rc1', FENCED_USER));
  // No de-escalation ran on rc2; the new leader could not reach it to remove its stale VIP, and says so.
  const peer = records('rc1').find((r) => r.hook === 'escalation' && r.step === 'peer');
  t.is(peer?.peer_outcome, 'unreachable');
  t.deepEqual((await closed('rc1', 'escalation')).map((r) => r.outcome), ['ok']);
  t.deepEqual((await closed('rc1', 'arping')).map((r) => r.outcome), ['ok']);
  t.deepEqual(unexpected(), []);
  // Back from the crash as a reboot: the stale VIP is gone, the fence is up before pgpool starts.
  mark();
  await reboot(o, 'rc2');
  await joined('rc2');
  await waitSettled(o, 'rc1');
  t.true(await fenced(o, 'rc2'));
  t.false(await canReachPostgres(o, 'rc2', FENCED_USER));
  t.deepEqual(await vipHolders(o), ['rc1']);
});

test.serial('isolation of the leader: with the witness rc1 loses quorum and gives up the VIP, rc2 takes it', async (t) => {
  mark();
  await setLink(o, 'rc1', 'down');
  await waitFor('rc1 giving up the VIP', MOVE_MS, async () => !(await vipHolders(o)).includes('rc1') || undefined, 100);
  t.is(await waitForHolder(o, MOVE_MS, 'rc2'), 'rc2');
  await waitForClientChecks(o, 'rc2', 30_000);
  t.true(await fenced(o, 'rc1'));
  t.deepEqual((await closed('rc1', 'de_escalation')).map((r) => r.outcome), ['ok']);
  t.deepEqual((await closed('rc1', 'ip_down')).map((r) => r.outcome), ['ok']);
  t.deepEqual((await closed('rc2', 'escalation')).map((r) => r.outcome), ['ok']);
  // The isolated rc1 could not be asked about the VIP; it had already released it by itself.
  t.deepEqual(unexpected(), []);
  mark();
  await setLink(o, 'rc1', 'up');
  await waitSettled(o, 'rc2');
  t.deepEqual(await vipHolders(o), ['rc2']);
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
