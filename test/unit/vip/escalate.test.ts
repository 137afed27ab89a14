// The VIP use cases' pure parts: who this host is, what escalation / after-VIP / de-escalation plan from it, how
// arping decides between its two modes, and how command results are read. Tables of one-liners; nothing spawned.

import test from 'ava';
import type { VipConfig } from '../../../lib/config/types.ts';
import type { RunResult } from '../../../lib/model/ports.ts';
import { arpingMode, describePlan, planAfterVip, planDeEscalation, planEscalation, unreachablePeers, vipPlanReport } from '../../../lib/vip/escalate.ts';
import { hostView, interpretIpAdd, interpretIpDel, interpretPeerRemove, parseIpAddrs, peerRemoveArgv } from '../../../lib/vip/host.ts';
import { interpretFenceOff, interpretFenceStatus } from '../../../lib/vip/fence.ts';
import { PRESETS } from '../../../lib/config/presets.ts';
import { testVip } from '../../support/config.ts';

const IP_OUT = `1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.0.11/24 brd 10.0.0.255 scope global eth0\\       valid_lft forever preferred_lft forever
2: eth0    inet 10.0.0.100/24 scope global secondary eth0\\       valid_lft forever preferred_lft forever
3: ens4@if7    inet 192.168.9.2/30 scope global ens4\\       valid_lft forever preferred_lft forever
`;

const result = (over: Partial<RunResult>): RunResult => ({ argv: ['x'], exitCode: 0, signal: null, stdout: '', stderr: '', durationMs: 5, timedOut: false, ...over });

test('vip host: ip -o addr output → addresses per interface (veth suffix dropped)', (t) => {
  t.deepEqual(parseIpAddrs(IP_OUT), [
    { iface: 'lo', address: '127.0.0.1', prefix: 8 },
    { iface: 'eth0', address: '10.0.0.11', prefix: 24 },
    { iface: 'eth0', address: '10.0.0.100', prefix: 24 },
    { iface: 'ens4', address: '192.168.9.2', prefix: 30 },
  ]);
});

test('vip host: this host is found by its address; every other region controller is a peer', (t) => {
  const vip = testVip();
  const cases: [string, string | undefined, string[], boolean][] = [
    [IP_OUT, 'region1', ['region2'], true],
    [IP_OUT.replace('10.0.0.11/', '10.0.0.12/'), 'region2', ['region1'], true],
    [IP_OUT.replace(/.*10\.0\.0\.100.*\n/, ''), 'region1', ['region2'], false],
    // The VIP on another interface is not ours to count.
    [IP_OUT.replace('10.0.0.100/24 scope global secondary eth0', '10.0.0.100/24 scope global ens4').replace('2: eth0    inet 10.0.0.100', '3: ens4    inet 10.0.0.100'), 'region1', ['region2'], false],
    ['', undefined, ['region1', 'region2'], false],
  ];
  for (const [out, self, peers, holds] of cases) {
    const v = hostView(vip, parseIpAddrs(out));
    t.deepEqual([v.self?.name, v.peers.map((p) => p.name), v.holdsVip], [self, peers, holds]);
  }
});

test('vip plan: escalation → every peer asked, fence lifted (nftables only), services that do not bind the VIP restarted', (t) => {
  const view = hostView(testVip(), parseIpAddrs(IP_OUT));
  const names = (s: { name: string }[]) => s.map((x) => x.name);
  const e = planEscalation(testVip(), view);
  t.deepEqual([e.peers.map((p) => p.name), e.liftFence, names(e.restart)], [['region2'], true, ['maas-regiond', 'maas-apiserver', 'maas-http', 'maas-proxy', 'maas-temporal']]);
  const stop = planEscalation(testVip({ fence: { ...testVip().fence, method: 'stop-services' } }), view);
  t.false(stop.liftFence);
  const snap = planEscalation(testVip({ services: { preset: 'maas-snap', manager: 'snap', list: PRESETS['maas-snap'].services, timeout_ms: 1000 } }), view);
  t.deepEqual(names(snap.restart), []);
});

