// Installing a rendered configuration and proving it loads: write atomically, run the checker (named-checkconf)
// with a timeout, and on failure put the previous file back (or remove the new one), so a bad render never stays
// in place for the next restart of the server to trip over. Effects through the Shell and HostFiles seams.

import type { HostFiles } from '../adapters/host-files.ts';
import type { Shell } from '../model/ports.ts';
import { OperationError } from '../errors.ts';
import { failure } from '../vip/host.ts';

export interface InstallResult {
  outcome: 'written' | 'unchanged';
  /** What the checker said (first line), or "not run" for an unchanged file. */
  check: string;
}

export async function installChecked(
  deps: { shell: Shell; files: HostFiles },
  path: string,
  text: string,
  opts: { mode: number; check: (path: string) => string[]; timeoutMs?: number },
): Promise<InstallResult> {
  const before = deps.files.read(path);
  const outcome = deps.files.write(path, text, { mode: opts.mode, ...(before ? { owner: { uid: before.uid, gid: before.gid } } : {}) });
  const r = await deps.shell.run(opts.check(path), { timeoutMs: opts.timeoutMs ?? 10_000 });
  if (r.exitCode === 0) return { outcome, check: `${opts.check(path)[0]} accepts it` };
  // Put back what was there: the server must find a configuration it can load at its next start.
  if (before) deps.files.write(path, before.text, { mode: before.mode, owner: { uid: before.uid, gid: before.gid } });
  else deps.files.remove(path);
  // named-checkconf says what is wrong on stdout and stderr, line by line: keep every line (a few at most).
  const said = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean).slice(0, 6).join(' | ');
  const why = r.timedOut || r.exitCode === 126 || r.exitCode === 127 || !said ? failure(r) : said;
  throw new OperationError(`${opts.check(path)[0]} rejects the new ${path} (${why}); ${before ? 'the previous file is back in place' : 'it was removed again'}`);
}
