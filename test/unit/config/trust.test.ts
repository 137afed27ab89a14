// Paths root runs or writes (vip.binaries, vip.fence.file, explicit service commands) and the fencing command: the
// rule (lib/config/trust.ts) as a table over fake trees, then the attack on the real filesystem: a script some other
// user may change, named in the configuration, is refused at load, naming the file and the fix.
import test from 'ava';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../lib/config/load.ts';
import { nodeFacts, resolvePath, rootRunPaths, rootTrustProblem, type FsFacts, type PathFacts } from '../../../lib/config/trust.ts';
import { ConfigError } from '../../../lib/errors.ts';

const DIR = 0o040000;
const FILE = 0o100000;
const LINK = 0o120000;

/** A fake tree: path → [uid, mode with type bits, link text?]. */
function tree(entries: Record<string, [number, number, string?]>): FsFacts {
  const all: Record<string, [number, number, string?]> = { '/': [0, DIR | 0o755], '/usr': [0, DIR | 0o755], '/usr/sbin': [0, DIR | 0o755], ...entries };
  return (p) => {
    const e = all[p];
    if (!e) return undefined;
    const f: PathFacts = { uid: e[0], mode: e[1] };
    if (e[2] !== undefined) f.link = e[2];
    return f;
  };
}

const rows: [title: string, path: string, entries: Record<string, [number, number, string?]>, want: RegExp | undefined][] = [
  ['root-owned 0755 binary under root-owned 0755 directories → trusted', '/usr/sbin/ip', { '/usr/sbin/ip': [0, FILE | 0o755] }, undefined],
  ['a path that does not exist yet, under a trusted directory → trusted (only root can create it)', '/usr/sbin/snap', {}, undefined],
  ['missing directories below a trusted one → trusted', '/usr/sbin/a/b/c', {}, undefined],
  ['the binary owned by postgres → refused, naming it and the chown', '/usr/sbin/ip', { '/usr/sbin/ip': [114, FILE | 0o755] }, /^root runs \/usr\/sbin\/ip, but \/usr\/sbin\/ip is owned by uid 114, not root .*; chown root:root \/usr\/sbin\/ip && chmod go-w \/usr\/sbin\/ip$/],
  ['the binary group-writable (0775) → refused', '/usr/sbin/ip', { '/usr/sbin/ip': [0, FILE | 0o775] }, /\/usr\/sbin\/ip is writable by its group \(mode 0775\)/],
  ['the binary world-writable (0757) → refused', '/usr/sbin/ip', { '/usr/sbin/ip': [0, FILE | 0o757] }, /\/usr\/sbin\/ip is writable by others \(mode 0757\)/],
  ['a root-owned script in /var/lib/postgresql (postgres-owned) → refused, naming the directory', '/var/lib/postgresql/restart.sh', {
    '/var': [0, DIR | 0o755], '/var/lib': [0, DIR | 0o755], '/var/lib/postgresql': [114, DIR | 0o755], '/var/lib/postgresql/restart.sh': [0, FILE | 0o755],
  }, /but \/var\/lib\/postgresql is owned by uid 114, not root.*chown root:root \/var\/lib\/postgresql && chmod go-w \/var\/lib\/postgresql$/],
  ['a grandparent directory group-writable → refused, all the way up', '/opt/tools/bin/fence', {
    '/opt': [0, DIR | 0o775], '/opt/tools': [0, DIR | 0o755], '/opt/tools/bin': [0, DIR | 0o755], '/opt/tools/bin/fence': [0, FILE | 0o755],
  }, /but \/opt is writable by its group \(mode 0775\)/],
  ['a sticky world-writable directory (/tmp) → refused, with a move rather than a chmod', '/tmp/fence', { '/tmp': [0, DIR | 0o1777], '/tmp/fence': [0, FILE | 0o755] }, /but \/tmp is a shared directory \(mode 1777: anyone may create names in it\).*move it to a directory only root may write/],
  ['a missing file in /tmp → refused: anyone may create it first', '/tmp/not-yet', { '/tmp': [0, DIR | 0o1777] }, /\/tmp is a shared directory/],
  ['a symlink to a trusted file → trusted', '/usr/sbin/iplink', { '/usr/sbin/iplink': [0, LINK | 0o777, '/usr/sbin/ip'], '/usr/sbin/ip': [0, FILE | 0o755] }, undefined],
  ['a symlink (relative) whose target is postgres-owned → refused, naming the link and the target', '/usr/sbin/ip', {
    '/usr/sbin/ip': [0, LINK | 0o777, '../../home/pg/ip'], '/home': [0, DIR | 0o755], '/home/pg': [114, DIR | 0o700], '/home/pg/ip': [114, FILE | 0o755],
  }, /^root runs \/usr\/sbin\/ip \(through the link \/usr\/sbin\/ip → \.\.\/\.\.\/home\/pg\/ip\), but \/home\/pg is owned by uid 114/],
  ['a symlinked directory on the way (/bin → usr/bin) is followed', '/bin/ip', { '/bin': [0, LINK | 0o777, 'usr/bin'], '/usr/bin': [0, DIR | 0o755], '/usr/bin/ip': [0, FILE | 0o755] }, undefined],
  ['a symlinked directory leading into a group-writable one → refused', '/bin/ip', { '/bin': [0, LINK | 0o777, '/srv/bin'], '/srv': [0, DIR | 0o755], '/srv/bin': [0, DIR | 0o770], '/srv/bin/ip': [0, FILE | 0o755] }, /\(through the link \/bin → \/srv\/bin\), but \/srv\/bin is writable by its group/],
  ['a symlink loop → refused', '/usr/sbin/loop', { '/usr/sbin/loop': [0, LINK | 0o777, '/usr/sbin/loop'] }, /loops through more than 40 symbolic links/],
  ['"/.." on the way does not escape the check', '/usr/../tmp/x', { '/tmp': [0, DIR | 0o1777] }, /\/tmp is a shared directory/],
  ['a relative path → refused', 'bin/ip', {}, /not an absolute path/],
];
for (const [title, path, entries, want] of rows) {
  test(`rootTrustProblem: ${title}`, (t) => {
    const got = rootTrustProblem(path, tree(entries));
    if (want === undefined) t.is(got, undefined);
    else t.regex(got ?? '(trusted)', want);
  });
}

