// The rack (cluster) controller's identity: the pure check and restore plan as tables, then a backup and a restore
// for real (GNU tar, files with owners and modes) on a temporary root, with the rack service and its region played
// by stand-ins, and the CLI's output scanned for the secret.
import test from 'ava';
import { chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createShell } from '../../../lib/adapters/exec.ts';
import { hostFileSystem } from '../../../lib/adapters/host-files.ts';
import { runCli } from '../../../lib/cli/main.ts';
import type { MaasFlavour } from '../../../lib/config/types.ts';
import { defaultMaas, rackLayout } from '../../../lib/maas/layout.ts';
import { checkRack, listingOf, parseIdentity, parseMaasUrls, planRestore, type RackFacts } from '../../../lib/maas/rack.ts';
import { backupRack, planRackRestore, restoreRack, type RackDeps } from '../../../lib/maas/rack-run.ts';

const SECRET = '3f1c0ffee0ddba11deadbeefcafe5eed';
const REGIONS = [
  { name: 'region1', address: '10.0.0.11' },
  { name: 'region2', address: '10.0.0.12' },
];
const VIP = '10.0.0.100';
const RACKD = ['rackd-conf', 'secret', 'maas-id'] as const;

test('rackd.conf maas_url: one URL, a flow list, a block list, none', (t) => {
  t.deepEqual(parseMaasUrls('maas_url: http://10.0.0.100:5240/MAAS\n'), ['http://10.0.0.100:5240/MAAS']);
  t.deepEqual(parseMaasUrls("maas_url: ['http://a:5240/MAAS', \"http://b:5240/MAAS\"]\n"), ['http://a:5240/MAAS', 'http://b:5240/MAAS']);
  t.deepEqual(parseMaasUrls('maas_url:\n- http://a:5240/MAAS\n- http://b:5240/MAAS\ntftp_port: 69\n'), ['http://a:5240/MAAS', 'http://b:5240/MAAS']);
  t.is(parseMaasUrls('tftp_port: 69\n'), undefined);
});

test('maas_cluster.conf (MAAS 1.x): MAAS_URL and CLUSTER_UUID', (t) => {
  const id = parseIdentity({ 'cluster-conf': 'MAAS_URL="http://10.0.0.100/MAAS"\nCLUSTER_UUID="6a3c-11"\n', secret: SECRET });
  t.deepEqual(id, { maasUrls: ['http://10.0.0.100/MAAS'], clusterUuid: '6a3c-11', secret: 'present' });
});

const facts = (over: Partial<RackFacts['identity']>, more: Partial<RackFacts> = {}): RackFacts => ({
  kinds: RACKD,
  identity: { maasUrls: [`http://${VIP}:5240/MAAS`], secret: 'present', maasId: 'abc123', ...over },
  vip: VIP,
  regionControllers: REGIONS,
  ...more,
});

