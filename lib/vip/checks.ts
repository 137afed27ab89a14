// Proof that the region answers on the VIP after a move: the MAAS API version endpoint, an authoritative SOA for a
// MAAS zone from the DNS server on the VIP, and the proxy port. Each check retries at its interval until it
// passes or its deadline runs out; all run at once. Used by the arping hook on the new leader and by
// `maas-ha vip check` from anywhere (the lab's client namespace, an operator's laptop).

import type { VipConfig } from '../config/types.ts';
import type { Clock, Net } from '../model/ports.ts';
import { messageOf } from '../errors.ts';
import { QTYPE, RCODES } from '../model/dns-wire.ts';

export type CheckName = 'api' | 'dns' | 'proxy';

export interface CheckResult {
  check: CheckName;
  ok: boolean;
  /** What passed ("MAAS 3.4.0 answered") or the last failure. */
  detail: string;
  attempts: number;
  durationMs: number;
}

interface Probe {
  check: CheckName;
  /** Resolves with a success detail; throws with a failure detail. */
  run(timeoutMs: number): Promise<string>;
}

export function probes(vip: VipConfig, net: Net, target = vip.address): Probe[] {
  const out: Probe[] = [];
  const { api, dns, proxy } = vip.checks;
  if (api) {
    const url = `http://${target}:${api.port}${api.path}`;
    out.push({
      check: 'api',
      async run(timeoutMs) {
        const r = await net.httpGet(url, timeoutMs);
        if (r.status !== 200) throw new Error(`GET ${url}: HTTP ${r.status}`);
        let answer: { version?: unknown; subversion?: unknown };
        try {
          answer = JSON.parse(r.body) as typeof answer;
        } catch {
          throw new Error(`GET ${url}: HTTP 200 but not JSON: ${r.body.slice(0, 80)}`);
        }
        if (typeof answer?.version !== 'string') throw new Error(`GET ${url}: no "version" in the answer`);
        return `GET ${url}: MAAS ${answer.version}${typeof answer.subversion === 'string' && answer.subversion ? ` (${answer.subversion})` : ''}`;
      },
    });
  }
  if (dns) {
    out.push({
      check: 'dns',
      async run(timeoutMs) {
        const r = await net.dnsQuery(target, dns.port, dns.zone, 'SOA', timeoutMs);
        const where = `SOA ${dns.zone} @${target}:${dns.port}`;
        if (r.rcode !== 0) throw new Error(`${where}: ${RCODES[r.rcode] ?? `rcode ${r.rcode}`}`);
        if (!r.authoritative || !r.answerTypes.includes(QTYPE.SOA)) throw new Error(`${where}: answered, but not authoritatively with the SOA`);
        return `${where}: authoritative answer`;
      },
    });
  }
  if (proxy) {
    out.push({
      check: 'proxy',
      async run(timeoutMs) {
        await net.tcpConnect(target, proxy.port, timeoutMs);
        return `${target}:${proxy.port} accepts connections`;
      },
    });
  }
  return out;
}

/** Runs one probe until it passes or `deadlineMs` (from now) runs out. */
export async function untilPasses(probe: Probe, clock: Clock, deadlineMs: number, intervalMs: number): Promise<CheckResult> {
  const started = clock.now();
  let attempts = 0;
  let last = 'not tried';
  for (;;) {
    attempts++;
    const left = deadlineMs - (clock.now() - started);
    try {
      const detail = await probe.run(Math.max(200, Math.min(3000, left)));
      return { check: probe.check, ok: true, detail, attempts, durationMs: clock.now() - started };
    } catch (err) {
      last = messageOf(err);
    }
    if (clock.now() - started + intervalMs >= deadlineMs) {
      return { check: probe.check, ok: false, detail: `${last} (${attempts} attempts in ${clock.now() - started} ms)`, attempts, durationMs: clock.now() - started };
    }
    await clock.sleep(intervalMs);
  }
}

export function runChecks(vip: VipConfig, net: Net, clock: Clock, opts: { target?: string; timeoutMs?: number } = {}): Promise<CheckResult[]> {
  const deadline = Math.min(opts.timeoutMs ?? vip.checks.timeout_ms, vip.checks.timeout_ms);
  return Promise.all(probes(vip, net, opts.target).map((p) => untilPasses(p, clock, deadline, vip.checks.interval_ms)));
}
