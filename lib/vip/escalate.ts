// The region controller VIP, step by step. pgpool's watchdog decides *when* (docs/pgpool-hooks.md, "Watchdog and
// the VIP"):
//   escalation:    wd_escalation_command → if_up_cmd → arping_cmd → its own ping check
//   de-escalation: wd_de_escalation_command → if_down_cmd
// and maas-ha decides *what*: before the VIP exists, take it away from any peer still holding it (after a SIGKILL
// of a leader's pgpool nobody else will: docs/lab.md, "kill -9 of pgpool is not a host crash"), lift this node's
// fence and restart the region services that do not bind the VIP; once the address is up, restart those that do
// (bind9), refresh the secondary DNS servers and prove through the VIP that the API, DNS and proxy answer. On the
// way out, fence the node (or stop its services) so a passive region cannot write to the database.
//
// Each part plans from what it observed (pure, table-tested in test/unit/vip/escalate.test.ts), then runs the plan;
// every command is bounded; pgpool only logs our exit codes, so each run ends in one sentence, and failures also
// in a notification.

import type { ServiceSpec, VipConfig } from '../config/types.ts';
import type { Deps, Net } from '../model/ports.ts';
import { Timeline } from '../failover/timeline.ts';
import { runChecks, type CheckName, type CheckResult } from './checks.ts';
import { fenceOffArgv, fenceOnArgv, interpretFenceOff } from './fence.ts';
import {
  arpingArgv,
  asRoot,
  failure,
  hostView,
  interpretIpAdd,
  interpretIpDel,
  interpretPeerRemove,
  ipAddArgv,
  ipDelArgv,
  ipShowArgv,
  parseIpAddrs,
  peerRemoveArgv,
  type HostView,
  type PeerOutcome,
  type RegionController,
} from './host.ts';
import { restartedOnMove, runServices, type ServiceResult } from './services.ts';

// ---- plans (pure)

export interface EscalationPlan {
  /** Every other region controller: asked over ssh to drop the VIP if it still holds it. */
  peers: RegionController[];
  liftFence: boolean;
  /** Services that do not bind the VIP: restarted now, in parallel with the peers. */
  restart: ServiceSpec[];
}

export function planEscalation(vip: VipConfig, view: HostView): EscalationPlan {
  return {
    peers: view.peers,
    liftFence: vip.fence.method === 'nftables',
    restart: restartedOnMove(vip).filter((s) => !s.needs_vip),
  };
}

export interface AfterVipPlan {
  restart: ServiceSpec[];
  checks: CheckName[];
  /** Secondary DNS servers to retransfer from the new master; a peer's may be down, ours must answer. */
  slaves: { address: string; local: boolean }[];
}

/** `unreachable`: peers the escalation could not reach just before; their secondary DNS is skipped, not waited for. */
export function planAfterVip(vip: VipConfig, view: HostView, unreachable: readonly string[] = []): AfterVipPlan {
  const checks = (['api', 'dns', 'proxy'] as const).filter((c) => vip.checks[c] !== undefined);
  const peers = view.peers.filter((p) => !unreachable.includes(p.address));
  const slaves = vip.slave_dns
    ? [...(view.self ? [{ address: view.self.address, local: true }] : []), ...peers.map((p) => ({ address: p.address, local: false }))]
    : [];
  return { restart: restartedOnMove(vip).filter((s) => s.needs_vip), checks, slaves };
}

export interface DeEscalationPlan {
  fence: boolean;
  stop: ServiceSpec[];
}

export function planDeEscalation(vip: VipConfig): DeEscalationPlan {
  return { fence: vip.fence.method === 'nftables', stop: vip.fence.method === 'stop-services' ? vip.services.list : [] };
}

export type ArpingMode = 'after-vip' | 'whole';

/**
 * pgpool 3.x setups (and any without wd_escalation_command) only have arping_cmd to hang the escalation on: the
 * seed's hack. The escalation hook journals each run, so arping does only the after-VIP part when an escalation
 * ran recently and nothing de-escalated since.
 */