const CHECKS: [string, RackFacts, ('ok' | 'warn' | 'fail')[], RegExp][] = [
  ['all well: maas_url on the VIP, secret, maas_id', facts({}), ['ok', 'ok', 'ok'], /points at the VIP/],
  ["maas_url on region1's own address → fail, the fix names the VIP", facts({ maasUrls: ['http://10.0.0.11:5240/MAAS'] }), ['fail', 'ok', 'ok'], /region1's own address.*maas-rack config --region-url http:\/\/10\.0\.0\.100:5240\/MAAS/s],
  ['maas_url by region name → fail', facts({ maasUrls: ['http://region2:5240/MAAS'] }), ['fail', 'ok', 'ok'], /region2's own address/],
  ['a region beside the VIP → warn', facts({ maasUrls: [`http://${VIP}:5240/MAAS`, 'http://10.0.0.12:5240/MAAS'] }), ['ok', 'warn', 'ok', 'ok'], /besides the VIP/],
  ['a DNS name → warn (fine if it resolves to the VIP)', facts({ maasUrls: ['http://maas.example:5240/MAAS'] }), ['warn', 'ok', 'ok'], /resolves to it/],
  ['no rackd.conf → fail', facts({ maasUrls: undefined }), ['fail', 'ok', 'ok'], /no maas_url/],
  ['missing secret → fail', facts({ secret: 'missing' }), ['ok', 'fail', 'ok'], /secret is missing/],
  ['empty secret → fail', facts({ secret: 'empty' }), ['ok', 'fail', 'ok'], /empty/],
  ['maas_id differs from the backup → fail', facts({}, { backup: { secret: 'present', maasId: 'zzz999' } }), ['ok', 'ok', 'fail'], /abc123 differs from the backup's zzz999/],
  ['no maas_id → warn', facts({ maasId: undefined }), ['ok', 'ok', 'warn'], /new controller/],
  ['no VIP known → warn', facts({}, { vip: undefined }), ['warn', 'ok', 'ok'], /no VIP known/],
  [
    'MAAS 1.x: cluster UUID differs from the backup → fail; the fix edits maas_cluster.conf',
    { kinds: ['cluster-conf', 'secret'], identity: { maasUrls: ['http://10.0.0.11/MAAS'], clusterUuid: 'u1', secret: 'present' }, backup: { clusterUuid: 'u2', secret: 'present' }, vip: VIP, regionControllers: REGIONS },
    ['fail', 'ok', 'fail'],
    /MAAS_URL="http:\/\/10\.0\.0\.100\/MAAS".*cluster UUID u1 differs/s,
  ],
];

for (const [title, f, levels, re] of CHECKS) {
  test(`rack check: ${title}`, (t) => {
    const got = checkRack(f);
    t.deepEqual(got.map((x) => x.level), levels);
    t.regex(got.map((x) => `${x.what} ${x.fix ?? ''}`).join('\n'), re);
    for (const x of got) if (x.level !== 'ok') t.truthy(x.fix, x.what);
  });
}

test('archive listing: GNU tar -tv --numeric-owner → owners, modes, sizes; anything but a regular file refused', (t) => {
  t.deepEqual(listingOf('-rw-r----- 0/113 45 2025-01-01 00:00 etc/maas/rackd.conf\n-rw------- 0/0 32 2025-01-01 00:00 var/lib/maas/secret\n'), [
    { name: 'etc/maas/rackd.conf', mode: 0o640, uid: 0, gid: 113, size: 45 },
    { name: 'var/lib/maas/secret', mode: 0o600, uid: 0, gid: 0, size: 32 },
  ]);
  t.throws(() => listingOf('lrwxrwxrwx 0/0 0 2025-01-01 00:00 etc/maas/rackd.conf -> /etc/shadow\n'), { message: /not a regular file/ });
});

test('restore plan: a member that is no identity file (or a path with ..) is refused; changes listed, secrets not shown', (t) => {
  const layout = rackLayout(defaultMaas({ root: '/r' }));
  const m = (name: string) => ({ name, mode: 0o640, uid: 0, gid: 113, size: 1 });
  t.throws(() => planRestore(layout.files, [m('etc/maas/../../etc/shadow')], {}, {}), { message: /not an identity file/ });
  const steps = planRestore(layout.files, [m('var/lib/maas/secret'), m('var/lib/maas/maas_id')], { 'var/lib/maas/secret': 'new', 'var/lib/maas/maas_id': 'id' }, {
    'var/lib/maas/secret': { text: 'old', mode: 0o644, uid: 0, gid: 0 },
    'var/lib/maas/maas_id': { text: 'id', mode: 0o640, uid: 0, gid: 113 },
  });
  t.deepEqual(steps.map((s) => [s.action, s.changes]), [
    ['replace', ['content (secret, not shown)', 'mode 0644 → 0640', 'owner 0:0 → 0:113']],
    ['unchanged', []],
  ]);
});

/** A rack controller's files under a temporary root, as MAAS 2.x/3.x (deb) lays them out. */
function rackHost(t: import('ava').ExecutionContext, flavour: MaasFlavour = 'maas-3-deb') {
  const root = mkdtempSync(join(tmpdir(), 'maas-ha-rack-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const maas = defaultMaas({ root, flavour, rack: { manager: 'commands', unit: 'rackd', restart: ['/bin/true'], reconnect_timeout_ms: 3000 } });
  const layout = rackLayout(maas);
  const put = (name: string, text: string, mode: number, gid: number) => {
    const p = join(root, name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text, { mode });
    chownSync(p, 0, gid);
  };
  for (const f of layout.files) {
    if (f.kind === 'rackd-conf') put(f.name, `maas_url: http://${VIP}:5240/MAAS\n`, 0o640, 4);
    if (f.kind === 'secret') put(f.name, SECRET, 0o640, 4);
    if (f.kind === 'maas-id') put(f.name, 'abc123', 0o640, 4);
  }
  return { root, maas, layout };
}

function deps(calls: string[], region = true): RackDeps {
  const shell = createShell();
  return {
    shell: { run: (argv, o) => (calls.push(argv.join(' ')), shell.run(argv, o)) },
    files: hostFileSystem,
    // The region as rackd first sees it: <maas_url>/rpc/ with its event loops.
    net: {
      httpGet: async (url) => (calls.push(`GET ${url}`), region ? { status: 200, body: '{"eventloops": {"region1:pid=1": [["10.0.0.11", 5250]]}}' } : { status: 503, body: '' }),
      dnsQuery: async () => {
        throw new Error('unused');
      },
      tcpConnect: async () => {},
    },
    clock: { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 50))) },
  };
}

test('rack backup → restore: the archive is 0600 with owners and modes; a wiped rack gets every file back and reconnects', async (t) => {
  const { root, maas, layout } = rackHost(t);
  const calls: string[] = [];
  const out = join(root, 'backup', 'rack.tar');
  const b = await backupRack(deps(calls), maas, layout, out);
  t.is(statSync(out).mode & 0o777, 0o600);
  t.deepEqual(b.members.map((m) => [m.name, m.mode, m.uid, m.gid]), layout.files.map((f) => [f.name, 0o640, 0, 4]));
  t.false(calls.some((c) => c.includes(SECRET)), 'the secret is never in an argv');
  // The rack is rebuilt: its secret is gone, its maas_id is a new one, its rackd.conf names region1 directly.
  rmSync(join(root, 'var/lib/maas/secret'));
  writeFileSync(join(root, 'var/lib/maas/maas_id'), 'fresh1', { mode: 0o644 });
  writeFileSync(join(root, 'etc/maas/rackd.conf'), 'maas_url: http://10.0.0.11:5240/MAAS\n');
  const plan = await planRackRestore(deps(calls), maas, layout, out);
  t.deepEqual(plan.steps.map((s) => s.action), ['replace', 'create', 'replace']);
  const said: string[] = [];
  const r = await restoreRack(deps(calls), maas, layout, plan, (l) => said.push(l));
  t.true(r.reconnect.ok, r.reconnect.detail);
  t.true(calls.includes('/bin/true'), 'the rack service was restarted through the configured manager');
  t.true(calls.includes(`GET http://${VIP}:5240/MAAS/rpc/`));
  for (const f of layout.files) {
    const st = statSync(f.path);
    t.is(st.mode & 0o777, 0o640, f.name);
    t.is(st.gid, 4, f.name);
  }
  t.is(readFileSync(join(root, 'var/lib/maas/secret'), 'utf8'), SECRET);
  t.is(readFileSync(join(root, 'var/lib/maas/maas_id'), 'utf8'), 'abc123');
  t.false(said.join('\n').includes(SECRET));
  // A second restore has nothing to write.
  const again = await planRackRestore(deps(calls), maas, layout, out);
  t.deepEqual(again.steps.map((s) => s.action), ['unchanged', 'unchanged', 'unchanged']);
});

test('rack restore: a region that does not answer → restored, but reported as not reconnected', async (t) => {
  const { root, maas, layout } = rackHost(t, 'maas-snap');
  const out = join(root, 'rack.tar');
  await backupRack(deps([]), maas, layout, out);
  const plan = await planRackRestore(deps([]), maas, layout, out);
  const r = await restoreRack(deps([], false), { ...maas, rack: { ...maas.rack, reconnect_timeout_ms: 1500 } }, layout, plan, () => {});
  t.false(r.reconnect.ok);
  t.regex(r.reconnect.detail, /HTTP 503/);
});

async function cli(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, pathToFileURL(join(process.cwd(), 'hooks', 'maas-ha.ts')).href, { out: (x) => out.push(x), err: (x) => err.push(x) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('maas-ha rack backup / restore --dry-run / check: no secret printed, dry run changes nothing, check exits 1 on a region address', async (t) => {
  const { root } = rackHost(t);
  const saved = process.env.MAAS_HA_CONFIG;
  delete process.env.MAAS_HA_CONFIG;
  t.teardown(() => {
    if (saved !== undefined) process.env.MAAS_HA_CONFIG = saved;
  });
  const archive = join(root, 'rack.tar');
  const b = await cli(['rack', 'backup', '--root', root, '--flavour', 'maas-3-deb', '--out', archive]);
  t.is(b.code, 0, b.err);
  t.regex(b.out, /wrote .*rack\.tar \(0600\)/);
  writeFileSync(join(root, 'etc/maas/rackd.conf'), 'maas_url: http://10.0.0.11:5240/MAAS\n');
  const before = readFileSync(join(root, 'etc/maas/rackd.conf'), 'utf8');
  const d = await cli(['rack', 'restore', archive, '--dry-run', '--root', root, '--flavour', 'maas-3-deb']);
  t.is(d.code, 0, d.err);
  t.regex(d.out, /replace\s+\S+etc\/maas\/rackd\.conf \(content\)/);
  t.is(readFileSync(join(root, 'etc/maas/rackd.conf'), 'utf8'), before, 'the dry run changed nothing');
  const c = await cli(['rack', 'check', '--root', root, '--flavour', 'maas-3-deb', '--vip', VIP, '--region', '10.0.0.11', '--region', '10.0.0.12', '--backup', archive]);
  t.is(c.code, 1);
  t.regex(c.out, /FAIL {2}maas_url http:\/\/10\.0\.0\.11:5240\/MAAS points at region controller 10\.0\.0\.11's own address/);
  for (const r of [b, d, c]) t.false(`${r.out}${r.err}`.includes(SECRET));
  const bad = await cli(['rack', 'check', '--flavour', 'maas-9']);
  t.is(bad.code, 2);
  t.regex(bad.err, /--flavour: expected one of maas-1, maas-2-deb, maas-3-deb, maas-snap, got "maas-9"/);
  t.is((await cli(['rack', 'backup', '--dry-run', '--root', root])).code, 2);
});
