// Which configuration files belong to the node because its own configuration includes them from its data
// directory. pg_rewind and pg_basebackup copy every file of the primary's data directory, a `node.conf` holding the
// node's port included, so a rebuild that kept only postgresql.conf & co. started the node with the primary's port
// ("Address already in use"). The facts script (./scripts.ts) reports the include lines of the node's
// configuration files; this decides, purely, which paths inside the data directory the rebuild must keep.

import { posix } from 'node:path';

export type IncludeDirective = 'include' | 'include_if_exists' | 'include_dir';

/**
 * One `include`, `include_if_exists` or `include_dir` line, as PostgreSQL's configuration lexer reads it
 * (guc-file.l): `name [=] value`, the value a '…' string (a quote doubled or backslashed inside) or a bare word,
 * `#` starting a comment. Directive names are case-insensitive like every setting name.
 */
export function parseIncludeDirective(line: string): { directive: IncludeDirective; path: string } | undefined {
  const m = /^\s*(include_if_exists|include_dir|include)\s*(?:=\s*)?(?:'((?:[^'\\]|\\.|'')*)'|([^\s'#=]+))\s*(?:#.*)?$/i.exec(line);
  if (!m) return undefined;
  const path = m[2] !== undefined ? m[2].replace(/''/g, "'").replace(/\\(.)/g, '$1') : m[3]!;
  if (path === '') return undefined;
  return { directive: m[1]!.toLowerCase() as IncludeDirective, path };
}

/** A line of a configuration file that names another, as the facts script reports it. */
export interface ConfIncludeLine {
  file: string;
  line: string;
}

/** A path inside the data directory that holds the node's own configuration: a file, or the `*.conf` files of a directory. */
export interface OwnConfPath {
  kind: 'file' | 'dir';
  /** Relative to the data directory, normalised, never `..`. */
  rel: string;
}

/** Already kept by name in every rebuild (./scripts.ts PRESERVE). */
const ALWAYS_KEPT = new Set(['postgresql.conf', 'pg_hba.conf', 'pg_ident.conf', 'postgresql.auto.conf']);

/**
 * Every path inside `dataDir` that the node's configuration includes, following includes of included files.
 * Starts from the main configuration file (`mainConf`, which may live outside the data directory, as on Debian) and
 * postgresql.auto.conf; a relative path is relative to the directory of the file that names it (PostgreSQL's rule).
 * Files outside the data directory are not touched by a rebuild and need no keeping.
 */
export function ownIncludedConf(dataDir: string, mainConf: string, lines: readonly ConfIncludeLine[]): OwnConfPath[] {
  const root = posix.normalize(dataDir).replace(/\/+$/, '');
  const byFile = new Map<string, string[]>();
  for (const l of lines) {
    const f = posix.normalize(l.file);
    const list = byFile.get(f) ?? [];
    if (!list.includes(l.line)) list.push(l.line);
    byFile.set(f, list);
  }
  const inside = (abs: string) => (abs.startsWith(`${root}/`) ? abs.slice(root.length + 1) : abs === root ? '.' : undefined);
  const out = new Map<string, OwnConfPath>();
  const seen = new Set<string>();
  const queue = [posix.normalize(mainConf), `${root}/postgresql.auto.conf`];
  while (queue.length) {
    const file = queue.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const text of byFile.get(file) ?? []) {
      const d = parseIncludeDirective(text);
      if (!d) continue;
      const abs = posix.normalize(d.path.startsWith('/') ? d.path : posix.join(posix.dirname(file), d.path)).replace(/(.)\/+$/, '$1');
      const rel = inside(abs);
      if (d.directive === 'include_dir') {
        if (rel !== undefined) out.set(`dir:${rel}`, { kind: 'dir', rel });
        // PostgreSQL reads the directory's *.conf files: follow the ones whose include lines were reported.
        for (const f of byFile.keys()) if (posix.dirname(f) === abs && f.endsWith('.conf')) queue.push(f);
      } else {
        if (rel !== undefined && rel !== '.' && !ALWAYS_KEPT.has(rel)) out.set(`file:${rel}`, { kind: 'file', rel });
        queue.push(abs);
      }
    }
  }
  return [...out.values()];
}

/** As the rebuild scripts take them (`f:REL`, `d:REL`). */
export const ownConfArg = (p: OwnConfPath) => `${p.kind === 'file' ? 'f' : 'd'}:${p.rel}`;