export function arpingMode(journal: readonly Record<string, unknown>[], nowMs: number, windowMs: number): ArpingMode {
  const last = [...journal].reverse().find((e) => e.event === 'escalated' || e.event === 'de-escalated');
  if (!last || last.event !== 'escalated' || typeof last.at !== 'string') return 'whole';
  const age = nowMs - Date.parse(last.at);
  return age >= 0 && age <= windowMs ? 'after-vip' : 'whole';
}

/** The peers the last escalation found unreachable (pure, from the journal). */
export function unreachablePeers(journal: readonly Record<string, unknown>[]): string[] {
  const last = [...journal].reverse().find((e) => e.event === 'escalated');
  return Array.isArray(last?.unreachable) ? last.unreachable.filter((a): a is string => typeof a === 'string') : [];
}

/** What `maas-ha vip plan` reports: every phase's plan on this host, as data (`--json`) and as text below. */
export interface VipPlanReport {
  host: { name: string; address: string } | null;
  vip: string;
  interface: string;
  holds_vip: boolean;
  mode: VipConfig['mode'];
  manager: VipConfig['services']['manager'];
  escalation: { remove_vip_from: { name: string; address: string }[]; lift_fence: boolean; restart: string[] };
  after_vip: { restart: string[]; checks: CheckName[]; retransfer: { zones: string[]; on: string[] } | null };
  de_escalation: { fence: { users: string[]; ports: number[] } | null; stop: string[] };
}

export function vipPlanReport(vip: VipConfig, view: HostView): VipPlanReport {
  const e = planEscalation(vip, view);
  const a = planAfterVip(vip, view);
  const d = planDeEscalation(vip);
  const names = (s: ServiceSpec[]) => s.map((x) => x.name);
  return {
    host: view.self ? { name: view.self.name, address: view.self.address } : null,
    vip: vip.address,
    interface: vip.interface,
    holds_vip: view.holdsVip,
    mode: vip.mode,
    manager: vip.services.manager,
    escalation: { remove_vip_from: e.peers.map((p) => ({ name: p.name, address: p.address })), lift_fence: e.liftFence, restart: names(e.restart) },
    after_vip: {
      restart: names(a.restart),
      checks: a.checks,
      retransfer: a.slaves.length && vip.slave_dns ? { zones: [...vip.slave_dns.zones], on: a.slaves.map((s) => s.address) } : null,
    },
    de_escalation: { fence: d.fence ? { users: [...vip.fence.users], ports: [...vip.fence.ports] } : null, stop: names(d.stop) },
  };
}

export function describePlan(r: VipPlanReport): string {
  const names = (s: string[]) => (s.length ? s.join(', ') : 'nothing');
  const e = r.escalation;
  const a = r.after_vip;
  const d = r.de_escalation;
  return [
    `this host: ${r.host ? `${r.host.name} (${r.host.address})` : 'not one of vip.region_controllers'}; VIP ${r.vip} ${r.holds_vip ? 'is' : 'is not'} on ${r.interface}`,
    r.mode === 'active-active'
      ? 'mode active-active: every region controller runs its services all the time; a VIP move restarts and fences nothing'
      : 'mode active-passive: the VIP holder runs the region services; a VIP move restarts them there and fences the one it leaves',
    'escalation (before pgpool adds the VIP):',
    `  remove the VIP from ${e.remove_vip_from.length ? e.remove_vip_from.map((p) => `${p.name} (${p.address})`).join(', ') : 'no peer'} if it holds it`,
    `  ${e.lift_fence ? 'lift the nftables fence' : 'no fence to lift'}; restart ${names(e.restart)} (${r.manager})`,
    'after the VIP is up (maas-ha arping):',
    `  restart ${names(a.restart)}; check ${a.checks.join(', ') || 'nothing'}${a.retransfer ? `; retransfer ${a.retransfer.zones.join(', ')} on ${a.retransfer.on.join(', ')}` : ''}`,
    'de-escalation:',
    `  ${d.fence ? `load the nftables fence (${d.fence.users.join(', ')} → ports ${d.fence.ports.join(', ')})` : d.stop.length ? `stop ${names(d.stop)}` : `nothing (${r.mode === 'active-active' ? 'active-active' : 'fence.method: none'})`}`,
  ].join('\n');
}

