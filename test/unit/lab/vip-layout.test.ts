// lib/lab/vip-layout.ts: the VIP lab's DNS stand-ins are configured as `maas-ha render dns` says, and the real
// named-checkconf accepts them; the cluster controller stand-in lists both secondaries.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RCS, RNDC_KEY_NAME, addr, clusterConfigYaml, clusterPaths, clusterResolvConf, hostPaths, namedMasterConf, namedSlaveConf, vipAddr, type VipLabOptions } from '../../../lib/lab/vip-layout.ts';

const CHECKCONF = ['/usr/bin/named-checkconf', '/usr/sbin/named-checkconf'].find((p) => existsSync(p))!;

function lab(t: import('ava').ExecutionContext): VipLabOptions {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-vip-layout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const o: VipLabOptions = { dir, net: 201, hookBinDir: '/nonexistent', watchdogTemplate: '/nonexistent', pgBinDir: '/nonexistent' };
  for (const rc of RCS) {
    for (const s of ['bind9', 'dns-slave'] as const) {
      mkdirSync(hostPaths(dir, rc).svc(s), { recursive: true });
      writeFileSync(join(hostPaths(dir, rc).svc(s), 'rndc.key'), `key "${RNDC_KEY_NAME}" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="; };\n`);
    }
  }
  return o;
}

for (const rc of RCS) {
  test(`vip lab DNS (${rc}): the primary and the secondary pass the real named-checkconf`, (t) => {
    const o = lab(t);
    for (const [s, text] of [['bind9', namedMasterConf(o, rc)], ['dns-slave', namedSlaveConf(o, rc)]] as const) {
      const file = join(hostPaths(o.dir, rc).svc(s), 'named.conf');
      writeFileSync(file, text);
      const r = spawnSync(CHECKCONF, [file], { encoding: 'utf8', timeout: 10_000 });
      t.is(r.status, 0, `${s}: ${r.stdout}${r.stderr}\n${text}`);
    }
  });
}

test('vip lab DNS: the primary notifies and transfers to both secondaries; each secondary takes notify from every region controller', (t) => {
  const o = lab(t);
  const both = RCS.map((rc) => `${addr(o, rc)};`).join(' ');
  const master = namedMasterConf(o, 'rc1');
  t.true(master.includes(`also-notify { ${both} };`), master);
  t.true(master.includes(`allow-transfer { ${both} };`), master);
  t.true(master.includes(`listen-on port 53 { ${vipAddr(o)}; 127.0.0.1; };`), master);
  const slave = namedSlaveConf(o, 'rc2');
  t.true(slave.includes(`masters port 53 { ${vipAddr(o)}; };`), slave);
  t.true(slave.includes(`allow-notify { ${vipAddr(o)}; ${both} };`), slave);
  t.true(slave.includes(`listen-on port 53 { ${addr(o, 'rc2')}; };`), slave);
});

test('vip lab cluster controller: its resolver lists both secondaries, one second each; its configuration restarts the rack stand-in', (t) => {
  const o = lab(t);
  t.deepEqual(
    clusterResolvConf(o).split('\n').filter((l) => l && !l.startsWith('#')),
    [...RCS.map((rc) => `nameserver ${addr(o, rc)}`), 'options timeout:1 attempts:1'],
  );
  const c = clusterPaths(o);
  t.is(c.resolvConf, `/etc/netns/mhv201-cl/resolv.conf`);
  const yaml = clusterConfigYaml(o, 'cluster_name: x\n');
  t.regex(yaml, new RegExp(`root: ${c.root}\\n`));
  t.regex(yaml, new RegExp(`restart: \\[${join(o.dir, 'bin', 'maas-ha')}, lab, vip, rackd, restart, --dir, ${o.dir}\\]`));
});
