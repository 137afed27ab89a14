// Service managers, the sudoers drop-in and the fence ruleset: the exact argv and text each config produces.
// `visudo -cf` and `nft -c -f` (check only, nothing loaded) judge the rendered files, since a drop-in that sudo
// refuses would silently leave the hooks without privileges.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceSpec } from '../../../lib/config/types.ts';
import type { RunOptions, RunResult, Shell } from '../../../lib/model/ports.ts';
import { fenceOffArgv, fenceOnArgv, fenceRuleset } from '../../../lib/vip/fence.ts';
import { arpingArgv, ipAddArgv } from '../../../lib/vip/host.ts';
import { PRESETS } from '../../../lib/config/presets.ts';
import { runServices, serviceArgv } from '../../../lib/vip/services.ts';
import { privilegedCommands, renderSudoers } from '../../../lib/vip/sudoers.ts';
import { testVip } from '../../support/config.ts';

const regiond: ServiceSpec = { name: 'maas-regiond', unit: 'maas-regiond', needs_vip: false };

test('vip services: systemd, snap and explicit commands → the argv each manager runs, through sudo -n or directly', (t) => {
  const cmd: ServiceSpec = { name: 'api', unit: 'api', needs_vip: false, restart: ['/srv/ctl', 'restart', 'api'], stop: ['/srv/ctl', 'stop', 'api'] };
  const cases: [Parameters<typeof testVip>[0], ServiceSpec, 'restart' | 'stop', string[]][] = [
    [{}, regiond, 'restart', ['/usr/bin/sudo', '-n', '/usr/bin/systemctl', 'restart', 'maas-regiond']],
    [{}, regiond, 'stop', ['/usr/bin/sudo', '-n', '/usr/bin/systemctl', 'stop', 'maas-regiond']],
    [{ privilege: 'none' }, regiond, 'restart', ['/usr/bin/systemctl', 'restart', 'maas-regiond']],
    [{ services: { manager: 'snap', list: [], timeout_ms: 1 } }, { name: 'maas', unit: 'maas', needs_vip: true }, 'restart', ['/usr/bin/sudo', '-n', '/usr/bin/snap', 'restart', 'maas']],
    [{ services: { manager: 'commands', list: [], timeout_ms: 1 } }, cmd, 'restart', ['/usr/bin/sudo', '-n', '/srv/ctl', 'restart', 'api']],
    [{ services: { manager: 'commands', list: [], timeout_ms: 1 }, privilege: 'none' }, cmd, 'stop', ['/srv/ctl', 'stop', 'api']],
  ];
  for (const [over, svc, action, want] of cases) t.deepEqual(serviceArgv(testVip(over), svc, action), want);
  t.throws(() => serviceArgv(testVip({ services: { manager: 'commands', list: [], timeout_ms: 1 } }), regiond, 'restart'), { message: /no restart command configured/ });
});

test('vip services: presets → the units of each MAAS generation, bind9 (or the whole snap) after the VIP', (t) => {
  const show = (p: keyof typeof PRESETS) => PRESETS[p].services.map((s) => `${s.name}${s.unit !== s.name ? `=${s.unit}` : ''}${s.needs_vip ? '*' : ''}`);
  t.deepEqual(show('maas-1'), ['apache2', 'maas-proxy=squid-deb-proxy', 'maas-dns=bind9*']);
  t.deepEqual(show('maas-2-deb'), ['maas-regiond', 'apache2', 'maas-proxy', 'bind9*']);
  t.deepEqual(show('maas-3-deb'), ['maas-regiond', 'maas-apiserver', 'maas-http', 'maas-proxy', 'bind9*', 'maas-temporal']);
  t.deepEqual(show('maas-snap'), ['maas*']);
  t.is(PRESETS['maas-1'].checks.dns.port, 5353);
  t.is(PRESETS['maas-snap'].manager, 'snap');
});

test('vip services: restarts run at once, each bounded; one failure does not stop the others', async (t) => {
  const started: string[] = [];
  let inFlight = 0;
  let most = 0;
  const shell: Shell = {
    async run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      started.push(`${argv.at(-1)}@${opts.timeoutMs}`);
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      const fail = argv.at(-1) === 'maas-proxy';
      return { argv: [...argv], exitCode: fail ? 1 : 0, signal: null, stdout: '', stderr: fail ? 'Job for maas-proxy.service failed.\n' : '', durationMs: 20, timedOut: false };
    },
  };
  const vip = testVip();
  const list = vip.services.list.filter((s) => !s.needs_vip);
  const res = await runServices({ shell }, vip, list, 'restart', 5000);
  t.is(most, list.length, 'all started before any finished');
  t.deepEqual(started.sort(), list.map((s) => `${s.unit}@5000`).sort());
  t.deepEqual(res.filter((r) => !r.ok).map((r) => [r.service, r.detail]), [['maas-proxy', '/usr/bin/sudo -n /usr/bin/systemctl restart maas-proxy exited 1: Job for maas-proxy.service failed.']]);
  t.is(res.filter((r) => r.ok).length, list.length - 1);
});