test('vip plan: after the VIP → VIP-bound services, the configured checks, our secondary DNS first then the peers', (t) => {
  const view = hostView(testVip(), parseIpAddrs(IP_OUT));
  const a = planAfterVip(testVip(), view);
  t.deepEqual(a.restart.map((s) => s.name), ['bind9']);
  t.deepEqual(a.checks, ['api', 'dns', 'proxy']);
  t.deepEqual(a.slaves, [{ address: '10.0.0.11', local: true }, { address: '10.0.0.12', local: false }]);
  const noDns = testVip({ checks: { timeout_ms: 1, interval_ms: 1, api: { port: 1, path: '/' } } });
  const { slave_dns: _s, ...withoutSlaves } = noDns;
  t.deepEqual(planAfterVip(withoutSlaves, view), { restart: [noDns.services.list.find((s) => s.needs_vip)!], checks: ['api'], slaves: [] });
});

test('vip plan: after a crash, the peer the escalation could not reach → its secondary DNS is skipped, ours kept', (t) => {
  const view = hostView(testVip(), parseIpAddrs(IP_OUT));
  const journal = [
    { at: '2026-11-25T10:00:00Z', event: 'de-escalated', ok: true },
    { at: '2026-11-25T10:05:00Z', event: 'escalated', ok: true, unreachable: ['10.0.0.12'] },
  ];
  t.deepEqual(unreachablePeers(journal), ['10.0.0.12']);
  t.deepEqual(planAfterVip(testVip(), view, unreachablePeers(journal)).slaves, [{ address: '10.0.0.11', local: true }]);
  t.deepEqual(unreachablePeers([{ at: '2026-11-25T10:05:00Z', event: 'escalated', ok: true }]), [], 'an old journal entry without the field');
});

test('vip plan: de-escalation → nftables fence, or every service stopped, or nothing', (t) => {
  const vip = testVip();
  t.deepEqual(planDeEscalation(vip), { fence: true, stop: [] });
  t.deepEqual(planDeEscalation({ ...vip, fence: { ...vip.fence, method: 'stop-services' } }), { fence: false, stop: vip.services.list });
  t.deepEqual(planDeEscalation({ ...vip, fence: { ...vip.fence, method: 'none' } }), { fence: false, stop: [] });
});

test('vip plan: arping does the whole escalation unless an escalation ran within the window and nothing de-escalated since', (t) => {
  const now = Date.parse('2026-01-01T00:01:00Z');
  const at = (s: number) => new Date(now - s * 1000).toISOString();
  const cases: [Record<string, unknown>[], 'after-vip' | 'whole'][] = [
    [[], 'whole'],
    [[{ event: 'escalated', at: at(3) }], 'after-vip'],
    [[{ event: 'escalated', at: at(61) }], 'whole'],
    [[{ event: 'escalated', at: at(30) }, { event: 'de-escalated', at: at(20) }], 'whole'],
    [[{ event: 'de-escalated', at: at(20) }, { event: 'escalated', at: at(2) }, { event: 'other', at: at(1) }], 'after-vip'],
    [[{ event: 'escalated', at: new Date(now + 5000).toISOString() }], 'whole'],
  ];
  for (const [journal, want] of cases) t.is(arpingMode(journal, now, 60_000), want, JSON.stringify(journal));
});

test('vip plan: describePlan says what each part would do, in words', (t) => {
  const text = describePlan(vipPlanReport(testVip(), hostView(testVip(), parseIpAddrs(IP_OUT))));
  t.regex(text, /this host: region1 \(10\.0\.0\.11\); VIP 10\.0\.0\.100 is on eth0/);
  t.regex(text, /remove the VIP from region2 \(10\.0\.0\.12\) if it holds it/);
  t.regex(text, /restart bind9; check api, dns, proxy; retransfer maas on 10\.0\.0\.11, 10\.0\.0\.12/);
  t.regex(text, /load the nftables fence \(maas → ports 5432, 9999\)/);
});

test('vip plan --json: the same plan as data, every phase, nothing left to parse out of prose', (t) => {
  const r = vipPlanReport(testVip(), hostView(testVip(), parseIpAddrs(IP_OUT)));
  t.like(r, { host: { name: 'region1', address: '10.0.0.11' }, vip: '10.0.0.100', interface: 'eth0', holds_vip: true, mode: 'active-passive' });
  t.deepEqual(r.escalation.remove_vip_from, [{ name: 'region2', address: '10.0.0.12' }]);
  t.true(r.escalation.lift_fence);
  t.deepEqual(r.after_vip.restart, ['bind9']);
  t.deepEqual(r.after_vip.retransfer, { zones: ['maas'], on: ['10.0.0.11', '10.0.0.12'] });
  t.deepEqual(r.de_escalation, { fence: { users: ['maas'], ports: [5432, 9999] }, stop: [] });
  // Serialisable as it is (the CLI prints JSON.stringify of it).
  t.deepEqual(JSON.parse(JSON.stringify(r)), r);
});