// ---- runs

export interface VipRun {
  ok: boolean;
  summary: string;
  timeline: Timeline;
}

type VipDeps = Pick<Deps, 'shell' | 'ssh' | 'log' | 'clock' | 'state'>;

export async function observeHost(deps: Pick<Deps, 'shell'>, vip: VipConfig): Promise<HostView> {
  const r = await deps.shell.run(ipShowArgv(vip), { timeoutMs: 5000 });
  if (r.exitCode !== 0) throw new Error(`cannot read this host's addresses: ${failure(r)}`);
  return hostView(vip, parseIpAddrs(r.stdout));
}

/** Collects what went wrong and what is worth a warning, for the closing sentence. */
class Outcome {
  /** Addresses of peers that did not answer (a crashed leader): nothing else on them can answer either. */
  readonly unreachable: string[] = [];
  readonly failed: string[] = [];
  readonly warned: string[] = [];
  readonly done: string[] = [];
  summary(prefix = ''): string {
    const parts = [...this.done];
    if (this.warned.length) parts.push(`warnings: ${this.warned.join('; ')}`);
    if (this.failed.length) parts.push(`FAILED: ${this.failed.join('; ')}`);
    return `${prefix}${parts.join('; ') || 'nothing to do'}`;
  }
}

async function removeFromPeers(deps: VipDeps, vip: VipConfig, peers: RegionController[], tl: Timeline, out: Outcome): Promise<void> {
  const results = await Promise.all(
    peers.map(async (peer): Promise<PeerOutcome> => {
      const r = await deps.ssh.run(peer.address, peerRemoveArgv(vip), { timeoutMs: vip.peer_timeout_ms });
      const p = interpretPeerRemove(peer.name, r);
      if (p.outcome === 'unreachable') out.unreachable.push(peer.address);
      return p;
    }),
  );
  for (const p of results) {
    const fields = { step: 'peer', peer: p.peer, peer_outcome: p.outcome, duration_ms: p.durationMs };
    if (p.outcome === 'removed') {
      deps.log.info(fields, `removed the VIP from ${p.peer}: ${p.detail}`);
      tl.add('vip_removed_from_peer', { peer: p.peer });
      out.done.push(`removed the VIP from ${p.peer}`);
    } else if (p.outcome === 'absent') {
      deps.log.info(fields, `${p.peer} does not hold the VIP`);
    } else if (p.outcome === 'unreachable') {
      // A dead host answers no ARP for the VIP either; a live one we cannot reach is worth a warning, not a stop.
      deps.log.warn(fields, `${p.peer} is unreachable (${p.detail}): assuming it is down and holds no live VIP`);
      tl.add('peer_unreachable', { peer: p.peer, detail: p.detail });
      out.warned.push(`${p.peer} unreachable`);
    } else {
      deps.log.error(fields, `could not remove the VIP from ${p.peer}: ${p.detail}`);
      tl.add('peer_vip_not_removed', { peer: p.peer, detail: p.detail });
      out.failed.push(`VIP not removed from ${p.peer} (${p.detail})`);
    }
  }
}

async function liftFence(deps: VipDeps, vip: VipConfig, tl: Timeline, out: Outcome): Promise<void> {
  const r = await deps.shell.run(fenceOffArgv(vip), { timeoutMs: 5000 });
  const f = interpretFenceOff(r);
  if (f.ok) {
    deps.log.info({ step: 'fence', outcome: 'ok', duration_ms: r.durationMs }, `fence ${f.detail}`);
    tl.add('fence_lifted', { detail: f.detail });
    out.done.push(`fence ${f.detail}`);
  } else {
    deps.log.error({ step: 'fence', outcome: 'failed', duration_ms: r.durationMs }, `could not lift the fence: ${f.detail}`);
    out.failed.push(`fence not lifted (${f.detail})`);
  }
}

