// The checks through the VIP with a fake network and clock: what counts as "answers", how retries end, and the
// DNS codec they rely on (encoded queries byte for byte; responses with compressed names).

import test from 'ava';
import type { Clock, DnsResponse, Net } from '../../../lib/model/ports.ts';
import { runChecks, untilPasses, probes } from '../../../lib/vip/checks.ts';
import { decodeResponse, encodeQuery } from '../../../lib/model/dns-wire.ts';
import { testVip } from '../../support/config.ts';

function fakeClock(): Clock & { t: number } {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => void (c.t += ms) };
  return c;
}

const soa: DnsResponse = { id: 1, rcode: 0, authoritative: true, truncated: false, answerTypes: [6] };

function fakeNet(over: Partial<Net> = {}): Net {
  return {
    httpGet: async () => ({ status: 200, body: JSON.stringify({ version: '3.4.0', subversion: 'rc1' }) }),
    dnsQuery: async () => soa,
    tcpConnect: async () => {},
    ...over,
  };
}

test('vip checks: API 200 with a version, an authoritative SOA, an open proxy port → three passes with what answered', async (t) => {
  const calls: string[] = [];
  const net = fakeNet({
    httpGet: async (url) => (calls.push(url), { status: 200, body: '{"version":"3.4.0","subversion":"rc1"}' }),
    dnsQuery: async (server, port, name, type) => (calls.push(`${type} ${name} @${server}:${port}`), soa),
    tcpConnect: async (host, port) => void calls.push(`tcp ${host}:${port}`),
  });
  const rs = await runChecks(testVip(), net, fakeClock());
  t.deepEqual(rs.map((r) => [r.check, r.ok, r.attempts]), [['api', true, 1], ['dns', true, 1], ['proxy', true, 1]]);
  t.is(rs[0]!.detail, 'GET http://10.0.0.100:5240/MAAS/api/2.0/version/: MAAS 3.4.0 (rc1)');
  t.deepEqual(calls, ['http://10.0.0.100:5240/MAAS/api/2.0/version/', 'SOA maas @10.0.0.100:53', 'tcp 10.0.0.100:8000']);
});

test('vip checks: each failure kind is named; a check retries at its interval until its deadline', async (t) => {
  const vip = testVip({ checks: { timeout_ms: 1000, interval_ms: 250, api: { port: 80, path: '/v/' }, dns: { port: 5353, zone: 'maas' }, proxy: { port: 8000 } } });
  const cases: [Partial<Net>, string, RegExp][] = [
    [{ httpGet: async () => ({ status: 502, body: '' }) }, 'api', /GET http:\/\/10\.0\.0\.100:80\/v\/: HTTP 502/],
    [{ httpGet: async () => ({ status: 200, body: '<html>' }) }, 'api', /HTTP 200 but not JSON/],
    [{ httpGet: async () => ({ status: 200, body: '{}' }) }, 'api', /no "version"/],
    [{ dnsQuery: async () => ({ ...soa, rcode: 5 }) }, 'dns', /SOA maas @10\.0\.0\.100:5353: REFUSED/],
    [{ dnsQuery: async () => ({ ...soa, authoritative: false }) }, 'dns', /not authoritatively with the SOA/],
    [{ tcpConnect: async () => Promise.reject(new Error('10.0.0.100:8000: connect ECONNREFUSED')) }, 'proxy', /ECONNREFUSED \(4 attempts in 750 ms\)/],
  ];
  for (const [over, check, re] of cases) {
    const r = (await runChecks(vip, fakeNet(over), fakeClock())).find((x) => x.check === check)!;
    t.false(r.ok, check);
    t.regex(r.detail, re);
  }
});

test('vip checks: a check that starts failing and then answers passes, with its attempts counted', async (t) => {
  let n = 0;
  const net = fakeNet({ tcpConnect: async () => (++n < 3 ? Promise.reject(new Error('refused')) : undefined) });
  const p = probes(testVip(), net).find((x) => x.check === 'proxy')!;
  const r = await untilPasses(p, fakeClock(), 5000, 100);
  t.deepEqual([r.ok, r.attempts, r.durationMs], [true, 3, 200]);
});

test('vip checks: a check switched off (false in config → absent) is not run; --target checks another address', async (t) => {
  const { dns: _d, proxy: _p, ...checks } = testVip().checks;
  const urls: string[] = [];
  const rs = await runChecks(testVip({ checks }), fakeNet({ httpGet: async (u) => (urls.push(u), { status: 200, body: '{"version":"1"}' }) }), fakeClock(), { target: '10.0.0.12' });
  t.deepEqual(rs.map((r) => r.check), ['api']);
  t.deepEqual(urls, ['http://10.0.0.12:5240/MAAS/api/2.0/version/']);
});

test('vip dns: the query for maas/SOA, byte for byte; a response with a compressed answer name decodes', (t) => {
  t.deepEqual([...encodeQuery(0x1234, 'maas.', 'SOA')], [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 4, 109, 97, 97, 115, 0, 0, 6, 0, 1]);
  const q = encodeQuery(0x1234, 'maas', 'SOA');
  const answer = Buffer.from([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0, 30, 0, 2, 0xaa, 0xbb]);
  const header = Buffer.from(q.subarray(0, 12));
  header.writeUInt16BE(0x8400, 2); // response, authoritative
  header.writeUInt16BE(1, 6);
  const r = decodeResponse(Buffer.concat([header, q.subarray(12), answer]));
  t.deepEqual(r, { id: 0x1234, rcode: 0, authoritative: true, truncated: false, answerTypes: [6] });
  t.throws(() => decodeResponse(q), { message: /a query, not a response/ });
  t.throws(() => decodeResponse(Buffer.alloc(5)), { message: /shorter than its header/ });
  t.throws(() => encodeQuery(1, `${'a'.repeat(64)}.maas`, 'A'), { message: /1 to 63 characters/ });
});
