// The sudoers drop-in read by sudo's own parser. `visudo -cf` only says a file is well-formed: a line that
// allows far more than it shows (an argument starting a comment, a bare command meaning "any arguments") passes
// it. So each rendered file is also parsed by `cvtsudoers -f json` (sudo's sudoers grammar, shipped with sudo), and
// the command it reports must be exactly the intended argv: every token, once fnmatch's escapes are read, equal to
// the argument, no unescaped wildcard left, and a command without arguments pinned to none by `""`.

import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServiceSpec, VipConfig } from '../../../lib/config/types.ts';
import { privilegedCommands, renderSudoers } from '../../../lib/vip/sudoers.ts';
import { testVip } from '../../support/config.ts';

const withCommands = (...restarts: string[][]): VipConfig =>
  testVip({
    services: {
      manager: 'commands',
      timeout_ms: 1,
      list: restarts.map((restart, i): ServiceSpec => ({ name: `s${i}`, unit: `s${i}`, needs_vip: false, restart })),
    },
  });

/** Writes the drop-in, checks it with visudo -cf, and returns what sudo's parser makes of each rule's command. */
function parsedCommands(t: { teardown(f: () => void): void }, text: string): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-sudoers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'maas-ha');
  writeFileSync(file, text, { mode: 0o440 });
  execFileSync('/usr/sbin/visudo', ['-cf', file], { encoding: 'utf8' });
  const json = JSON.parse(execFileSync('cvtsudoers', ['-f', 'json', file], { encoding: 'utf8' })) as {
    User_Specs: { Cmnd_Specs: { Commands: { command: string }[] }[] }[];
  };
  return json.User_Specs.flatMap((u) => u.Cmnd_Specs.flatMap((c) => c.Commands.map((x) => x.command)));
}

/**
 * A parsed sudoers command (`path args`, fnmatch patterns) back to the exact argv it matches, or an explanation of
 * why it matches more than one argv. sudo matches the user's arguments joined by spaces, so splitting on spaces
 * is what sudo sees; `""` alone means "no arguments".
 */
function matchedArgv(command: string): string[] | string {
  const [cmd, ...args] = command.split(' ');
  if (args.length === 0) return `${cmd} with ANY arguments (no argument list)`;
  if (args.length === 1 && args[0] === '""') return [cmd!];
  const argv: string[] = [];
  for (const token of [cmd!, ...args]) {
    if (token.startsWith('^')) return `${token}: a regular expression`;
    let out = '';
    for (let i = 0; i < token.length; i++) {
      const c = token[i]!;
      if (c === '\\') {
        if (i + 1 >= token.length) return `${token}: a dangling escape`;
        out += token[++i];
      } else if ('*?['.includes(c)) {
        return `${token}: an unescaped wildcard ${c}`;
      } else {
        out += c;
      }
    }
    argv.push(out);
  }
  return argv;
}

test('sudoers: hostile arguments (#, commas, colons, equals, backslashes, wildcards, ^, !) → sudo parses exactly the argv', (t) => {
  const wanted = [
    ['/usr/bin/systemctl', '#restart', 'regiond'],
    ['/usr/bin/systemctl', 'restart', 'a#b'],
    ['/srv/ctl', '--mode=a,b:c', 'x*', 'y?', '[z]'],
    ['/srv/ctl', 'back\\slash', 'trailing\\'],
    ['/srv/ctl', '^anchored', '!bang', 'ALL', 'é'],
  ];
  const vip = withCommands(...wanted);
  const parsed = parsedCommands(t, renderSudoers(vip, 'postgres', '/etc/maas-ha/maas-ha.yaml'));
  const intended = privilegedCommands(vip);
  t.is(parsed.length, intended.length);
  t.deepEqual(parsed.map(matchedArgv), intended);
  for (const w of wanted) t.true(intended.some((c) => JSON.stringify(c) === JSON.stringify(w)), `${w.join(' ')} is among the rules`);
});

test('sudoers: a one-word command → pinned to no arguments ("" in the rule), as sudo parses it', (t) => {
  const parsed = parsedCommands(t, renderSudoers(withCommands(['/usr/local/sbin/restart-maas']), 'postgres', 'f'));
  t.true(parsed.includes('/usr/local/sbin/restart-maas ""'), JSON.stringify(parsed));
  t.false(parsed.includes('/usr/local/sbin/restart-maas'));
  t.deepEqual(parsed.map(matchedArgv).filter((a) => typeof a === 'string'), [], 'every rule pins its arguments');
});

test('sudoers: arguments sudo cannot pin (space, empty, newline, NUL, quote) → refused at render time, naming the value', (t) => {
  const cases: [string, RegExp][] = [
    ['two words', /"two words": sudoers cannot express an argument that is empty or contains whitespace/],
    ['', /"": sudoers cannot express an argument that is empty or contains whitespace/],
    ['line\nALL', /"line\\nALL": sudoers cannot express an argument that is empty or contains whitespace/],
    ['nul\u0000x', /"nul\\u0000x": quotes and control characters have no place/],
    ['say"hi"', /"say\\"hi\\"": quotes and control characters have no place/],
  ];
  for (const [arg, message] of cases) t.throws(() => renderSudoers(withCommands(['/srv/ctl', arg]), 'postgres', 'f'), { message }, JSON.stringify(arg));
  t.throws(() => renderSudoers(withCommands(['restart-maas']), 'postgres', 'f'), { message: /"restart-maas": a sudoers command must be an absolute path/ });
});

test('sudoers: the default (systemd, nftables) drop-in → every rule, as sudo parses it, is one exact argv', (t) => {
  const vip = testVip();
  t.deepEqual(parsedCommands(t, renderSudoers(vip, 'postgres', 'f')).map(matchedArgv), privilegedCommands(vip));
});

test('sudoers: active-active → only the VIP itself (ip addr add/del): no service restart, no fence', (t) => {
  const vip = testVip({ mode: 'active-active', fence: { ...testVip().fence, method: 'none' } });
  t.deepEqual(parsedCommands(t, renderSudoers(vip, 'postgres', 'f')).map(matchedArgv), [
    ['/usr/sbin/ip', 'addr', 'add', '10.0.0.100/24', 'dev', 'eth0'],
    ['/usr/sbin/ip', 'addr', 'del', '10.0.0.100/24', 'dev', 'eth0'],
  ]);
});
