// The files that decide what runs, on the real filesystem at mode 0666 (or 0777): the configuration and its
// directory, known_hosts, state_dir (and the state store itself), and the checked copy. Each is refused (or, for the
// copy, ignored with a note) naming the file and the fix.
import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkedPath, loadConfigFast } from '../../../lib/config/checked.ts';
import { writeChecked } from '../../../lib/adapters/checked-copy.ts';
import { loadConfig, nodeIo, parseConfig } from '../../../lib/config/load.ts';
import { createStateStore } from '../../../lib/adapters/state.ts';
import { ConfigError, OperationError } from '../../../lib/errors.ts';

const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };

function fixture(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-files-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['id', 'pcppass']) writeFileSync(join(dir, f), 'x\n', { mode: 0o600 });
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, '', { mode: 0o644 });
  const state = join(dir, 'state');
  const file = join(dir, 'maas-ha.yaml');
  const text = `cluster_name: yaml
state_dir: ${state}
replication: { user: replicator }
nodes:
  - { id: 0, hostname: 10.0.0.11, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }
  - { id: 1, hostname: 10.0.0.12, data_directory: /srv/pg, control: { method: pg_ctl, log_file: /srv/pg.log } }
ssh: { identity_file: ${dir}/id, known_hosts_file: ${knownHosts} }
pcp: { user: pcpadmin, pcppass_file: ${dir}/pcppass }
`;
  writeFileSync(file, text, { mode: 0o644 });
  return { dir, file, text, knownHosts, state };
}

function problems(t: import('ava').ExecutionContext, file: string): string[] {
  const err = t.throws(() => loadConfig(file), { instanceOf: ConfigError });
  t.is(err?.exitCode, 2);
  return err?.problems ?? [];
}

test('config file at mode 0666 → refused, naming the file and chmod go-w', (t) => {
  const f = fixture(t);
  chmodSync(f.file, 0o666);
  t.deepEqual(problems(t, f.file), [
    `${f.file} is writable by group and others (mode 0666): whoever may write it chooses what the hooks run and what root may run; chmod go-w ${f.file} (1:1)`,
  ]);
});

test('config file in a directory others may write (0777) → refused, naming the directory', (t) => {
  const f = fixture(t);
  chmodSync(f.dir, 0o777);
  t.deepEqual(problems(t, f.file), [
    `${f.dir}, the directory of ${f.file}, is writable by group and others (mode 0777): whoever may write it can replace the configuration; chmod go-w ${f.dir} (1:1)`,
  ]);
});

test('known_hosts at mode 0666 → refused with its line:col, naming the file and chmod go-w', (t) => {
  const f = fixture(t);
  chmodSync(f.knownHosts, 0o666);
  t.deepEqual(
    problems(t, f.file).map((p) => p.replace(/\(7:\d+\)$/, '(7:…)')),
    [`ssh.known_hosts_file: ${f.knownHosts} is writable by group and others (mode 0666): whoever may write it can add a host key and stand in for a node; chmod go-w ${f.knownHosts} (7:…)`],
  );
});

test('state_dir that exists at mode 0777 → refused at config load, naming it', (t) => {
  const f = fixture(t);
  mkdirSync(f.state, { mode: 0o700 });
  chmodSync(f.state, 0o777);
  t.deepEqual(problems(t, f.file), [
    `state_dir: ${f.state} is writable by group and others (mode 0777): anyone could forge the fencing markers and journal entries the hooks act on; chmod go-w ${f.state} (2:12)`,
  ]);
});

test('state_dir as a link to a directory others may write → refused, naming the target', (t) => {
  const f = fixture(t);
  const real = join(f.dir, 'real-state');
  mkdirSync(real);
  chmodSync(real, 0o777);
  symlinkSync(real, f.state);
  t.deepEqual(problems(t, f.file), [
    `state_dir: ${f.state} (a link to ${real}) is writable by group and others (mode 0777): anyone could forge the fencing markers and journal entries the hooks act on; chmod go-w ${real} (2:12)`,
  ]);
});

test('state store: a state_dir others may write (0777) → lock, journal and markers refuse it; nothing is written', async (t) => {
  const f = fixture(t);
  mkdirSync(f.state);
  chmodSync(f.state, 0o777);
  const store = createStateStore(f.state, clock, { cluster: 'yaml' });
  const refused = { instanceOf: OperationError, message: new RegExp(`^${f.state} .*is writable by group or others \\(mode 0777\\).*; chmod go-w ${f.state}$`) };
  await t.throwsAsync(store.lock('cluster', 0), refused);
  t.throws(() => store.journal('failover-node0', { step: 'started' }), refused);
  t.throws(() => store.markFenced({ node: 0, since: 'now', status: 'stopped', reason: 'r' }), refused);
  t.deepEqual(readdirSync(f.state), [], 'nothing was created in it');
  // Forged files already there are not read either.
  chmodSync(f.state, 0o700);
  mkdirSync(join(f.state, 'fenced'));
  writeFileSync(join(f.state, 'fenced', 'node-1.json'), '{"node":1,"status":"stopped","since":"s","reason":"forged"}');
  chmodSync(f.state, 0o777);
  t.throws(() => store.fenced(), refused);
  chmodSync(f.state, 0o700);
  chmodSync(join(f.state, 'fenced'), 0o777);
  t.throws(() => store.fenced(), { instanceOf: OperationError, message: /fenced .*mode 0777/ });
});

test('checked copy at mode 0666 → ignored with a note naming it and the fix; the YAML is read instead', async (t) => {
  const f = fixture(t);
  const why = writeChecked(f.file, f.text, parseConfig(f.text, f.file, nodeIo));
  t.is(why, undefined);
  const copy = JSON.parse(readFileSync(checkedPath(f.file), 'utf8')) as { config: { cluster_name: string } };
  copy.config.cluster_name = 'forged';
  writeFileSync(checkedPath(f.file), JSON.stringify(copy));
  chmodSync(checkedPath(f.file), 0o666);
  const notes: string[] = [];
  const c = await loadConfigFast(f.file, (m) => notes.push(m));
  t.is(c.cluster_name, 'yaml', 'the forged copy is never trusted');
  t.deepEqual(notes, [
    `ignoring the checked copy ${checkedPath(f.file)}: it is writable by group and others (mode 0666), so someone else may have written it; reading ${f.file} instead (chmod go-w ${checkedPath(f.file)}, or let maas-ha config check replace it)`,
  ]);
});

test('checked copy: known_hosts opened to others after the check → copy not used; the full loader refuses it', async (t) => {
  const f = fixture(t);
  t.is(writeChecked(f.file, f.text, parseConfig(f.text, f.file, nodeIo)), undefined);
  chmodSync(f.knownHosts, 0o666);
  const err = await t.throwsAsync(loadConfigFast(f.file, () => {}), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', /ssh\.known_hosts_file: .* \(mode 0666\).*chmod go-w/);
});

test('checked copy: the configuration made world-writable after the check → copy not used; the full loader refuses it', async (t) => {
  const f = fixture(t);
  t.is(writeChecked(f.file, f.text, parseConfig(f.text, f.file, nodeIo)), undefined);
  chmodSync(f.file, 0o666);
  const err = await t.throwsAsync(loadConfigFast(f.file, () => {}), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', new RegExp(`${f.file} is writable by group and others \\(mode 0666\\)`));
});
