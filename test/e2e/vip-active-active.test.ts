// vip.mode: active-active end to end (docs/maas.md, "Active-passive or active-active"): the VIP lab of
// test/e2e/vip.test.ts with every region controller serving all the time. Both run their stand-in regiond, squid
// and bind9 from the start, unfenced; bind9 binds the VIP ahead of time (ip_nonlocal_bind in each namespace, as
// install.sh's sysctl file does on a host). A VIP move then restarts nothing: the new holder's hooks add the
// address, announce it and prove the services answer through it, with the very processes that ran before.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../../lib/lab/lab.ts';
import { vipLabForFile } from '../support/vip-lab.ts';
import { canReachPostgres, clientChecks, crash, fenced, maasHaOn, notifications, vipHolders, waitForClientChecks } from '../../lib/lab/vip.ts';
import { FENCED_USER, hostPaths, LAB_SERVICES, RCS, type RcName } from '../../lib/lab/vip-layout.ts';

const o = vipLabForFile(test, { dir: '/var/lib/maas-ha-test/vip-aa-e2e', net: 123, mode: 'active-active' });

/** The pid of every stand-in service on `rc`: a restart would change it. */
const servicePids = (rc: RcName) => Object.fromEntries(LAB_SERVICES.map((s) => [s, readFileSync(join(hostPaths(o.dir, rc).svc(s), 'service.pid'), 'utf8').trim()]));

interface Note {
  hook: string;
  host?: string;
  outcome: string;
  timeline: { event: string; service?: string; check?: string }[];
}
const notes = () => notifications(o) as unknown as Note[];

test.serial('active-active: rc1 holds the VIP, both region controllers serve and neither is fenced; the escalation restarted nothing', async (t) => {
  t.deepEqual(await vipHolders(o), ['rc1']);
  const checks = await clientChecks(o);
  t.deepEqual(checks.map((c) => [c.check, c.ok]), [['api', true], ['dns', true], ['proxy', true]]);
  t.regex(checks[0]!.detail, /lab stand-in on rc1/);
  for (const rc of RCS) {
    t.false(await fenced(o, rc), `${rc} is not fenced`);
    // (pg_isready against the primary on rc1, as the fenced user on each host)
    t.true(await canReachPostgres(o, rc, FENCED_USER), `the region services' user on ${rc} reaches the database`);
  }
  const escalation = notes().find((n) => n.hook === 'escalation');
  t.is(escalation?.outcome, 'ok');
  t.deepEqual(escalation?.timeline.filter((e) => e.event.startsWith('service_') || e.event === 'fence_lifted'), []);
});

test.serial('active-active: crash of the leader holding the primary → rc2 takes the VIP and the database, and answers with the processes it already ran', async (t) => {
  const before = servicePids('rc2');
  const sent = notes().length;
  const crashedAt = Date.now();
  await crash(o, 'rc1');
  await waitFor('rc2 holding the VIP', 60_000, async () => (await vipHolders(o)).includes('rc2') || undefined, 50);
  await waitForClientChecks(o, 'rc2', 30_000);
  t.log(`leader crash → API, DNS and proxy answer through the VIP from rc2: ${((Date.now() - crashedAt) / 1000).toFixed(1)} s`);
  t.deepEqual(servicePids('rc2'), before, 'no service on rc2 was restarted');
  const escalation = await waitFor('the escalation notification of rc2', 30_000, async () => notes().slice(sent).find((n) => n.hook === 'escalation'), 200);
  t.is(escalation.outcome, 'ok');
  t.deepEqual(escalation.timeline.filter((e) => e.event.startsWith('service_')), []);
  const arping = await waitFor('the arping notification of rc2', 30_000, async () => notes().slice(sent).find((n) => n.hook === 'arping'), 200);
  t.is(arping.outcome, 'ok');
  t.deepEqual(arping.timeline.filter((e) => e.event === 'check_passed').map((e) => e.check), ['api', 'dns', 'proxy']);
  t.deepEqual(arping.timeline.filter((e) => e.event.startsWith('service_')), []);
  // The database followed: rc2's pgpool ran the failover, node 1 is the primary the region writes to.
  await waitFor('node 1 primary (maas-ha status on rc2)', 60_000, async () => {
    const r = await maasHaOn(o, 'rc2', ['status', '--json'], 30_000);
    try {
      return (JSON.parse(r.stdout) as { primary: number | null }).primary === 1 || undefined;
    } catch {
      return undefined;
    }
  }, 1000);
});