function record(deps: VipDeps, results: ServiceResult[], tl: Timeline, out: Outcome): void {
  for (const s of results) {
    const fields = { step: 'service', service: s.service, outcome: s.ok ? ('ok' as const) : ('failed' as const), duration_ms: s.durationMs };
    if (s.ok) {
      deps.log.info(fields, `${s.service} ${s.action}ed in ${(s.durationMs / 1000).toFixed(2)} s`);
      tl.add(s.action === 'restart' ? 'service_restarted' : 'service_stopped', { service: s.service, duration_s: s.durationMs / 1000 });
    } else {
      deps.log.error(fields, `${s.service} did not ${s.action}: ${s.detail}`);
      tl.add(s.action === 'restart' ? 'service_restart_failed' : 'service_stop_failed', { service: s.service, detail: s.detail });
      out.failed.push(`${s.service} did not ${s.action} (${s.detail})`);
    }
  }
  const ok = results.filter((s) => s.ok);
  if (ok.length) out.done.push(`${ok[0]!.action}ed ${ok.map((s) => `${s.service} (${(s.durationMs / 1000).toFixed(2)} s)`).join(', ')}`);
}

/** The part before pgpool adds the VIP. */
async function beforeVip(deps: VipDeps, vip: VipConfig, view: HostView, tl: Timeline, out: Outcome): Promise<void> {
  if (!view.self) out.failed.push(`no address of this host is in vip.region_controllers (${vip.region_controllers.map((r) => r.address).join(', ')})`);
  const plan = planEscalation(vip, view);
  // Peers and local work at once: a dead peer costs its timeout, not its timeout plus every restart.
  await Promise.all([
    removeFromPeers(deps, vip, plan.peers, tl, out),
    (async () => {
      // The fence goes first: a region service restarted behind it would start without its database.
      if (plan.liftFence) await liftFence(deps, vip, tl, out);
      if (plan.restart.length) record(deps, await runServices(deps, vip, plan.restart, 'restart'), tl, out);
    })(),
  ]);
}

async function withVipLock<T>(deps: VipDeps, budgetMs: number, body: () => Promise<T>): Promise<T> {
  // Escalation and de-escalation may overlap on one host (pgpool waits at most 5 s for the other:
  // docs/pgpool-hooks.md, "Watchdog and the VIP"); the lock keeps their steps from interleaving, within half the
  // budget.
  const release = await deps.state.lock('vip', Math.max(1000, budgetMs / 2));
  try {
    return await body();
  } finally {
    release();
  }
}

export async function runEscalation(deps: VipDeps, vip: VipConfig, budgetMs: number): Promise<VipRun> {
  const tl = new Timeline(deps.clock);
  const out = new Outcome();
  return withVipLock(deps, budgetMs, async () => {
    const view = await observeHost(deps, vip);
    tl.add('escalation_started', { host: view.self?.name ?? null });
    await beforeVip(deps, vip, view, tl, out);
    deps.state.journal('vip', { event: 'escalated', ok: out.failed.length === 0, unreachable: out.unreachable });
    return { ok: out.failed.length === 0, summary: out.summary(`${view.self?.name ?? 'this host'} takes the VIP: `), timeline: tl };
  });
}

