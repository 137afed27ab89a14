// install.sh on this machine (CI ran it before the tests): idempotent, and what it installs runs from PATH.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../support/lab.ts';

const HOOKS = ['maas-ha', 'maas-ha-failover', 'maas-ha-follow-primary', 'maas-ha-failback', 'maas-ha-recovery-1st-stage', 'maas-ha-remote-start', 'maas-ha-escalation', 'maas-ha-de-escalation'];
// A clean environment: no MAAS_HA_CONFIG pointing at some lab.
const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

test.serial('install.sh: run again on an installed machine → it changes nothing and says so', (t) => {
  execFileSync(join(ROOT, 'install.sh'), { cwd: ROOT, env, encoding: 'utf8', timeout: 600_000 });
  const second = execFileSync(join(ROOT, 'install.sh'), { cwd: ROOT, env, encoding: 'utf8', timeout: 600_000 });
  t.regex(second, /system packages: unchanged/);
  t.regex(second, /npm dependencies: unchanged/);
  t.regex(second, /build: unchanged/);
  t.regex(second.trim().split('\n').pop() ?? '', /nothing changed$/);
});

test.serial('install.sh: maas-ha and every hook are on PATH, as links into /usr/local/lib/maas-ha, and start', (t) => {
  for (const h of HOOKS) {
    const path = execFileSync('sh', ['-c', `command -v ${h}`], { env, encoding: 'utf8' }).trim();
    t.is(path, `/usr/local/bin/${h}`);
    t.is(readlinkSync(path), `/usr/local/lib/maas-ha/dist/bin/${h}`);
  }
  t.regex(execFileSync('maas-ha', ['help'], { env, encoding: 'utf8' }), /^usage: maas-ha <command>/);
  // A hook started by hand with nothing: exit 2, and the error names what is missing.
  const r = (() => {
    try {
      execFileSync('maas-ha-failover', [], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      return { status: 0, stderr: '' };
    } catch (err) {
      return err as { status: number; stderr: string };
    }
  })();
  t.is(r.status, 2);
  t.regex(r.stderr, /--failed-node, --failed-host, .*: missing \(required\)/);
});
