// The import rules of docs/architecture.md ("What may import what"), checked on the tree: every static and dynamic
// import of hooks/ and lib/, resolved to a file, against the floors. A new upward import fails here with the file,
// the import and the rule it breaks.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '../..');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

interface Edge {
  from: string;
  /** A repository path for our own modules, else the specifier (a package or node:*). */
  to: string;
  /** What is imported, as written between import and from (empty for a dynamic import). */
  what: string;
}

const edges: Edge[] = [...sources('hooks'), ...sources('lib')].flatMap((from) => {
  const text = readFileSync(join(ROOT, from), 'utf8');
  const found = [
    ...[...text.matchAll(/(?:^|\n)\s*(?:import|export)\s([^;]*?)\sfrom\s+'([^']+)'/g)].map((m) => ({ what: m[1]!.trim(), spec: m[2]! })),
    ...[...text.matchAll(/\bimport\(\s*'([^']+)'\s*\)/g)].map((m) => ({ what: '', spec: m[1]! })),
  ];
  return found.map(({ what, spec }) => ({ from, what, to: spec.startsWith('.') ? normalize(relative(ROOT, join(ROOT, dirname(from), spec))) : spec }));
});

const own = (e: Edge) => e.to.startsWith('lib/') || e.to.startsWith('hooks/');
const isBottom = (f: string) => f.startsWith('lib/model/') || f.startsWith('lib/config/') || f === 'lib/errors.ts';
const isAdapter = (f: string) => f.startsWith('lib/adapters/');
const isShell = (f: string) => f === 'lib/hook.ts' || f.startsWith('lib/cli/') || f === 'lib/guard/cli.ts';
const isLab = (f: string) => f.startsWith('lib/lab/');
/** What does I/O: only adapters (and, by the documented exceptions, shells, the labs and the guard's file adapter). */
const IO = /^(zx|zx\/.*|pg|got|pino|prom-client|node:fs|node:child_process|node:net|node:dgram)$/;

function breaches(rule: (e: Edge) => boolean): string[] {
  return edges.filter(rule).map((e) => `${e.from} imports ${e.to}`);
}

test('architecture: the imports were found (the rules below are not vacuous)', (t) => {
  t.true(edges.length > 400, `only ${edges.length} imports found`);
  t.true(edges.some((e) => e.from === 'lib/wiring.ts' && e.to === 'lib/adapters/ssh.ts'));
  t.true(edges.some((e) => e.from === 'lib/config/checked.ts' && e.to === 'lib/config/load.ts'), 'a dynamic import counts');
});

test('architecture: the bottom (lib/model, lib/config, lib/errors.ts) imports nothing of ours above it', (t) => {
  t.deepEqual(breaches((e) => isBottom(e.from) && own(e) && !isBottom(e.to)), []);
});

test('architecture: an adapter imports the bottom, other adapters and the pure helpers it parses with, never a use case', (t) => {
  const pure = new Set(['lib/shquote.ts', 'lib/pgpool/pcp-output.ts']);
  t.deepEqual(breaches((e) => isAdapter(e.from) && own(e) && !isBottom(e.to) && !isAdapter(e.to) && !pure.has(e.to)), []);
});

test('architecture: only the shells and the labs build the real effects (lib/wiring.ts)', (t) => {
  t.deepEqual(breaches((e) => e.to === 'lib/wiring.ts' && !isShell(e.from) && !isLab(e.from)), []);
});

test('architecture: nothing below the CLI imports it, and no hook bundle reaches into it except maas-ha itself', (t) => {
  t.deepEqual(breaches((e) => e.to.startsWith('lib/cli/') && !e.from.startsWith('lib/cli/') && e.from !== 'hooks/maas-ha.ts'), []);
});

test('architecture: a hook file imports no adapter and no wiring: its effects come through runHook', (t) => {
  t.deepEqual(breaches((e) => e.from.startsWith('hooks/') && (isAdapter(e.to) || e.to === 'lib/wiring.ts')), []);
});

test('architecture: use cases and plans do no I/O of their own: no zx, pg, got, pino, node:fs, node:child_process, sockets', (t) => {
  // The documented exceptions (docs/architecture.md): the guard's own file adapter, and the config loader's reads.
  const allowed = (f: string) => isAdapter(f) || isShell(f) || isLab(f) || isBottom(f) || f === 'lib/wiring.ts' || f === 'lib/guard/files.ts';
  // node:net's address parsers are pure functions, not sockets.
  const pure = (e: Edge) => e.to === 'node:net' && /^\{\s*(isIP|isIPv4|isIPv6)(\s*,\s*(isIP|isIPv4|isIPv6))*\s*\}$/.test(e.what);
  t.deepEqual(breaches((e) => !allowed(e.from) && e.from.startsWith('lib/') && IO.test(e.to) && !pure(e)), []);
});

test('architecture: a use case reaches adapters only through Deps, except the documented host-file writers of lib/maas', (t) => {
  const allowed = (f: string) => isAdapter(f) || isShell(f) || isLab(f) || f === 'lib/wiring.ts' || f === 'lib/maas/install.ts' || f === 'lib/maas/rack-run.ts';
  t.deepEqual(breaches((e) => e.from.startsWith('lib/') && !allowed(e.from) && isAdapter(e.to)), []);
});
