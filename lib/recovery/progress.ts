// Progress of a base backup for the person running `maas-ha recover`. The copy runs on the target's host, either
// in our own ssh session or inside the primary's backend (pcp_recovery_node), where the CLI cannot see it; both
// write pg_basebackup's `--progress` lines to `<data_directory>.maas-ha-basebackup.log` and build the copy in
// `<data_directory>.maas-ha-new`, so one poller over ssh serves both. Parsing and rendering are pure.

import type { NodeConfig } from '../config/types.ts';
import type { Deps } from '../model/ports.ts';
import { formatBytes } from '../model/lsn.ts';
import { shScript } from '../pgctl.ts';
import { PROGRESS_SCRIPT } from './scripts.ts';

export interface ProgressSample {
  /** Bytes copied so far. */
  done: number;
  /** Bytes expected in all (pg_basebackup's estimate, else the primary's size). */
  total: number;
}

/** pg_basebackup --progress: `  12345/67890 kB (18%), 0/1 tablespace (...)`; the last such line, or undefined. */
export function parseBasebackupProgress(text: string): ProgressSample | undefined {
  const all = [...text.matchAll(/(\d+)\/(\d+) kB \(\d+%\)/g)];
  const m = all[all.length - 1];
  return m ? { done: Number(m[1]) * 1024, total: Number(m[2]) * 1024 } : undefined;
}

/** What PROGRESS_SCRIPT printed: undefined when no copy is under way. */
export function parseProgressProbe(stdout: string, estimateBytes: number): ProgressSample | undefined {
  const kb = /^new_kb=(\d+)$/m.exec(stdout)?.[1];
  if (kb === undefined) return undefined;
  const reported = parseBasebackupProgress(/^progress=(.*)$/m.exec(stdout)?.[1] ?? '');
  if (reported && reported.total > 0) return reported;
  // Until pg_basebackup reports, the size of the copy without its pre-sized WAL segments, and never "done":
  // only pg_basebackup knows when it is.
  const copied = Math.max(0, Number(kb) - Number(/^wal_kb=(\d+)$/m.exec(stdout)?.[1] ?? 0)) * 1024;
  return { done: Math.min(copied, Math.floor(estimateBytes * 0.99)), total: estimateBytes };
}

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** One line: bar, percent, bytes, throughput, ETA. */
export function renderProgress(p: ProgressSample, rateBytesPerS: number | undefined, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const filled = Math.round(frac * width);
  const eta = rateBytesPerS && rateBytesPerS > 0 && p.done < p.total ? formatSeconds((p.total - p.done) / rateBytesPerS) : '-';
  return (
    `  base backup [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(frac * 100)).padStart(3)}%  ` +
    `${formatBytes(p.done)} / ${formatBytes(p.total)}  ${rateBytesPerS && rateBytesPerS > 0 ? `${formatBytes(rateBytesPerS)}/s` : '-'}  ETA ${eta}`
  );
}

/**
 * Prints progress lines: redrawn in place on a terminal, at most every 10% or 10 s otherwise (logs, CI).
 * Throughput is measured from the first sample seen, so time spent before the copy began does not count.
 */
export class ProgressPrinter {
  private first: { at: number; done: number } | undefined;
  private lastPct = -10;
  private lastAt = 0;
  private drawn = false;
  constructor(
    private readonly write: (text: string) => void,
    private readonly tty: boolean,
  ) {}

  update(p: ProgressSample, nowMs: number): void {
    this.first ??= { at: nowMs, done: p.done };
    const seconds = (nowMs - this.first.at) / 1000;
    const rate = seconds > 0 ? (p.done - this.first.done) / seconds : undefined;
    const line = renderProgress(p, rate);
    if (this.tty) {
      this.write(`\r${line}\x1b[K`);
      this.drawn = true;
      return;
    }
    const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 0;
    if (pct >= this.lastPct + 10 || nowMs - this.lastAt >= 10_000) {
      this.write(`${line}\n`);
      this.lastPct = pct;
      this.lastAt = nowMs;
    }
  }

  /** Ends the redrawn line, so what follows starts on its own. */
  finish(): void {
    if (this.tty && this.drawn) this.write('\n');
    this.drawn = false;
  }
}

/**
 * Polls the target's copy once a second until stopped. Failures of a single poll are ignored (a slow ssh round
 * trip must not end a recovery); each poll is bounded.
 */
export function pollBasebackup(deps: Pick<Deps, 'ssh' | 'config'>, node: NodeConfig, estimateBytes: number, onSample: (p: ProgressSample) => void, everyMs = 1000) {
  let stopped = false;
  // The pause between polls is cut short by stop(): the closing line must not wait for the next poll.
  let wake: (() => void) | undefined;
  const pause = () =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, everyMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const loop = (async () => {
    while (!stopped) {
      const r = await deps.ssh
        .run(node.ssh_host, shScript(PROGRESS_SCRIPT, node.data_directory, '4'), { timeoutMs: deps.config.ssh.connect_timeout_s * 1000 + 5000 })
        .catch(() => undefined);
      const sample = r && r.exitCode === 0 ? parseProgressProbe(r.stdout, estimateBytes) : undefined;
      if (sample && !stopped) onSample(sample);
      if (!stopped) await pause();
    }
  })();
  return {
    /** Stops polling; resolves once a poll in flight (one bounded ssh round trip) has ended. */
    async stop(): Promise<void> {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
