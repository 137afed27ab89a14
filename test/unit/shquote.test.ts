import test from 'ava';
import { execFileSync } from 'node:child_process';
import { shJoin, shQuote } from '../../lib/shquote.ts';

const HOSTILE = [
  "'; touch pwned",
  'two words',
  '$(touch pwned)',
  '`touch pwned`',
  '"double" and \'single\'',
  'back\\slash',
  'semi;colon && amp | pipe > redirect',
  '*',
  '~root',
  '',
  ' leading and trailing ',
  'new\nline',
  '$HOME ${HOME} $1',
  "it's",
  '-n',
];

// Each remote command is parsed by the login shell on the database host: dash on Debian.
for (const shell of ['/bin/dash', '/bin/bash']) {
  test(`shJoin: hostile strings reach ${shell} as single, unchanged arguments`, (t) => {
    const script = shJoin(['printf', '%s\\0', ...HOSTILE]);
    const out = execFileSync(shell, ['-c', script], { cwd: '/tmp', encoding: 'utf8' });
    t.deepEqual(out.split('\0').slice(0, -1), HOSTILE);
  });
}

test('shQuote: safe words stay readable, everything else is single-quoted', (t) => {
  t.is(shQuote('/var/lib/postgresql/15/main'), '/var/lib/postgresql/15/main');
  t.is(shQuote('host=10.0.0.1'), 'host=10.0.0.1');
  t.is(shQuote('a b'), "'a b'");
  t.is(shQuote("it's"), `'it'\\''s'`);
  t.is(shQuote(''), "''");
});

test('shJoin: refuses an empty command', (t) => {
  t.throws(() => shJoin([]), { message: /empty argv/ });
});
