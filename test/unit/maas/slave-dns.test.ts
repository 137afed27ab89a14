// The secondary DNS of every region controller: its named.conf and the MAAS DNS's snippet, each accepted by the
// real named-checkconf for every MAAS preset; the install that puts a rejected file back; the SOA comparison.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createShell } from '../../../lib/adapters/exec.ts';
import { hostFileSystem } from '../../../lib/adapters/host-files.ts';
import type { MaasFlavour, SlaveDnsConfig } from '../../../lib/config/types.ts';
import { installChecked } from '../../../lib/maas/install.ts';
import { compareSoa, renderMasterSnippet, renderSecondaryConf, type SoaObservation } from '../../../lib/maas/slave-dns.ts';
import { decodeResponse } from '../../../lib/model/dns-wire.ts';
import { testVip } from '../../support/config.ts';

const CHECKCONF = ['/usr/bin/named-checkconf', '/usr/sbin/named-checkconf'].find((p) => existsSync(p))!;
const KEY = 'key "rndc-key" {\n  algorithm hmac-sha256;\n  secret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";\n};\n';

function world(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-dns-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'rndc.key'), KEY, { mode: 0o600 });
  // named-checkconf changes into the working directory: render dns --write creates it.
  mkdirSync(join(dir, 'cache'));
  return dir;
}

/** The vip.slave_dns the loader builds for a preset: MAAS 1.x's DNS is on port 5353 of the VIP, the others on 53. */
function slaveFor(dir: string, flavour: MaasFlavour): SlaveDnsConfig {
  const port = flavour === 'maas-1' ? 5353 : 53;
  return {
    ...testVip().slave_dns!,
    key_file: join(dir, 'rndc.key'),
    primary: { address: '10.0.0.100', port },
    forwarders: { addresses: ['10.0.0.100'], port, mode: 'only' },
    conf_file: join(dir, 'named.conf.secondary'),
    directory: join(dir, 'cache'),
    zones: ['maas', 'lab.example', '0.0.10.in-addr.arpa', '64-26.2.0.192.in-addr.arpa', '8.b.d.0.1.0.0.2.ip6.arpa'],
  };
}

const checkconf = (file: string) => spawnSync(CHECKCONF, [file], { encoding: 'utf8', timeout: 10_000 });

for (const flavour of ['maas-1', 'maas-2-deb', 'maas-3-deb', 'maas-snap'] as const) {
  test(`render dns (${flavour}): the secondary's named.conf passes the real named-checkconf`, (t) => {
    const dir = world(t);
    const slave = slaveFor(dir, flavour);
    const vip = testVip();
    const conf = renderSecondaryConf({ slave, self: vip.region_controllers[0]!, regionControllers: vip.region_controllers, vipAddress: vip.address, zones: slave.zones });
    writeFileSync(slave.conf_file, conf);
    const r = checkconf(slave.conf_file);
    t.is(r.status, 0, `${r.stdout}${r.stderr}\n${conf}`);
    t.regex(conf, new RegExp(`masters port ${slave.primary.port} \\{ 10\\.0\\.0\\.100; \\}`));
    t.regex(conf, /listen-on port 53 \{ 10\.0\.0\.11; \};/);
    t.regex(conf, new RegExp(`forwarders port ${slave.primary.port} \\{ 10\\.0\\.0\\.100; \\}`));
    t.is(conf.match(/type slave;/g)?.length, slave.zones.length);
  });

  test(`render dns (${flavour}): the MAAS DNS snippet is valid inside an options block`, (t) => {
    const dir = world(t);
    const slave = slaveFor(dir, flavour);
    const snippet = renderMasterSnippet(testVip(), slave, flavour);
    const file = join(dir, 'named.conf.master');
    writeFileSync(file, `options {\n  directory "${dir}";\n${snippet}};\n`);
    const r = checkconf(file);
    t.is(r.status, 0, `${r.stdout}${r.stderr}\n${snippet}`);
    t.regex(snippet, /allow-transfer \{ 10\.0\.0\.11; 10\.0\.0\.12; \};/);
    t.regex(snippet, /also-notify \{ 10\.0\.0\.11; 10\.0\.0\.12; \};/);
    t.regex(snippet, new RegExp(`listen-on port ${slave.primary.port} \\{ 10\\.0\\.0\\.100; 127\\.0\\.0\\.1; \\}`));
  });
}

