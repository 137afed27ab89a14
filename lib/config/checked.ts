// The checked copy of the configuration, so that hooks start fast. A hook starts on every failover, and loading
// the YAML library alone costs about as much as starting node itself. `maas-ha config check` (and `lab up`, and
// install.sh) therefore writes what it validated beside the YAML, as `<file>.checked.json`, holding the exact
// YAML text it read. A hook uses that copy without loading the YAML parser when, and only when:
//   - the YAML text is byte-for-byte the text that was checked;
//   - the copy was written by the same maas-ha build (a newer build may read the file differently);
//   - the copy belongs to root or to the user running the hook and nobody else may write it (a copy anyone could
//     write would let them choose what a hook does);
//   - the checks the full loader makes against the filesystem, which can change after the check, still pass
//     (./files.ts, ./trust.ts): secret files, known_hosts, state_dir, the configuration file, what root runs.
// A copy someone else may have written is ignored with a note on stderr, never trusted.
// Anything else falls back to the full loader (./load.ts), which reports problems with line:col as always, so
// the copy can make a hook faster, never different.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './types.ts';
import { configFileProblems, knownHostsProblem, nodeIo, secretFileProblem, stateDirProblem, writableBy } from './files.ts';
import { nodeFacts, rootRunPaths, rootTrustProblem } from './trust.ts';

declare const __MAAS_HA_BUILD__: string | undefined;
let build: string | undefined;

/**
 * Which maas-ha wrote or reads a copy: a digest of the sources (hooks/, lib/). build.mjs computes it and bakes it
 * into the bundle; unbundled (tsx: the lab and the tests), the same digest is computed from the files, so a lab
 * started from a checkout writes copies that the hooks built from that checkout accept.
 */
export function configBuild(): string {
  if (typeof __MAAS_HA_BUILD__ === 'string') return __MAAS_HA_BUILD__;
  return (build ??= sourceDigest(resolve(dirname(fileURLToPath(import.meta.url)), '../..')));
}

/** sha256 over every .ts file below hooks/ and lib/, by relative path; build.mjs has the same function. */
export function sourceDigest(root: string): string {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
    }
  };
  walk(join(root, 'hooks'));
  walk(join(root, 'lib'));
  // node:crypto only here, where it is needed: loading it would cost every bundled hook start a few ms.
  const { createHash } = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
  const h = createHash('sha256');
  for (const f of files.map((x) => relative(root, x)).sort()) h.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

export interface CheckedCopy {
  build: string;
  text: string;
  config: Config;
}

export const checkedPath = (configFile: string) => `${configFile}.checked.json`;

/** Where a note about an ignored copy goes by default: one JSON line on stderr, like the hooks' log lines. */
const stderrNote = (msg: string) => process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), step: 'config', msg })}\n`);

/**
 * The config from the checked copy if it is still valid (see the top of this file), else undefined. A copy someone
 * else may have written is ignored, never trusted, and said so through `note`: its presence is worth a look.
 */
export function readChecked(configFile: string, text: string, note: (msg: string) => void = stderrNote): Config | undefined {
  const file = checkedPath(configFile);
  let copy: CheckedCopy;
  try {
    const st = statSync(file);
    const how = writableBy(st.mode);
    if ((st.uid !== 0 && st.uid !== process.getuid?.()) || how) {
      note(`ignoring the checked copy ${file}: it is ${how ?? `owned by uid ${st.uid}, neither root nor this user`}, so someone else may have written it; reading ${configFile} instead (chmod go-w ${file}, or let maas-ha config check replace it)`);
      return undefined;
    }
    copy = JSON.parse(readFileSync(file, 'utf8')) as CheckedCopy;
  } catch {
    return undefined;
  }
  if (copy.text !== text || copy.build !== configBuild()) return undefined;
  return filesStillFine(configFile, copy.config) ? copy.config : undefined;
}

/**
 * The full loader's filesystem checks (./files.ts, ./trust.ts) on the copy's config, since files change after a
 * check: the configuration file, state_dir, what root runs, and every `*_file` (pg_ctl's log_file is no secret).
 */
function filesStillFine(configFile: string, config: Config): boolean {
  if (configFileProblems(configFile, nodeIo).length > 0 || stateDirProblem(config.state_dir, nodeIo)) return false;
  if (rootRunPaths(config).some((r) => rootTrustProblem(r.path, nodeFacts, r.what))) return false;
  const files: [key: string, path: string][] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (typeof x === 'string' && k.endsWith('_file') && k !== 'log_file') files.push([k, x]);
        else walk(x);
      }
    }
  };
  walk(config);
  return files.every(([key, path]) => (key === 'known_hosts_file' ? knownHostsProblem(path, nodeIo) : secretFileProblem(path, nodeIo, '')) === undefined);
}

/**
 * The hooks' loader: the checked copy when it is still valid, else the full loader (loaded only then, with the
 * YAML library), which throws ConfigError listing every problem.
 */
export async function loadConfigFast(configFile: string, note?: (msg: string) => void): Promise<Config> {
  let text: string | undefined;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch {
    // the full loader says why, in its words
  }
  const copy = text === undefined ? undefined : readChecked(configFile, text, note);
  if (copy) return copy;
  const { loadConfig } = await import('./load.ts');
  return loadConfig(configFile);
}
