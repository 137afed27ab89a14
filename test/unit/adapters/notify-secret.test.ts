// A Slack/Mattermost incoming-webhook URL is a credential (its path is the token). The notifier must log only the
// host, the URL can live in a mode-0600 `url_file`, and the checked copy of the configuration (which holds the
// whole YAML) must not be readable by others. Real pieces throughout: a local HTTP server on 127.0.0.1, the pino
// logger writing to a captured stream, the real loader, the real checked-copy writer.

import test from 'ava';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLog } from '../../../lib/adapters/log.ts';
import { createNotify } from '../../../lib/adapters/notify.ts';
import { checkedPath, loadConfigFast } from '../../../lib/config/checked.ts';
import { writeChecked } from '../../../lib/adapters/checked-copy.ts';
import { loadConfig, nodeIo, parseConfig } from '../../../lib/config/load.ts';
import type { WebhookTarget } from '../../../lib/config/types.ts';
import { ConfigError } from '../../../lib/errors.ts';
import type { NotifyEvent } from '../../../lib/model/ports.ts';

const TOKEN = 'T0KEN-b7e1f2c9d4a8';
const QUERY_TOKEN = 'q-SECRET-55aa';
const event: NotifyEvent = { hook: 'failover', run_id: 'r1', outcome: 'failed', summary: 'node 0 lost', timeline: [] };

/** A webhook receiver on 127.0.0.1 answering `status`; records the bodies it got. */
async function receiver(t: { teardown(f: () => void): void }, status: number): Promise<{ base: string; host: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      bodies.push(body);
      res.writeHead(status).end(status === 200 ? 'ok' : `no such hook ${req.url}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base: `http://${host}`, host, bodies };
}

/** The real logger at debug level, writing its JSON lines into an array. */
function capturedLog(): { lines: string[]; log: ReturnType<typeof createLog> } {
  const lines: string[] = [];
  return { lines, log: createLog('failover', 'r1', 'debug', { write: (s: string) => void lines.push(s) }) };
}

test('notify: a webhook URL with its token in the path and query → the log names the host, never the token', async (t) => {
  const ok = await receiver(t, 200);
  const failing = await receiver(t, 404);
  const { lines, log } = capturedLog();
  const targets: WebhookTarget[] = [
    { url: `${ok.base}/hooks/${TOKEN}?token=${QUERY_TOKEN}`, timeout_ms: 3000 },
    { url: `${failing.base}/hooks/${TOKEN}?token=${QUERY_TOKEN}`, timeout_ms: 3000 },
    { url: `http://127.0.0.1:1/hooks/${TOKEN}?token=${QUERY_TOKEN}`, timeout_ms: 3000 },
  ];
  await createNotify(targets, log).send(event);
  t.is(ok.bodies.length, 1, 'the notification was delivered');
  const text = lines.join('');
  t.true(text.includes(`notification sent to ${ok.host}`), text);
  t.true(text.includes(`notification to ${failing.host} failed`), text);
  t.true(text.includes('notification to 127.0.0.1:1 failed'), text);
  t.false(text.includes(TOKEN), text);
  t.false(text.includes(QUERY_TOKEN), text);
  t.false(text.includes('/hooks/'), text);
});

/** A minimal valid configuration in a fresh directory; `notify` is the YAML of the notify section. */
function configFixture(t: { teardown(f: () => void): void }, notify: (dir: string) => string) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const f of ['id_maas_ha', 'pcppass']) writeFileSync(join(dir, f), 'x\n', { mode: 0o600 });
  writeFileSync(join(dir, 'known_hosts'), '');
  const file = join(dir, 'maas-ha.yaml');
  const text = `cluster_name: notify
replication: { user: replicator }
nodes:
  - { id: 0, hostname: 127.0.0.11, data_directory: /srv/pg0, control: { method: pg_ctl, log_file: /srv/pg0.log } }
  - { id: 1, hostname: 127.0.0.12, data_directory: /srv/pg1, control: { method: pg_ctl, log_file: /srv/pg1.log } }
ssh: { identity_file: ${dir}/id_maas_ha, known_hosts_file: ${dir}/known_hosts }
pcp: { user: pcpadmin, pcppass_file: ${dir}/pcppass }
${notify(dir)}`;
  writeFileSync(file, text, { mode: 0o644 });
  return { dir, file, text };
}

