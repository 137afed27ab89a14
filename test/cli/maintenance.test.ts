// `maas-ha maintenance`, the built CLI: a line it cannot act on is a usage error (exit 2) that names what is wrong,
// before any configuration is read or any mark is set. What the command does to a cluster is tested in the lab
// (test/e2e/recovery.test.ts); its rules in test/unit/maintenance.test.ts.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { DIST_BIN } from '../support/lab.ts';

const run = (...args: string[]) => spawnSync(`${DIST_BIN}/maas-ha`, ['maintenance', ...args, '--config', '/nonexistent/maas-ha.yaml'], { encoding: 'utf8', timeout: 20_000 });

const usage: [string[], RegExp][] = [
  [['sideways'], /maintenance: expected on or off, got "sideways"/],
  [['--reason', 'x'], /--reason and --dry-run go with on or off/],
  [['off', '1', '--reason', 'x'], /--reason: only with maintenance on/],
  [['on', '1', '--reason', 'two\nlines'], /--reason: one line/],
  [['on', '1', '2', '3'], /unexpected argument|too many|positional/i],
];
for (const [args, why] of usage) {
  test(`maas-ha maintenance ${JSON.stringify(args)} → exit 2, naming the mistake`, (t) => {
    const r = run(...args);
    t.is(r.status, 2, r.stderr);
    t.regex(r.stderr, why);
  });
}

test('maas-ha maintenance on 1 with a configuration that is missing → exit 2, naming the file; nothing else happens', (t) => {
  const r = run('on', '1');
  t.is(r.status, 2);
  t.regex(r.stderr, /\/nonexistent\/maas-ha\.yaml/);
});
