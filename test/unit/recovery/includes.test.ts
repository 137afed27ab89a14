// Which configuration files a rebuild must keep because the node's own configuration includes them from its data
// directory (a node.conf with its port, which pg_rewind would otherwise replace by the primary's). Pure.
import test from 'ava';
import { ownIncludedConf, parseIncludeDirective } from '../../../lib/recovery/includes.ts';

const DATA = '/var/lib/postgresql/15/main';

const directives: [string, ReturnType<typeof parseIncludeDirective>][] = [
  ["include_if_exists = 'node.conf'", { directive: 'include_if_exists', path: 'node.conf' }],
  ["  include 'conf/a.conf'   # comment", { directive: 'include', path: 'conf/a.conf' }],
  ['include_dir conf.d', { directive: 'include_dir', path: 'conf.d' }],
  ["INCLUDE = '/etc/postgresql/x.conf'", { directive: 'include', path: '/etc/postgresql/x.conf' }],
  ["include 'it''s.conf'", { directive: 'include', path: "it's.conf" }],
  ["include = 'back\\'slash.conf'", { directive: 'include', path: "back'slash.conf" }],
  ["# include 'commented.conf'", undefined],
  ["include_something = 'x'", undefined],
  ["include = ''", undefined],
  ["port = 5433", undefined],
];
for (const [line, want] of directives) {
  test(`include directive: ${JSON.stringify(line)} → ${want ? `${want.directive} ${want.path}` : 'none'}`, (t) => {
    t.deepEqual(parseIncludeDirective(line), want);
  });
}

test('own configuration: relative to the including file, only inside the data directory, followed through included files', (t) => {
  const lines = [
    { file: `${DATA}/postgresql.conf`, line: "include_if_exists = 'node.conf'" },
    { file: `${DATA}/postgresql.conf`, line: "include '/etc/postgresql/common.conf'" },
    { file: `${DATA}/postgresql.conf`, line: "include_dir 'conf.d'" },
    { file: `${DATA}/node.conf`, line: "include 'local/more.conf'" },
    { file: `${DATA}/conf.d/10-mem.conf`, line: "include '../deep.conf'" },
    { file: `${DATA}/postgresql.auto.conf`, line: "include = 'auto-inc.conf'" },
    { file: `${DATA}/unrelated.conf`, line: "include 'never.conf'" },
    { file: `${DATA}/postgresql.conf`, line: "include 'pg_hba.conf'" },
  ];
  t.deepEqual(ownIncludedConf(DATA, `${DATA}/postgresql.conf`, lines), [
    { kind: 'file', rel: 'node.conf' },
    { kind: 'dir', rel: 'conf.d' },
    { kind: 'file', rel: 'auto-inc.conf' },
    { kind: 'file', rel: 'local/more.conf' },
    { kind: 'file', rel: 'deep.conf' },
  ]);
});

test('own configuration: a Debian postgresql.conf in /etc names data-directory files by absolute path; its relative ones are outside', (t) => {
  const main = '/etc/postgresql/15/main/postgresql.conf';
  const lines = [
    { file: main, line: `include_if_exists = '${DATA}/node.conf'` },
    { file: main, line: "include_dir = 'conf.d'" },
    { file: main, line: "include = '../../../../var/lib/postgresql/15/main/rel.conf'" },
  ];
  t.deepEqual(ownIncludedConf(DATA, main, lines), [{ kind: 'file', rel: 'node.conf' }, { kind: 'file', rel: 'rel.conf' }]);
  t.deepEqual(ownIncludedConf(DATA, main, []), []);
  t.deepEqual(ownIncludedConf(DATA, main, [{ file: main, line: "include '/var/lib/postgresql/15/main2/x.conf'" }]), [], 'a sibling directory is not inside');
});