test('vip results: ip add/del that find the address already there (or gone) succeed; anything else fails with its words', (t) => {
  t.deepEqual(interpretIpAdd(result({})), { ok: true, already: false, detail: 'added' });
  t.true(interpretIpAdd(result({ exitCode: 2, stderr: 'RTNETLINK answers: File exists\n' })).already);
  t.deepEqual(interpretIpAdd(result({ argv: ['/usr/bin/sudo'], exitCode: 1, stderr: 'sudo: a password is required\n' })).ok, false);
  t.regex(interpretIpAdd(result({ argv: ['/nope/ip'], exitCode: 127 })).detail, /could not be run \(exit 127: missing or not executable\)/);
  t.true(interpretIpDel(result({ exitCode: 2, stderr: 'RTNETLINK answers: Cannot assign requested address\n' })).ok);
  t.false(interpretIpDel(result({ exitCode: 1, stderr: 'RTNETLINK answers: Operation not permitted\n' })).ok);
});

test('vip results: peer removal → removed, absent, unreachable (ssh 255, our timeout or the peer\'s own bound), failed', (t) => {
  const cases: [Partial<RunResult>, 'removed' | 'absent' | 'unreachable' | 'failed'][] = [
    [{ stdout: 'removed\n' }, 'removed'],
    [{ stdout: 'absent\n' }, 'absent'],
    [{ exitCode: 255, stderr: 'ssh: connect to host 10.0.0.12 port 22: No route to host\n' }, 'unreachable'],
    [{ exitCode: null, timedOut: true, signal: 'SIGKILL' }, 'unreachable'],
    [{ exitCode: 124 }, 'unreachable'],
    [{ exitCode: 137 }, 'unreachable'],
    [{ exitCode: 1, stderr: 'sudo: a password is required\n' }, 'failed'],
    [{ exitCode: 0, stdout: 'something else\n' }, 'failed'],
  ];
  for (const [r, want] of cases) t.is(interpretPeerRemove('region2', result(r)).outcome, want, JSON.stringify(r));
});

test('vip results: fence off of a missing table is a lifted fence; status reads on/off/unknown', (t) => {
  t.deepEqual(interpretFenceOff(result({ exitCode: 1, stderr: 'Error: Could not process rule: No such file or directory\n' })), { ok: true, detail: 'was not in place' });
  t.false(interpretFenceOff(result({ exitCode: 1, stderr: 'sudo: a password is required\n' })).ok);
  t.is(interpretFenceStatus(result({ stdout: 'table inet maas_ha {\n}\n' })), 'on');
  t.is(interpretFenceStatus(result({ exitCode: 1, stderr: 'Error: No such file or directory\n' })), 'off');
  t.is(interpretFenceStatus(result({ exitCode: 1, stderr: 'Operation not permitted\n' })), 'unknown');
});

test('vip peer script: values are positional parameters of a constant script, the sudo prefix last', (t) => {
  const argv = peerRemoveArgv(testVip());
  t.is(argv[0], 'sh');
  t.false(argv[2]!.includes('10.0.0.100'));
  t.deepEqual(argv.slice(3), ['maas-ha', '10.0.0.100', '10.0.0.100/24', 'eth0', '/usr/sbin/ip', '/usr/bin/sudo', '-n']);
  t.deepEqual(peerRemoveArgv(testVip({ privilege: 'none' })).slice(-1), ['/usr/sbin/ip']);
});

test('vip plans, active-active: a VIP move restarts and fences nothing; the checks and the secondaries stay', (t) => {
  const vip = testVip({ mode: 'active-active', fence: { ...testVip().fence, method: 'none' } });
  const view = hostView(vip, parseIpAddrs(IP_OUT));
  t.deepEqual(planEscalation(vip, view), { peers: [{ name: 'region2', address: '10.0.0.12' }], liftFence: false, restart: [] });
  t.like(planAfterVip(vip, view), { restart: [], checks: ['api', 'dns', 'proxy'] });
  t.is(planAfterVip(vip, view).slaves.length, 2);
  t.deepEqual(planDeEscalation(vip), { fence: false, stop: [] });
  t.regex(describePlan(vipPlanReport(vip, view)), /mode active-active: .* restarts and fences nothing/);
  // The same services in active-passive are restarted on the move.
  t.is(planEscalation(testVip(), view).restart.length + planAfterVip(testVip(), view).restart.length, testVip().services.list.length);
});