test('render dns --write: named-checkconf accepts → installed 0644; rejects → the previous file is back, exit names the problem', async (t) => {
  const dir = world(t);
  const slave = slaveFor(dir, 'maas-3-deb');
  const vip = testVip();
  const good = renderSecondaryConf({ slave, self: vip.region_controllers[1]!, regionControllers: vip.region_controllers, vipAddress: vip.address, zones: slave.zones });
  const deps = { shell: createShell(), files: hostFileSystem };
  const opts = { mode: 0o644, check: (p: string) => [CHECKCONF, p] };
  const r = await installChecked(deps, slave.conf_file, good, opts);
  t.is(r.outcome, 'written');
  t.is(statSync(slave.conf_file).mode & 0o777, 0o644);
  // A key file that does not exist: named-checkconf refuses the include.
  const bad = good.replace(slave.key_file, join(dir, 'missing.key'));
  const err = await t.throwsAsync(installChecked(deps, slave.conf_file, bad, opts));
  // named-checkconf names the line of the include (line 4) and why.
  t.regex(err!.message, /named-checkconf rejects the new .*named.conf.secondary:4: parsing failed: file not found.*previous file is back in place/s);
  t.is(readFileSync(slave.conf_file, 'utf8'), good);
  // No previous file: the rejected one is removed again.
  const fresh = join(dir, 'fresh.conf');
  await t.throwsAsync(installChecked(deps, fresh, bad, opts), { message: /removed again/ });
  t.false(existsSync(fresh));
});

const obs = (primary: Record<string, number | string>, secondaries: Record<string, number | string>[]): SoaObservation => {
  const answers = (m: Record<string, number | string>) => Object.fromEntries(Object.entries(m).map(([z, v]) => [z, typeof v === 'number' ? { serial: v } : { error: v }]));
  return {
    primary: { address: '10.0.0.100', port: 53, answers: answers(primary) },
    secondaries: secondaries.map((s, i) => ({ name: `region${i + 1}`, address: `10.0.0.1${i + 1}`, answers: answers(s) })),
  };
};

const SOA: [string, SoaObservation, [string, boolean, RegExp][]][] = [
  ['both secondaries at the serial → ok', obs({ maas: 7 }, [{ maas: 7 }, { maas: 7 }]), [['region1 10.0.0.11', true, /serial 7/], ['region2 10.0.0.12', true, /serial 7/]]],
  ['one behind → that one fails, with the serials', obs({ maas: 9 }, [{ maas: 9 }, { maas: 8 }]), [['region1 10.0.0.11', true, /serial 9/], ['region2 10.0.0.12', false, /at serial 8, the primary at 9/]]],
  ['one without the zone → fails saying why', obs({ maas: 9 }, [{ maas: 'REFUSED' }, { maas: 9 }]), [['region1 10.0.0.11', false, /no copy of maas: REFUSED/], ['region2 10.0.0.12', true, /serial 9/]]],
  ['the primary lacks the zone → one failure, secondaries not judged', obs({ maas: 'NXDOMAIN' }, [{ maas: 3 }, { maas: 3 }]), [['primary 10.0.0.100:53', false, /does not serve maas: NXDOMAIN/]]],
];

for (const [title, o, want] of SOA) {
  test(`soa check: ${title}`, (t) => {
    const got = compareSoa(['maas'], o);
    t.deepEqual(got.map((f) => [f.server, f.ok]), want.map(([s, ok]) => [s, ok]));
    got.forEach((f, i) => t.regex(f.detail, want[i]![2]));
    for (const f of got) if (!f.ok) t.truthy(f.fix);
  });
}

test('dns codec: an SOA answer carries its serial (compressed names skipped)', (t) => {
  // Header: id 0x1234, response + authoritative, 1 question, 1 answer.
  const q = Buffer.concat([Buffer.from([4, ...Buffer.from('maas'), 0]), Buffer.from([0, 6, 0, 1])]);
  const rdata = Buffer.concat([Buffer.from([3, ...Buffer.from('ns1'), 0xc0, 12]), Buffer.from([0xc0, 12]), Buffer.from([0, 0, 0x30, 0x39]), Buffer.alloc(16)]);
  const ans = Buffer.concat([Buffer.from([0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 30]), Buffer.from([rdata.length >> 8, rdata.length & 0xff]), rdata]);
  const msg = Buffer.concat([Buffer.from([0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 0]), q, ans]);
  const r = decodeResponse(msg);
  t.true(r.authoritative);
  t.deepEqual(r.answerTypes, [6]);
  t.is(r.soaSerial, 12345);
});