test('resolvePath: follows absolute and relative links, and says undefined for a loop', (t) => {
  const facts = tree({ '/a': [0, LINK | 0o777, 'usr'], '/usr/x': [0, LINK | 0o777, '../etc/y'], '/l': [0, LINK | 0o777, '/l'] });
  t.is(resolvePath('/a/x', facts), '/etc/y');
  t.is(resolvePath('/l', facts), undefined);
});

test('rootRunPaths: every binary, the fence file, each service command and the fencing command; nothing else', (t) => {
  const keys = rootRunPaths({
    vip: {
      binaries: { ip: '/usr/sbin/ip', sudo: '/usr/bin/sudo' },
      fence: { file: '/etc/maas-ha/fence.nft' },
      services: { list: [{ restart: ['/srv/ctl', 'restart'], stop: ['/srv/ctl', 'stop'] }, undefined, {}] },
    },
    fencing: { command: ['/usr/local/sbin/fence', '{host}'] },
  }).map((r) => `${r.key}=${r.path}`);
  t.deepEqual(keys, [
    'vip.binaries.ip=/usr/sbin/ip',
    'vip.binaries.sudo=/usr/bin/sudo',
    'vip.fence.file=/etc/maas-ha/fence.nft',
    'vip.services.list[0].restart[0]=/srv/ctl',
    'vip.services.list[0].stop[0]=/srv/ctl',
    'fencing.command[0]=/usr/local/sbin/fence',
  ]);
});

// ---- the attack on the real filesystem

const isRoot = process.getuid?.() === 0;
/** A directory root owns all the way up, to build trusted and untrusted trees in (not /tmp: that is shared). */
const TRUSTED_BASE = ['/run', '/var/lib', '/root'].find((d) => rootTrustProblem(`${d}/x`, nodeFacts) === undefined);
const asRoot = isRoot && TRUSTED_BASE ? test : test.skip;
const NOBODY = 65534;

/** A valid configuration in a private temp dir, with `extra` appended; returns its path. */
function configWith(t: import('ava').ExecutionContext, extra: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-trust-cfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['id', 'pcppass']) writeFileSync(join(dir, f), 'x\n', { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), '', { mode: 0o644 });
  const file = join(dir, 'maas-ha.yaml');
  writeFileSync(
    file,
    `replication: { user: replicator }
state_dir: ${dir}/state
nodes:
  - { id: 0, hostname: 10.0.0.11, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }
  - { id: 1, hostname: 10.0.0.12, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }
ssh: { identity_file: ${dir}/id, known_hosts_file: ${dir}/known_hosts }
pcp: { user: pcpadmin, pcppass_file: ${dir}/pcppass }
${extra}`,
    { mode: 0o644 },
  );
  return file;
}

