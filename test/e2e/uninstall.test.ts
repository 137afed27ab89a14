// install.sh --uninstall, against an install under a temporary prefix (MAAS_HA_PREFIX), so this machine's own install
// (which the other e2e files run) stays in place: it removes the bundle, the links into it and the recovery wrappers
// of that bundle in a data directory named, keeps whatever is not provably its own, and says what it kept.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../support/lab.ts';

test('install.sh --uninstall on a prefix: bundle, links and its wrappers gone; foreign files, other links and the real install kept', (t) => {
  const prefix = mkdtempSync(join(tmpdir(), 'maas-ha-prefix-'));
  t.teardown(() => rmSync(prefix, { recursive: true, force: true }));
  const env = { ...process.env, MAAS_HA_PREFIX: prefix };
  mkdirSync(join(prefix, 'bin'));
  execFileSync(join(ROOT, 'install.sh'), { cwd: ROOT, env, encoding: 'utf8', timeout: 600_000 });
  t.true(existsSync(join(prefix, 'bin', 'maas-ha')));
  const data = join(prefix, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'pgpool_remote_start'), `#!/bin/sh\n# Written by maas-ha. x\nexec /usr/bin/node ${prefix}/lib/maas-ha/dist/bin/maas-ha-remote-start.mjs "$@"\n`);
  writeFileSync(join(data, 'recovery_1st_stage'), '#!/bin/sh\necho my own\n');
  writeFileSync(join(data, 'PG_VERSION'), '15\n');
  symlinkSync('/usr/bin/true', join(prefix, 'bin', 'maas-ha-mine'));
  const out = execFileSync(join(ROOT, 'install.sh'), ['--uninstall', '--database-host', data], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  t.deepEqual(readdirSync(join(prefix, 'bin')), ['maas-ha-mine']);
  t.false(existsSync(join(prefix, 'lib', 'maas-ha')));
  t.deepEqual(readdirSync(data).sort(), ['PG_VERSION', 'recovery_1st_stage']);
  t.regex(out, /kept .*recovery_1st_stage: not a recovery wrapper of this install/);
  t.regex(out, /kept: the configuration .*state_dir/);
  t.true(existsSync('/usr/local/lib/maas-ha/dist/bin/maas-ha'), "this machine's install is untouched");
  const again = execFileSync(join(ROOT, 'install.sh'), ['--uninstall'], { cwd: ROOT, env, encoding: 'utf8', timeout: 120_000 });
  t.regex(again, /nothing of maas-ha was installed under /);
});