test('notify: url_file → the configuration loads, the hook notifies the URL in the file, the copy never holds it', async (t) => {
  const hook = await receiver(t, 200);
  const f = configFixture(t, (dir) => `notify:\n  webhooks:\n    - url_file: ${dir}/webhook.url\n      timeout_ms: 3000\n`);
  writeFileSync(join(f.dir, 'webhook.url'), `${hook.base}/hooks/${TOKEN}\n`, { mode: 0o600 });
  const config = loadConfig(f.file);
  t.deepEqual(config.notify.webhooks, [{ url_file: join(f.dir, 'webhook.url'), timeout_ms: 3000 }]);
  t.is(writeChecked(f.file, f.text, config), undefined);
  t.false(readFileSync(checkedPath(f.file), 'utf8').includes(TOKEN), 'the checked copy holds the path, not the URL');
  const { lines, log } = capturedLog();
  await createNotify((await loadConfigFast(f.file)).notify.webhooks, log).send(event);
  t.is(hook.bodies.length, 1);
  t.like(JSON.parse(hook.bodies[0]!), { hook: 'failover', summary: 'node 0 lost' });
  t.true(lines.join('').includes(`notification sent to ${hook.host}`));
  t.false(lines.join('').includes(TOKEN));
});

test('notify: url_file that others can read → config error naming the path, like every secret file', (t) => {
  const f = configFixture(t, (dir) => `notify:\n  webhooks:\n    - url_file: ${dir}/webhook.url\n`);
  writeFileSync(join(f.dir, 'webhook.url'), 'http://127.0.0.1:9/x\n', { mode: 0o644 });
  chmodSync(join(f.dir, 'webhook.url'), 0o644);
  const err = t.throws(() => loadConfig(f.file), { instanceOf: ConfigError });
  t.regex(err?.message ?? '', /notify\.webhooks\[0\]\.url_file: .*webhook\.url is readable by group or others \(mode 0644\); chmod 600 it/);
});

test('notify: url and url_file together, or neither → config error naming the webhook', (t) => {
  const both = configFixture(t, (dir) => `notify:\n  webhooks:\n    - url: https://chat.example/hooks/x\n      url_file: ${dir}/webhook.url\n`);
  writeFileSync(join(both.dir, 'webhook.url'), 'https://chat.example/hooks/y\n', { mode: 0o600 });
  t.throws(() => loadConfig(both.file), { instanceOf: ConfigError, message: /notify\.webhooks\[0\]: give url or url_file, not both \(\d+:\d+\)/ });
  const neither = configFixture(t, () => `notify:\n  webhooks:\n    - timeout_ms: 1000\n`);
  t.throws(() => loadConfig(neither.file), { instanceOf: ConfigError, message: /notify\.webhooks\[0\]: needs url_file .* or url \(\d+:\d+\)/ });
});

test('checked copy: written 0600 (it holds the whole YAML), and an existing 0644 copy is replaced, not reused', (t) => {
  const f = configFixture(t, () => `notify:\n  webhooks:\n    - url: https://chat.example/hooks/${TOKEN}\n`);
  const config = parseConfig(f.text, f.file, nodeIo);
  const copy = checkedPath(f.file);
  t.is(writeChecked(f.file, f.text, config), undefined);
  t.is(statSync(copy).mode & 0o777, 0o600);
  // An older maas-ha left the same content world-readable: the permissions are part of "unchanged".
  chmodSync(copy, 0o644);
  const before = statSync(copy).ino;
  t.is(writeChecked(f.file, f.text, config), undefined);
  t.is(statSync(copy).mode & 0o777, 0o600);
  t.not(statSync(copy).ino, before, 'a new file was renamed into place');
  // A YAML deliberately shared with a group (root:nogroup 0640, so the hooks' user can read it) → the copy too.
  chownSync(f.file, 0, 65534);
  chmodSync(f.file, 0o640);
  t.is(writeChecked(f.file, f.text, config), undefined);
  t.is(statSync(copy).mode & 0o777, 0o640);
  t.is(statSync(copy).gid, 65534);
});