/** A directory below TRUSTED_BASE, root's and 0755, with a root-owned 0755 script in it. */
function trustedScript(t: import('ava').ExecutionContext): { dir: string; script: string } {
  const dir = mkdtempSync(join(TRUSTED_BASE!, 'maas-ha-trust-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o755);
  const script = join(dir, 'restart.sh');
  writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
  return { dir, script };
}

const commandsVip = (cmd: string) => `vip:
  address: 10.0.0.100
  interface: eth0
  region_controllers: [{ name: region1, address: 10.0.0.11 }, { name: region2, address: 10.0.0.12 }]
  services:
    manager: commands
    list:
      - { name: api, restart: [${cmd}, restart], stop: [${cmd}, stop] }
`;

function problems(t: import('ava').ExecutionContext, file: string): string[] {
  const err = t.throws(() => loadConfig(file), { instanceOf: ConfigError });
  t.is(err?.exitCode, 2);
  return err?.problems ?? [];
}

asRoot('attack: a service restart script owned by nobody → config load fails, naming the script and the fix', (t) => {
  const { script } = trustedScript(t);
  chownSync(script, NOBODY, NOBODY);
  const got = problems(t, configWith(t, commandsVip(script)));
  t.deepEqual(
    got.map((p) => p.replace(/ \(\d+:\d+\)$/, '')),
    ['restart', 'stop'].map(
      (k) => `vip.services.list[0].${k}[0]: root runs ${script}, but ${script} is owned by uid ${NOBODY}, not root (whoever may change it chooses what runs); chown root:root ${script} && chmod go-w ${script}`,
    ),
  );
  t.true(got.every((p) => / \(\d+:\d+\)$/.test(p)), 'each problem has its line:col');
});

asRoot('attack: a root-owned script in a group-writable directory → refused, naming the directory', (t) => {
  const { dir, script } = trustedScript(t);
  chmodSync(dir, 0o775);
  const got = problems(t, configWith(t, commandsVip(script)));
  t.true(got.length === 2 && got.every((p) => p.includes(`but ${dir} is writable by its group (mode 0775)`) && p.includes(`chmod go-w ${dir}`)), got.join('\n'));
});

asRoot('attack: vip.binaries.ip and vip.fence.file in a directory owned by nobody → both refused', (t) => {
  const { dir } = trustedScript(t);
  const theirs = join(dir, 'theirs');
  mkdirSync(theirs, { mode: 0o755 });
  chownSync(theirs, NOBODY, NOBODY);
  const extra = `${commandsVip('/usr/bin/true').replace('manager: commands', 'manager: commands\n    timeout_ms: 1000')}  binaries: { ip: ${theirs}/ip }\n  fence: { file: ${theirs}/fence.nft }\n`;
  const got = problems(t, configWith(t, extra));
  t.true(got.some((p) => p.startsWith(`vip.binaries.ip: root runs ${theirs}/ip, but ${theirs} is owned by uid ${NOBODY}`)), got.join('\n'));
  t.true(got.some((p) => p.startsWith(`vip.fence.file: root loads (nft -f) ${theirs}/fence.nft, but ${theirs} is owned by uid ${NOBODY}`)), got.join('\n'));
});

asRoot('attack: a root-owned symlink to a script owned by nobody → refused, naming the link and the target', (t) => {
  const { dir, script } = trustedScript(t);
  chownSync(script, NOBODY, NOBODY);
  const link = join(dir, 'link.sh');
  symlinkSync(script, link);
  const got = problems(t, configWith(t, `fencing:\n  command: [${link}, "{host}"]\n`));
  t.deepEqual(got.map((p) => p.replace(/ \(\d+:\d+\)$/, '')), [
    `fencing.command[0]: the failover hook runs ${link} (through the link ${link} → ${script}), but ${script} is owned by uid ${NOBODY}, not root (whoever may change it chooses what runs); chown root:root ${script} && chmod go-w ${script}`,
  ]);
});

test('attack: a fencing command in a private temp dir below /tmp → refused (the sticky /tmp is no root-only directory)', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-trust-tmp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'fence'), '#!/bin/sh\n', { mode: 0o755 });
  const got = problems(t, configWith(t, `fencing:\n  command: [${dir}/fence]\n`));
  t.is(got.length, 1);
  t.regex(got[0] ?? '', /^fencing\.command\[0\]: the failover hook runs \/.*\/fence, but .* \(\d+:\d+\)$/);
});

asRoot('a root-owned 0755 script under root-owned directories → accepted, as are the default binaries', (t) => {
  const { script } = trustedScript(t);
  const c = loadConfig(configWith(t, `${commandsVip(script)}fencing:\n  command: [${script}, "{host}"]\n`));
  t.deepEqual(c.vip?.services.list[0]?.restart, [script, 'restart']);
  t.deepEqual(c.fencing.command, [script, '{host}']);
});

test('fencing.command: a command without an absolute path → refused (its owner could not be checked)', (t) => {
  const got = problems(t, configWith(t, 'fencing:\n  command: [fence-node, "{host}"]\n'));
  t.deepEqual(got, ['fencing.command: the command must start with an absolute path, got "fence-node" (9:3)']);
});
