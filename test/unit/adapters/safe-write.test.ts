// Root must never open, chmod or chown a path that a less privileged user controls. These tests do the attack:
// as the unprivileged user `nobody`, plant symbolic links at the names root is about to write, pointing at a
// root-owned mode-0600 file, then run the real command root runs (install.sh's `maas-ha recover install-scripts`,
// `maas-ha vip fence-file --write`, the checked-copy writer behind `maas-ha config check`) and check that the
// root-owned file is untouched (content, owner, mode), and that the command either wrote safely or said why not.
// They need root (to own the victim file and to be the one tricked), as every unit test here runs.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkedPath } from '../../../lib/config/checked.ts';
import { writeChecked } from '../../../lib/adapters/checked-copy.ts';
import { nodeIo, parseConfig } from '../../../lib/config/load.ts';
import { writeFileSafely } from '../../../lib/adapters/safe-write.ts';
import { DIST_BIN, ROOT } from '../../support/lab.ts';

const NOBODY = 65534;
const NOGROUP = 65534;
const SECRET = 'root only: not for nobody\n';
// The built CLI, as install.sh runs it (npm test builds before any test runs; the hook tests use dist/bin too).
const CLI = join(DIST_BIN, 'maas-ha.mjs');

interface World {
  root: string;
  victim: string;
  config: string;
  configText: string;
  /** The victim is exactly as it was: content, owner, mode, still a regular file. */
  victimUntouched(t: import('ava').ExecutionContext): void;
  /** A directory owned by nobody (0755), like a data directory is postgres's. */
  nobodyDir(name: string): string;
  /** A symbolic link owned by nobody at `path`, pointing at the victim. */
  plant(path: string): void;
}

/** A scratch world: a root-owned victim file and a valid configuration whose fence file is `fenceFile(root)`. */
function world(t: import('ava').ExecutionContext, fenceFile: (root: string) => string = (r) => join(r, 'etc', 'fence.nft')): World {
  // Under /run (root's, 0755), not /tmp: the loader refuses a fence file below a directory anyone may write.
  const root = mkdtempSync('/run/maas-ha-root-writes-');
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  chmodSync(root, 0o755); // nobody must be able to reach its own directories inside
  const victim = join(root, 'root-secret');
  writeFileSync(victim, SECRET, { mode: 0o600 });
  chmodSync(victim, 0o600);
  mkdirSync(join(root, 'etc'), { mode: 0o755 });
  for (const f of ['id_maas_ha', 'pcppass']) writeFileSync(join(root, f), 'x\n', { mode: 0o600 });
  writeFileSync(join(root, 'known_hosts'), '');
  const configText = `cluster_name: attack
replication: { user: replicator }
nodes:
  - { id: 0, hostname: 127.0.0.11, data_directory: /srv/pg0, control: { method: pg_ctl, log_file: /srv/pg0.log } }
  - { id: 1, hostname: 127.0.0.12, data_directory: /srv/pg1, control: { method: pg_ctl, log_file: /srv/pg1.log } }
ssh: { identity_file: ${root}/id_maas_ha, known_hosts_file: ${root}/known_hosts }
pcp: { user: pcpadmin, pcppass_file: ${root}/pcppass }
vip:
  address: 10.0.0.100
  interface: eth0
  region_controllers:
    - { name: region1, address: 10.0.0.11 }
    - { name: region2, address: 10.0.0.12 }
  services: { preset: maas-3-deb }
  fence: { file: ${fenceFile(root)} }
`;
  const config = join(root, 'maas-ha.yaml');
  writeFileSync(config, configText, { mode: 0o644 });
  return {
    root,
    victim,
    config,
    configText,
    victimUntouched(tt) {
      const st = lstatSync(victim);
      tt.true(st.isFile(), 'the victim is still a regular file');
      tt.is(readFileSync(victim, 'utf8'), SECRET, 'the victim was not overwritten');
      tt.is(st.uid, 0, 'the victim still belongs to root');
      tt.is(st.gid, 0);
      tt.is(st.mode & 0o7777, 0o600, 'the victim is still mode 0600');
    },
    nobodyDir(name) {
      const d = join(root, name);
      mkdirSync(d, { recursive: true, mode: 0o755 });
      chmodSync(d, 0o755);
      chownSync(d, NOBODY, NOGROUP);
      return d;
    },
    plant(path) {
      symlinkSync(victim, path);
      lchownSync(path, NOBODY, NOGROUP);
    },
  };
}

/** The real `maas-ha` command line, in a child process (as install.sh runs it): exit code, stdout, stderr. */
function maasHa(...argv: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...argv], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A data directory owned by nobody, as postgres owns its own: PG_VERSION inside, mode 0700. */
function dataDirectory(w: World): string {
  const data = w.nobodyDir('data');
  writeFileSync(join(data, 'PG_VERSION'), '15\n');
  chownSync(join(data, 'PG_VERSION'), NOBODY, NOGROUP);
  chmodSync(data, 0o700);
  return data;
}

