// Webhook notifications (got). A JSON body with the run's timeline, plus a `text` field that Slack and
// Mattermost incoming webhooks display as is. Bounded by each target's timeout, never retried for long, and never
// thrown: nobody watches pgpool's hook exit codes, but a notification failure must not turn into a hook failure.

import { readFileSync } from 'node:fs';
import type { WebhookTarget } from '../config/types.ts';
import type { Log, Notify, NotifyEvent } from '../model/deps.ts';

export function notifyText(e: NotifyEvent): string {
  const icon = e.outcome === 'ok' ? ':white_check_mark:' : ':rotating_light:';
  return `${icon} maas-ha ${e.hook}: ${e.summary}`;
}

export function createNotify(targets: WebhookTarget[], log: Log): Notify {
  return {
    async send(event: NotifyEvent): Promise<void> {
      if (targets.length === 0) return;
      const { got } = await import('got');
      await Promise.all(
        targets.map(async (t) => {
          const started = Date.now();
          try {
            const headers: Record<string, string> = {};
            if (t.authorization_file) headers.authorization = readFileSync(t.authorization_file, 'utf8').trim();
            await got.post(t.url, {
              json: { ...event, text: notifyText(event) },
              headers,
              timeout: { request: t.timeout_ms },
              retry: { limit: 1 },
            });
            log.debug({ step: 'notify', duration_ms: Date.now() - started, outcome: 'ok', url: t.url }, 'notification sent');
          } catch (err) {
            log.warn(
              { step: 'notify', duration_ms: Date.now() - started, outcome: 'failed', url: t.url },
              `notification to ${t.url} failed: ${(err as Error).message}`,
            );
          }
        }),
      );
    },
  };
}
