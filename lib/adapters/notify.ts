// Webhook notifications (got). A JSON body with the run's timeline, plus a `text` field that Slack and
// Mattermost incoming webhooks display as is. Bounded by each target's timeout, never retried for long, and never
// thrown: nobody watches pgpool's hook exit codes, but a notification failure must not turn into a hook failure.
//
// A Slack or Mattermost incoming-webhook URL is itself the credential (the token is its path), so it is read from
// `url_file` when notifying (kept out of the configuration and of its checked copy), and logs name only its host:
// never the path or the query, not even inside an error message.

import { readFileSync } from 'node:fs';
import type { WebhookTarget } from '../config/types.ts';
import type { Log, Notify, NotifyEvent } from '../model/ports.ts';

export function notifyText(e: NotifyEvent): string {
  const icon = e.outcome === 'ok' ? ':white_check_mark:' : ':rotating_light:';
  return `${icon} maas-ha ${e.hook}: ${e.summary}`;
}

/** The URL's host (host:port), the only part of a webhook URL that may be logged. */
export function webhookHost(url: string): string {
  try {
    return new URL(url).host || '(no host)';
  } catch {
    return '(not a URL)';
  }
}

/** `text` with the URL, its path and its query replaced by the host, for error messages that may quote them. */
function redact(text: string, url: string): string {
  let out = text;
  try {
    const u = new URL(url);
    for (const secret of [url, u.href, `${u.pathname}${u.search}`, u.search.slice(1), u.pathname]) {
      if (secret.length > 1) out = out.split(secret).join(secret === url || secret === u.href ? u.host : '…');
    }
  } catch {
    out = out.split(url).join('(webhook URL)');
  }
  return out;
}

export function createNotify(targets: WebhookTarget[], log: Log): Notify {
  return {
    async send(event: NotifyEvent): Promise<void> {
      if (targets.length === 0) return;
      const { got } = await import('got');
      await Promise.all(
        targets.map(async (t) => {
          const started = Date.now();
          let url = t.url ?? '';
          let target = t.url_file ? `the webhook in ${t.url_file}` : webhookHost(url);
          try {
            if (t.url_file) {
              url = readFileSync(t.url_file, 'utf8').trim();
              if (!/^https?:\/\//.test(url)) throw new Error(`${t.url_file} does not hold an http:// or https:// URL`);
              target = webhookHost(url);
            }
            const headers: Record<string, string> = {};
            if (t.authorization_file) headers.authorization = readFileSync(t.authorization_file, 'utf8').trim();
            await got.post(url, {
              json: { ...event, text: notifyText(event) },
              headers,
              timeout: { request: t.timeout_ms },
              retry: { limit: 1 },
            });
            log.debug({ step: 'notify', duration_ms: Date.now() - started, outcome: 'ok', webhook: target }, `notification sent to ${target}`);
          } catch (err) {
            const why = url ? redact((err as Error).message, url) : (err as Error).message;
            log.warn({ step: 'notify', duration_ms: Date.now() - started, outcome: 'failed', webhook: target }, `notification to ${target} failed: ${why}`);
          }
        }),
      );
    },
  };
}
