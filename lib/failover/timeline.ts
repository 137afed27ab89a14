// The record of one run, event by event, for the log, the webhook and `lab drill`.

import type { Clock } from '../model/ports.ts';

export interface TimelineEvent {
  at: string;
  /** Seconds since the run started. */
  t: number;
  event: string;
  [key: string]: unknown;
}

export class Timeline {
  readonly events: TimelineEvent[] = [];
  private readonly started: number;
  constructor(private readonly clock: Clock) {
    this.started = clock.now();
  }
  add(event: string, fields: Record<string, unknown> = {}): void {
    const now = this.clock.now();
    this.events.push({ at: new Date(now).toISOString(), t: Number(((now - this.started) / 1000).toFixed(3)), event, ...fields });
  }
}