export async function runDeEscalation(deps: VipDeps, vip: VipConfig, budgetMs: number): Promise<VipRun> {
  const tl = new Timeline(deps.clock);
  const out = new Outcome();
  return withVipLock(deps, budgetMs, async () => {
    const plan = planDeEscalation(vip);
    if (plan.fence) {
      const r = await deps.shell.run(fenceOnArgv(vip), { timeoutMs: 5000 });
      if (r.exitCode === 0) {
        deps.log.info({ step: 'fence', outcome: 'ok', duration_ms: r.durationMs }, `fence loaded from ${vip.fence.file}`);
        tl.add('fenced', { users: vip.fence.users, ports: vip.fence.ports });
        out.done.push(`fenced (${vip.fence.users.join(', ')} cannot reach ports ${vip.fence.ports.join(', ')})`);
      } else {
        deps.log.error({ step: 'fence', outcome: 'failed', duration_ms: r.durationMs }, `could not load the fence: ${failure(r)}`);
        out.failed.push(`fence not loaded (${failure(r)})`);
      }
    }
    if (plan.stop.length) record(deps, await runServices(deps, vip, plan.stop, 'stop'), tl, out);
    deps.state.journal('vip', { event: 'de-escalated', ok: out.failed.length === 0 });
    return { ok: out.failed.length === 0, summary: out.summary('gives up the VIP: '), timeline: tl };
  });
}

/** if_up_cmd: add the address; "already there" is fine; then read it back, since pgpool trusts our exit code. */
export async function runIpUp(deps: VipDeps, vip: VipConfig): Promise<VipRun> {
  const tl = new Timeline(deps.clock);
  const r = await deps.shell.run(asRoot(vip, ipAddArgv(vip)), { timeoutMs: 5000 });
  const add = interpretIpAdd(r);
  if (!add.ok) return { ok: false, summary: `VIP ${vip.address} not added: ${add.detail}`, timeline: tl };
  const view = await observeHost(deps, vip);
  if (!view.holdsVip) return { ok: false, summary: `VIP ${vip.address} reported added but is not on ${vip.interface}`, timeline: tl };
  tl.add('vip_added', { address: vip.address, interface: vip.interface });
  return { ok: true, summary: `VIP ${vip.address}/${vip.prefix_length} on ${vip.interface} (${add.detail})`, timeline: tl };
}

export async function runIpDown(deps: VipDeps, vip: VipConfig): Promise<VipRun> {
  const tl = new Timeline(deps.clock);
  const r = await deps.shell.run(asRoot(vip, ipDelArgv(vip)), { timeoutMs: 5000 });
  const del = interpretIpDel(r);
  if (!del.ok) return { ok: false, summary: `VIP ${vip.address} not removed: ${del.detail}`, timeline: tl };
  tl.add('vip_released', { address: vip.address });
  return { ok: true, summary: `VIP ${vip.address} released from ${vip.interface} (${del.detail})`, timeline: tl };
}

/**
 * arping_cmd: pgpool's job first (a gratuitous ARP, so clients switch now; a missing arping is a failure here,
 * where pgpool's own exec would count it a success), then the service work that needs the address, then proof.
 */