test('vip sudoers: exactly the hooks root commands, one complete command line each, special characters escaped', (t) => {
  const vip = testVip();
  t.deepEqual(privilegedCommands(vip).map((c) => c.join(' ')), [
    '/usr/sbin/ip addr add 10.0.0.100/24 dev eth0',
    '/usr/sbin/ip addr del 10.0.0.100/24 dev eth0',
    '/usr/sbin/nft -f /etc/maas-ha/fence.nft',
    '/usr/sbin/nft delete table inet maas_ha',
    '/usr/sbin/nft list table inet maas_ha',
    ...vip.services.list.map((s) => `/usr/bin/systemctl restart ${s.unit}`),
  ]);
  const stop = privilegedCommands({ ...vip, fence: { ...vip.fence, method: 'stop-services' } }).map((c) => c.join(' '));
  t.true(stop.includes('/usr/bin/systemctl stop bind9'));
  t.false(stop.some((c) => c.includes('nft')));
  const cmd = testVip({ services: { manager: 'commands', timeout_ms: 1, list: [{ name: 'x', unit: 'x', needs_vip: false, restart: ['/srv/ctl', '--mode=a,b:c', 'x*'] }] } });
  t.true(renderSudoers(cmd, 'postgres', '/etc/maas-ha/maas-ha.yaml').includes('postgres ALL=(root) NOPASSWD: /srv/ctl --mode\\=a\\,b\\:c x\\*\n'));
  const spaced = testVip({ services: { manager: 'commands', timeout_ms: 1, list: [{ name: 'x', unit: 'x', needs_vip: false, restart: ['/srv/ctl', 'two words'] }] } });
  t.throws(() => renderSudoers(spaced, 'postgres', 'f'), { message: /cannot express an argument that is empty or contains whitespace/ });
  t.throws(() => renderSudoers(vip, 'post gres', 'f'), { message: /not a plain user name/ });
});

test('vip sudoers: visudo -cf accepts the rendered drop-in', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-sudoers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'maas-ha');
  writeFileSync(file, renderSudoers(testVip(), 'postgres', '/etc/maas-ha/maas-ha.yaml'), { mode: 0o440 });
  t.regex(execFileSync('/usr/sbin/visudo', ['-cf', file], { encoding: 'utf8' }), /parsed OK/);
});

test('vip fence: one table, replaced atomically, matching the services users and the database ports; nft -c accepts it', (t) => {
  const text = fenceRuleset(testVip({ fence: { method: 'nftables', users: ['maas', 'nobody'], ports: [5432, 9999], file: '/f' } }));
  t.regex(text, /^table inet maas_ha\ndelete table inet maas_ha\ntable inet maas_ha \{$/m);
  t.regex(text, /meta skuid \{ "maas", "nobody" \} tcp dport \{ 5432, 9999 \} counter reject with tcp reset/);
  t.deepEqual(fenceOnArgv(testVip()), ['/usr/bin/sudo', '-n', '/usr/sbin/nft', '-f', '/etc/maas-ha/fence.nft']);
  t.deepEqual(fenceOffArgv(testVip({ privilege: 'none' })), ['/usr/sbin/nft', 'delete', 'table', 'inet', 'maas_ha']);
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-fence-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fence.nft'), fenceRuleset(testVip({ fence: { method: 'nftables', users: ['nobody'], ports: [5432], file: '/f' } })));
  // -c: parse and check only; nothing is loaded into this machine's ruleset.
  t.notThrows(() => execFileSync('/usr/sbin/nft', ['-c', '-f', join(dir, 'fence.nft')], { encoding: 'utf8' }));
});

test('vip host argv: ip and arping take the VIP, prefix and interface from config, nothing from argv', (t) => {
  t.deepEqual(ipAddArgv(testVip()), ['/usr/sbin/ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'eth0']);
  t.deepEqual(arpingArgv(testVip()), ['/usr/bin/arping', '-U', '-c', '1', '-w', '1', '-I', 'eth0', '10.0.0.100']);
});