const WRAPPERS = ['recovery_1st_stage', 'pgpool_remote_start'];

test('root writes: install-scripts into a data directory whose owner planted links at the temporary names → victim untouched, wrappers written as the owner', (t) => {
  const w = world(t);
  const data = dataDirectory(w);
  for (const name of WRAPPERS) w.plant(join(data, `.${name}.maas-ha-tmp`));
  const r = maasHa('recover', 'install-scripts', data, '--config', w.config, '--bindir', '/usr/local/lib/maas-ha/dist/bin');
  w.victimUntouched(t);
  t.is(r.code, 0, r.err);
  t.deepEqual(r.out.trim().split('\n'), WRAPPERS.map((n) => `${data}/${n}: written`));
  for (const name of WRAPPERS) {
    const st = lstatSync(join(data, name));
    t.true(st.isFile(), `${name} is a regular file, not a link`);
    t.is(st.uid, NOBODY, `${name} belongs to the directory's owner`);
    t.is(st.gid, NOGROUP);
    t.is(st.mode & 0o7777, 0o700);
    t.regex(readFileSync(join(data, name), 'utf8'), /^#!\/bin\/sh\n# Written by maas-ha/);
  }
  // Re-running the installer changes nothing.
  const again = maasHa('recover', 'install-scripts', data, '--config', w.config, '--bindir', '/usr/local/lib/maas-ha/dist/bin');
  t.is(again.code, 0, again.err);
  t.deepEqual(again.out.trim().split('\n'), WRAPPERS.map((n) => `${data}/${n}: unchanged`));
  w.victimUntouched(t);
});

test('root writes: install-scripts where the owner planted links at the wrapper names themselves → the links are replaced, never followed', (t) => {
  const w = world(t);
  const data = dataDirectory(w);
  for (const name of WRAPPERS) w.plant(join(data, name));
  const r = maasHa('recover', 'install-scripts', data, '--config', w.config, '--bindir', '/usr/local/lib/maas-ha/dist/bin');
  w.victimUntouched(t);
  t.is(r.code, 0, r.err);
  for (const name of WRAPPERS) t.true(lstatSync(join(data, name)).isFile(), `${name} is now a regular file`);
});

test('root writes: install-scripts into a directory without PG_VERSION → its own message and exit 2, no EPIPE stack trace', (t) => {
  const w = world(t);
  const notData = w.nobodyDir('not-data');
  const r = maasHa('recover', 'install-scripts', notData, '--config', w.config);
  t.is(r.code, 2, r.err);
  t.regex(r.err, new RegExp(`${notData} is not a PostgreSQL data directory \\(it has no PG_VERSION\\)`));
  t.notRegex(r.err, /EPIPE|\n\s+at /);
});

test('root writes: fence-file --write into a directory another user owns, through their planted link → refused, victim untouched', (t) => {
  const w = world(t, (root) => join(root, 'nobody-etc', 'fence.nft'));
  const dir = w.nobodyDir('nobody-etc');
  w.plant(join(dir, 'fence.nft'));
  const r = maasHa('vip', 'fence-file', '--write', '--config', w.config);
  w.victimUntouched(t);
  // Refused by the loader (vip.fence.file must be root's all the way up, exit 2) or by the writer (exit 1).
  t.true(r.code === 1 || r.code === 2, `${r.out}${r.err}`);
  t.regex(r.err, /vip\.fence\.file: .*nobody-etc (belongs to|is owned by) uid 65534, not root/);
  t.false(r.out.includes('wrote'));
});

test('root writes: fence-file --write in a root directory below one another user owns → refused, victim untouched', (t) => {
  const w = world(t, (root) => join(root, 'nobody-home', 'etc', 'fence.nft'));
  const home = w.nobodyDir('nobody-home');
  mkdirSync(join(home, 'etc'), { mode: 0o755 }); // root's, but nobody may rename it and put a link in its place
  for (const dry of [['--dry-run'], []]) {
    // A dry run is refused where the write is: it makes the same checks.
    const r = maasHa('vip', 'fence-file', '--write', ...dry, '--config', w.config);
    t.true(r.code === 1 || r.code === 2, `${r.out}${r.err}`);
    t.regex(r.err, /vip\.fence\.file: .*nobody-home (belongs to|is owned by) uid 65534/);
  }
  w.victimUntouched(t);
  t.false(lstatSync(join(home, 'etc', 'fence.nft'), { throwIfNoEntry: false }) !== undefined, 'nothing written');
});

test('root writes: fence-file --write in a root-only directory → written 0644 root, then unchanged', (t) => {
  const w = world(t);
  const file = join(w.root, 'etc', 'fence.nft');
  const dry = maasHa('vip', 'fence-file', '--write', '--dry-run', '--config', w.config);
  t.is(dry.code, 0, dry.err);
  t.regex(dry.out, new RegExp(`would write ${file.replace(/[.]/g, '\\.')} .*nothing was changed`));
  t.is(lstatSync(file, { throwIfNoEntry: false }), undefined, '--dry-run wrote nothing');
  const r = maasHa('vip', 'fence-file', '--write', '--config', w.config);
  t.is(r.code, 0, r.err);
  t.is(r.out.trim(), `wrote ${file}`);
  const st = lstatSync(file);
  t.true(st.isFile());
  t.is(st.uid, 0);
  t.is(st.mode & 0o7777, 0o644);
  t.regex(readFileSync(file, 'utf8'), /table inet maas_ha/);
  t.is(maasHa('vip', 'fence-file', '--write', '--config', w.config).out.trim(), `${file} unchanged`);
  t.is(maasHa('vip', 'fence-file', '--write', '--dry-run', '--config', w.config).out.trim(), `${file} unchanged: nothing to write`);
  // The dry run compares as the write does (content, mode and owner): the right text with the wrong mode is a write.
  chmodSync(file, 0o600);
  t.regex(maasHa('vip', 'fence-file', '--write', '--dry-run', '--config', w.config).out, /^would write .*nothing was changed/);
  t.is(lstatSync(file).mode & 0o7777, 0o600, '--dry-run changed nothing');
  t.is(maasHa('vip', 'fence-file', '--write', '--config', w.config).out.trim(), `wrote ${file}`);
  t.is(lstatSync(file).mode & 0o7777, 0o644);
  // A dry run of the fence itself says the nft command it would run, and runs none.
  const on = maasHa('vip', 'fence', 'on', '--dry-run', '--config', w.config);
  t.is(on.code, 0, on.err);
  t.regex(on.out.trim(), /^would run: .*nft.*\n.*could no longer reach ports .*nothing was changed \(--dry-run\)$/s);
  const misuse = maasHa('vip', 'check', '--dry-run', '--config', w.config);
  t.is(misuse.code, 2);
  t.regex(misuse.err, /--dry-run: only for vip fence on\|off and vip fence-file --write/);
});

test('root writes: the checked copy next to a configuration in a directory another user owns, through planted links → victim untouched', (t) => {
  const w = world(t);
  const dir = w.nobodyDir('conf');
  const config = join(dir, 'maas-ha.yaml');
  writeFileSync(config, w.configText, { mode: 0o644 });
  chownSync(config, NOBODY, NOGROUP);
  // The names an older writer used (`<copy>.tmp-<pid>`), and the copy itself.
  w.plant(`${checkedPath(config)}.tmp-${process.pid}`);
  w.plant(checkedPath(config));
  t.is(writeChecked(config, w.configText, parseConfig(w.configText, config, nodeIo)), undefined);
  w.victimUntouched(t);
  const st = lstatSync(checkedPath(config));
  t.true(st.isFile(), 'the copy replaced the link');
  t.is(st.uid, NOBODY, 'written as the directory owner');
  t.is(st.mode & 0o7777, 0o640, 'the YAML (nobody:nogroup 0644) is readable by its group: the copy too, by nobody else');
});

test('root writes: the writer itself (not only the loader) refuses a root file in or below a directory another user owns', (t) => {
  const w = world(t);
  const dir = w.nobodyDir('nobody-etc');
  w.plant(join(dir, 'fence.nft'));
  t.throws(() => writeFileSafely(join(dir, 'fence.nft'), 'x', { mode: 0o644, owner: { uid: 0, gid: 0 }, rootDirectory: true }), {
    message: /refusing to write .*nobody-etc\/fence\.nft: .*nobody-etc belongs to uid 65534, not root/,
  });
  mkdirSync(join(dir, 'etc'), { mode: 0o755 });
  t.throws(() => writeFileSafely(join(dir, 'etc', 'fence.nft'), 'x', { mode: 0o644, rootDirectory: true }), {
    message: /refusing to write .*nobody-etc\/etc\/fence\.nft as root: .*nobody-etc belongs to uid 65534/,
  });
  w.victimUntouched(t);
});

test('root writes: writeFileSafely refuses a file for another owner in a directory a third user owns', (t) => {
  const w = world(t);
  const dir = w.nobodyDir('other');
  t.throws(() => writeFileSafely(join(dir, 'x'), 'x', { mode: 0o600, owner: { uid: 0, gid: 0 } }), {
    message: /refusing to write .*other\/x: .*belongs to uid 65534, so a file there for uid 0 cannot be written safely/,
  });
  t.false(statSync(dir).isFile());
  w.victimUntouched(t);
});
