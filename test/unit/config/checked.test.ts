// The checked copy (lib/config/checked.ts): used only while it is provably what the full loader would return.
import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkedPath, loadConfigFast } from '../../../lib/config/checked.ts';
import { writeChecked } from '../../../lib/adapters/checked-copy.ts';
import { parseConfig, nodeIo } from '../../../lib/config/load.ts';
import { ConfigError } from '../../../lib/errors.ts';

function fixture(t: { teardown(f: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-checked-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'id_maas_ha');
  const pcppass = join(dir, 'pcppass');
  for (const f of [key, pcppass]) {
    writeFileSync(f, 'x\n');
    chmodSync(f, 0o600);
  }
  writeFileSync(join(dir, 'known_hosts'), '');
  const file = join(dir, 'maas-ha.yaml');
  const text = `cluster_name: yaml
replication: { user: replicator }
nodes:
  - { id: 0, hostname: 127.0.0.11, data_directory: /srv/pg0, control: { method: pg_ctl, log_file: /srv/pg0.log } }
  - { id: 1, hostname: 127.0.0.12, data_directory: /srv/pg1, control: { method: pg_ctl, log_file: /srv/pg1.log } }
ssh: { identity_file: ${key}, known_hosts_file: ${dir}/known_hosts }
pcp: { user: pcpadmin, pcppass_file: ${pcppass} }
`;
  writeFileSync(file, text);
  return { dir, file, text, key };
}

/** Writes the copy, then marks it so a test can tell the copy was used rather than the YAML. */
function markedCopy(file: string, text: string): void {
  mustSucceed(writeChecked(file, text, parseConfig(text, file, nodeIo)));
  const copy = JSON.parse(readFileSync(checkedPath(file), 'utf8')) as { config: { cluster_name: string } };
  copy.config.cluster_name = 'from-the-copy';
  writeFileSync(checkedPath(file), JSON.stringify(copy));
  chmodSync(checkedPath(file), 0o644);
}
const mustSucceed = (why: string | undefined): void => {
  if (why) throw new Error(why);
};

test('checked copy: the same YAML text → the copy is used (no YAML parse)', async (t) => {
  const f = fixture(t);
  markedCopy(f.file, f.text);
  t.is((await loadConfigFast(f.file)).cluster_name, 'from-the-copy');
});

test('checked copy: the YAML was edited after the check → the full loader reads the new text', async (t) => {
  const f = fixture(t);
  markedCopy(f.file, f.text);
  writeFileSync(f.file, f.text.replace('cluster_name: yaml', 'cluster_name: edited'));
  t.is((await loadConfigFast(f.file)).cluster_name, 'edited');
});

test('checked copy: a copy others may write is not trusted', async (t) => {
  const f = fixture(t);
  markedCopy(f.file, f.text);
  chmodSync(checkedPath(f.file), 0o666);
  t.is((await loadConfigFast(f.file)).cluster_name, 'yaml');
});

test('checked copy: a copy from another maas-ha build is not used', async (t) => {
  const f = fixture(t);
  markedCopy(f.file, f.text);
  const copy = JSON.parse(readFileSync(checkedPath(f.file), 'utf8')) as { build: string };
  copy.build = 'another-build';
  writeFileSync(checkedPath(f.file), JSON.stringify(copy));
  t.is((await loadConfigFast(f.file)).cluster_name, 'yaml');
});

test('checked copy: a secret file opened to the group since the check → full loader, which refuses it', async (t) => {
  const f = fixture(t);
  markedCopy(f.file, f.text);
  chmodSync(f.key, 0o640);
  const err = await t.throwsAsync(loadConfigFast(f.file), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', /ssh\.identity_file: .*\(mode 0640\); chmod 600 it/);
});

test('checked copy: no copy, or a missing file → the full loader and its own errors', async (t) => {
  const f = fixture(t);
  t.is((await loadConfigFast(f.file)).cluster_name, 'yaml');
  await t.throwsAsync(loadConfigFast(join(f.dir, 'absent.yaml')), { instanceOf: ConfigError, message: /no such file/ });
});
