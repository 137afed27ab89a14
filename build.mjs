// Bundles every hook and the CLI into self-contained ES modules under dist/bin: a database host needs `node`
// (>= 20) and this directory, nothing else. Heavy libraries (pg, zx, got) are split into chunks that are loaded
// only when a hook really needs them, so a hook's no-op path starts nearly as fast as `node -e 0`.
import { build } from 'esbuild';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative } from 'node:path';

/** sha256 over every .ts below hooks/ and lib/: the build stamp of checked config copies (lib/config/checked.ts
 *  computes the same digest when run unbundled). */
function sourceDigest(root) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
    }
  };
  walk(join(root, 'hooks'));
  walk(join(root, 'lib'));
  const h = createHash('sha256');
  for (const f of files.map((x) => relative(root, x)).sort()) h.update(`${f}\0`).update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex').slice(0, 16);
}

// Built beside dist/bin and swapped in at the end, so a lab or a test running dist/bin never sees it half-written.
const final = 'dist/bin';
const out = `dist/bin.new-${process.pid}`;
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const entries = readdirSync('hooks')
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ in: join('hooks', f), out: f.replace(/\.ts$/, '') }));

// pino's transports run in worker threads (thread-stream); maas-ha never uses one (its logs are synchronous writes
// to stderr: lib/adapters/log.ts), so the worker machinery is left out of the bundle. Loading it cost every hook
// start a few milliseconds; configuring a transport now throws at once instead of silently doing something else.
const noPinoTransports = {
  name: 'no-pino-transports',
  setup(b) {
    b.onResolve({ filter: /^thread-stream$/ }, () => ({ path: 'thread-stream', namespace: 'maas-ha-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'maas-ha-stub' }, () => ({
      contents: "module.exports = function ThreadStream() { throw new Error('maas-ha bundles no pino transports: log to a destination stream'); };",
      loader: 'js',
    }));
  },
};

await build({
  entryPoints: entries,
  plugins: [noPinoTransports],
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
  define: {
    __MAAS_HA_BUILD__: JSON.stringify(sourceDigest('.')),
    // `maas-ha --version`: the bundle cannot read package.json (dist/bin/package.json only says "type": "module").
    __MAAS_HA_VERSION__: JSON.stringify(JSON.parse(readFileSync('package.json', 'utf8')).version),
  },
  banner: {
    // The entries are the executables (see below), hence the shebang; a hashbang line is valid in any module.
    // Some bundled CommonJS code calls require(); give ESM bundles one.
    js: "#!/usr/bin/env node\nimport { createRequire as __maasHaCreateRequire } from 'node:module'; const require = __maasHaCreateRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
});

// Executables without extension, so pgpool.conf names `maas-ha-failover`: a relative symlink to the entry. Node
// loads a symlinked main module by its real path, so it runs as the ES module it is, with no launcher process or
// CommonJS hop in between (start-up time is part of every failover).
for (const e of entries) {
  chmodSync(join(out, `${e.out}.mjs`), 0o755);
  symlinkSync(`${e.out}.mjs`, join(out, e.out));
}
writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'module' }) + '\n');
const old = `dist/bin.old-${process.pid}`;
if (existsSync(final)) renameSync(final, old);
renameSync(out, final);
rmSync(old, { recursive: true, force: true });
// install.sh rebuilds only when a source is newer than this stamp.
writeFileSync('dist/.built', `${new Date().toISOString()}\n`);
console.log(`built ${entries.length} executables in ${final}: ${entries.map((e) => e.out).join(', ')}`);