export async function runArping(deps: VipDeps & { net: Net }, vip: VipConfig, budgetMs: number): Promise<VipRun & { mode: ArpingMode; checks: CheckResult[] }> {
  const tl = new Timeline(deps.clock);
  const out = new Outcome();
  // The gratuitous ARP goes out at once, but iputils arping only exits a second later (it waits one interval
  // after its last packet): nothing below needs it to have exited, so the region's work does not wait for it.
  const arping = deps.shell.run(arpingArgv(vip), { timeoutMs: 3000 }).then((arp) => {
    if (arp.exitCode === 0) tl.add('gratuitous_arp_sent', { interface: vip.interface });
    else {
      deps.log.error({ step: 'arping', outcome: 'failed', duration_ms: arp.durationMs }, `gratuitous ARP failed: ${failure(arp)}`);
      out.failed.push(`gratuitous ARP failed (${failure(arp)})`);
    }
  });
  const run = await withVipLock(deps, budgetMs, async () => {
    const journal = deps.state.readJournal('vip');
    const mode = arpingMode(journal, deps.clock.now(), vip.escalation_window_ms);
    const view = await observeHost(deps, vip);
    if (mode === 'whole') {
      deps.log.info({ step: 'mode' }, 'no escalation hook ran just before: doing the whole escalation here (pgpool 3.x style, arping_cmd only)');
      await beforeVip(deps, vip, view, tl, out);
      deps.state.journal('vip', { event: 'escalated', via: 'arping', ok: out.failed.length === 0, unreachable: out.unreachable });
    }
    const unreachable = mode === 'whole' ? out.unreachable : unreachablePeers(journal);
    if (view.holdsVip) {
      tl.add('vip_acquired', { address: vip.address, host: view.self?.name ?? null });
      out.done.push(`VIP ${vip.address} up on ${view.self?.name ?? vip.interface}`);
    } else out.failed.push(`VIP ${vip.address} is not on ${vip.interface}`);
    const plan = planAfterVip(vip, view, unreachable);
    for (const address of unreachable) {
      if (vip.slave_dns) deps.log.info({ step: 'slave_dns', server: address, outcome: 'skipped' }, `secondary DNS on ${address} not refreshed: that peer did not answer the escalation a moment ago`);
    }
    if (plan.restart.length) record(deps, await runServices(deps, vip, plan.restart, 'restart'), tl, out);
    // The secondary DNS servers pull the zones from the VIP while the checks run: neither waits for the other.
    const [checks] = await Promise.all([
      runChecks(vip, deps.net, deps.clock),
      plan.slaves.length && vip.slave_dns ? refreshSlaves(deps, vip, plan.slaves, tl, out) : Promise.resolve(),
    ]);
    for (const c of checks) {
      const fields = { step: 'check', check: c.check, outcome: c.ok ? ('ok' as const) : ('failed' as const), duration_ms: c.durationMs };
      if (c.ok) {
        deps.log.info(fields, `${c.check} check passed: ${c.detail}`);
        tl.add('check_passed', { check: c.check, detail: c.detail });
      } else {
        deps.log.error(fields, `${c.check} check failed: ${c.detail}`);
        tl.add('check_failed', { check: c.check, detail: c.detail });
        out.failed.push(`${c.check} check failed (${c.detail})`);
      }
    }
    if (checks.length && checks.every((c) => c.ok)) out.done.push(`${checks.map((c) => c.check).join(', ')} answer through the VIP`);
    return { mode, checks };
  });
  await arping;
  return { ok: out.failed.length === 0, summary: out.summary(), timeline: tl, ...run };
}

async function refreshSlaves(deps: VipDeps, vip: VipConfig, slaves: AfterVipPlan['slaves'], tl: Timeline, out: Outcome): Promise<void> {
  const s = vip.slave_dns!;
  const runs = slaves.flatMap((slave) =>
    s.zones.map(async (zone) => {
      const argv = [vip.binaries.rndc, '-s', slave.address, '-p', String(s.port), '-k', s.key_file, 'retransfer', zone];
      // A peer's server is best effort (after a crash it is down and its rndc can only time out): a second is
      // plenty for a live one on the same network. Ours must answer, within the configured timeout.
      const r = await deps.shell.run(argv, { timeoutMs: slave.local ? s.timeout_ms : Math.min(1000, s.timeout_ms) });
      return { slave, zone, r };
    }),
  );
  const results = await Promise.all(runs);
  for (const { slave, zone, r } of results) {
    const fields = { step: 'slave_dns', server: slave.address, zone, duration_ms: r.durationMs };
    if (r.exitCode === 0) {
      deps.log.info({ ...fields, outcome: 'ok' }, `secondary DNS ${slave.address} retransfers ${zone} from the VIP`);
      tl.add('slave_dns_refreshed', { server: slave.address, zone });
    } else if (!slave.local) {
      deps.log.warn({ ...fields, outcome: 'skipped' }, `secondary DNS ${slave.address} (a peer) did not take the retransfer: ${failure(r)}`);
      out.warned.push(`secondary DNS ${slave.address} not refreshed`);
    } else {
      deps.log.error({ ...fields, outcome: 'failed' }, `local secondary DNS ${slave.address} did not take the retransfer: ${failure(r)}`);
      out.failed.push(`secondary DNS ${slave.address} not refreshed (${failure(r)})`);
    }
  }
  const n = results.filter((x) => x.r.exitCode === 0).length;
  if (n) out.done.push(`${n} secondary zone${n === 1 ? '' : 's'} retransferring`);
}
