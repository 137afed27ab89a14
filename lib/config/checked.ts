// The checked copy of the configuration, so that hooks start fast. A hook starts on every failover, and loading
// the YAML library alone costs about as much as starting node itself. `maas-ha config check` (and `lab up`, and
// install.sh) therefore writes what it validated beside the YAML, as `<file>.checked.json`, holding the exact
// YAML text it read. A hook uses that copy without loading the YAML parser when, and only when:
//   - the YAML text is byte-for-byte the text that was checked;
//   - the copy was written by the same maas-ha build (a newer build may read the file differently);
//   - the copy belongs to root or to the user running the hook and nobody else may write it (a copy anyone could
//     write would let them choose what a hook does);
//   - every secret file (`*_file` keys) still is a regular file closed to group and others, and the known_hosts
//     file still exists: the checks the full loader makes against the filesystem, which can change after the check.
// Anything else falls back to the full loader (./load.ts), which reports problems with line:col as always, so
// the copy can make a hook faster, never different.

import { readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config } from './types.ts';

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

interface CheckedCopy {
  build: string;
  text: string;
  config: Config;
}

export const checkedPath = (configFile: string) => `${configFile}.checked.json`;

/** Writes the checked copy next to the configuration file; returns why it could not, or undefined. */
export function writeChecked(configFile: string, text: string, config: Config): string | undefined {
  const file = checkedPath(configFile);
  const tmp = `${file}.tmp-${process.pid}`;
  const content = `${JSON.stringify({ build: configBuild(), text, config } satisfies CheckedCopy)}\n`;
  try {
    // An identical copy is left alone: running the installer twice changes nothing.
    if (readFileSync(file, 'utf8') === content) return undefined;
  } catch {
    // no copy yet
  }
  try {
    writeFileSync(tmp, content, { mode: 0o644 });
    renameSync(tmp, file);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The config from the checked copy if it is still valid (see the top of this file), else undefined. */
export function readChecked(configFile: string, text: string): Config | undefined {
  const file = checkedPath(configFile);
  let copy: CheckedCopy;
  try {
    const st = statSync(file);
    if ((st.uid !== 0 && st.uid !== process.getuid?.()) || (st.mode & 0o022) !== 0) return undefined;
    copy = JSON.parse(readFileSync(file, 'utf8')) as CheckedCopy;
  } catch {
    return undefined;
  }
  if (copy.text !== text || copy.build !== configBuild()) return undefined;
  return filesStillFine(copy.config) ? copy.config : undefined;
}

/** Every `*_file` value: secrets must stay private regular files; known_hosts must exist. pg_ctl's log_file is no secret. */
function filesStillFine(config: Config): boolean {
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
  return files.every(([key, path]) => {
    try {
      const st = statSync(path);
      return st.isFile() && (key === 'known_hosts_file' || (st.mode & 0o077) === 0);
    } catch {
      return false;
    }
  });
}

/**
 * The hooks' loader: the checked copy when it is still valid, else the full loader (loaded only then, with the
 * YAML library), which throws ConfigError listing every problem.
 */
export async function loadConfigFast(configFile: string): Promise<Config> {
  let text: string | undefined;
  try {
    text = readFileSync(configFile, 'utf8');
  } catch {
    // the full loader says why, in its words
  }
  const copy = text === undefined ? undefined : readChecked(configFile, text);
  if (copy) return copy;
  const { loadConfig } = await import('./load.ts');
  return loadConfig(configFile);
}
