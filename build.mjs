// Bundles every hook and the CLI into self-contained ES modules under dist/bin: a database host needs `node`
// (>= 20) and this directory, nothing else. Heavy libraries (pg, zx, got) are split into chunks that are loaded
// only when a hook really needs them, so a hook's no-op path starts nearly as fast as `node -e 0`.
import { build } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Built beside dist/bin and swapped in at the end, so a lab or a test running dist/bin never sees it half-written.
const final = 'dist/bin';
const out = `dist/bin.new-${process.pid}`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const entries = readdirSync('hooks')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ in: join('hooks', f), out: f.replace(/\.ts$/, '') }));

await build({
  entryPoints: entries,
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunks/[name]-[hash]',
  // pg tries `require('pg-native')` only when asked for the native driver; we never ask.
  external: ['pg-native'],
  banner: {
    // Some bundled CommonJS code calls require(); give ESM bundles one.
    js: "import { createRequire as __maasHaCreateRequire } from 'node:module'; const require = __maasHaCreateRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});

// Executables without extension: a two-line launcher per entry, so pgpool.conf names `maas-ha-failover`.
for (const e of entries) {
  const launcher = join(out, e.out);
  // CommonJS (see package.json below), so it runs from any directory, through a symlink too.
  writeFileSync(
    launcher,
    `#!/usr/bin/env node\n'use strict';\nimport(require('node:url').pathToFileURL(require('node:path').join(__dirname, '${e.out}.mjs')).href);\n`,
  );
  chmodSync(launcher, 0o755);
}
writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n');
const old = `dist/bin.old-${process.pid}`;
if (existsSync(final)) renameSync(final, old);
renameSync(out, final);
rmSync(old, { recursive: true, force: true });
// install.sh rebuilds only when a source is newer than this stamp.
writeFileSync('dist/.built', `${new Date().toISOString()}\n`);
console.log(`built ${entries.length} executables in ${final}: ${entries.map((e) => e.out).join(', ')}`);
