// `maas-ha config check`, the built CLI, as an operator runs it: every problem at once, one line each, in file
// order with its line:col, and exit 2.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST_BIN } from '../support/lab.ts';

test('maas-ha config check: five different mistakes → five lines, each with path, message and line:col; exit 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'id_maas_ha');
  writeFileSync(key, 'x\n');
  chmodSync(key, 0o600);
  const file = join(dir, 'maas-ha.yaml');
  writeFileSync(
    file,
    [
      'cluster_name: maas',
      'log_levle: debug',
      'replication: { user: replicator }',
      'nodes:',
      '  - { id: 0, hostname: 10.0.0.11, port: 70000, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }',
      '  - { id: 1, hostname: 10.0.0.12, data_directory: relative/path, control: { method: pg_ctl, log_file: /srv/pg.log } }',
      'ssh:',
      `  identity_file: ${key}`,
      '  known_hosts_file: /etc/hostname',
      '  connect_timeout_s: fast',
      'pcp: { user: pcpadmin, pcppass_file: /etc/nonexistent-pcppass }',
      '',
    ].join('\n'),
  );
  const r = spawnSync(join(DIST_BIN, 'maas-ha'), ['config', 'check', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  t.is(r.status, 2);
  // --json: the same five problems as data on stdout, the same exit code.
  const j = spawnSync(join(DIST_BIN, 'maas-ha'), ['config', 'check', '--json', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  t.is(j.status, 2);
  t.deepEqual(JSON.parse(j.stdout), { ok: false, source: file, problems: r.stderr.trim().split('\n').slice(1).map((l) => l.trim()) });
  t.deepEqual(r.stderr.trim().split('\n'), [
    `maas-ha: ${file}: 5 problems:`,
    '  log_levle: unknown key (did you mean log_level?) (2:1)',
    '  nodes[0].port: must be an integer from 1 to 65535, got 70000 (5:41)',
    '  nodes[1].data_directory: must be an absolute path of only [A-Za-z0-9._/+@-] characters (pgpool pastes paths unquoted into shell commands and SQL literals), got "relative/path" (6:51)',
    '  ssh.connect_timeout_s: must be an integer from 1 to 300, got "fast" (10:22)',
    '  pcp.pcppass_file: /etc/nonexistent-pcppass does not exist (11:38)',
  ]);
  t.is(r.stdout, '', 'nothing on stdout when the file is invalid');
});
