// A tiny declarative schema for maas-ha.yaml, walked over `yaml`'s node tree (not over plain JS values) so that
// every problem can say where it is: `nodes[1].port: must be an integer from 1 to 65535, got "abc" (12:11)`.
// A walk never stops at the first problem: each spec records what is wrong and carries on, and the loader throws
// once with the whole list. Unknown keys are problems too: pgpool silently ignores parameters it does not know,
// and a misspelt `identity_fle` quietly falling back to a default is exactly the failure this file exists to stop.
//
// Only ./load.ts uses this. Filesystem checks (secret file modes) go through the `ConfigIo` seam so tests can fake
// the files.

import { isAlias, isMap, isScalar, isSeq, YAMLMap, type Document, type LineCounter, type Node } from 'yaml';
import type { FsFacts } from './trust.ts';

/** The filesystem as the loader sees it. */
export interface ConfigIo {
  readFile(path: string): string;
  /** undefined when the path does not exist. `stat` follows symlinks, as libpq and ssh do. */
  stat(path: string): { mode: number; isFile: boolean } | undefined;
  /** Owner, mode and link text of the path itself (./trust.ts). nodeIo has it; a fake without it skips the checks of
   *  ownership and symlinks (who may change what root runs, symlinked secrets), never the checks of modes. */
  lstat?: FsFacts;
  /** The uid maas-ha runs as: a secret of another user cannot be read unless it is root that reads. */
  uid?: number;
}

/** No setting is anywhere near this long; a longer value is refused before its own check, and never echoed whole. */
export const MAX_TEXT = 4096;

/** The problems found while walking one document, and where in the text each path is. */
export class Walk {
  private readonly found: { path: string; message: string; offset: number }[] = [];
  private readonly offsets = new Map<string, number>();

  constructor(
    readonly doc: Document,
    readonly lines: LineCounter,
    readonly io: ConfigIo,
  ) {}

  /** Remembers where `path` is, for problems about it and (a missing key) about anything under it. */
  mark(path: string, node: Node | undefined): void {
    const offset = node?.range?.[0];
    if (offset !== undefined) this.offsets.set(path, offset);
  }

  /** Records a problem at `path`, located at the nearest marked path at or above it. */
  problem(path: string, message: string): void {
    let at = path;
    while (!this.offsets.has(at) && at !== '') at = parentPath(at);
    this.problemAt(this.offsets.get(at) ?? 0, path, message);
  }

  problemAt(offset: number, path: string, message: string): void {
    this.found.push({ path, message, offset });
  }

  get count(): number {
    return this.found.length;
  }

  /** `path: message (line:col)`, in file order so the list reads top to bottom. */
  report(): string[] {
    return [...this.found]
      .sort((a, b) => a.offset - b.offset)
      .map(({ path, message, offset }) => {
        const { line, col } = this.lines.linePos(offset);
        return `${path === '' ? '' : `${path}: `}${message} (${line}:${col})`;
      });
  }
}

export function parentPath(path: string): string {
  return path.replace(/(?:^[^.[\]]+|\.[^.[\]]+|\[\d+\])$/, '');
}

/** Reads one YAML node; undefined when it is invalid (the problem is already recorded). */
export interface Spec<T> {
  read(node: Node, path: string, w: Walk): T | undefined;
}

// ---- scalars

/** A scalar spec: `parse` returns the value, or undefined for `must be <want>, got <what was there>`. */
export function scalar<T>(want: string, parse: (value: unknown, node: Node) => T | undefined): Spec<T> {
  return {
    read(node, path, w) {
      if (isScalar(node) && typeof node.value === 'string' && node.value.length > MAX_TEXT) {
        w.problem(path, `must be at most ${MAX_TEXT} characters long, got ${show(node)}`);
        return undefined;
      }
      const v = isScalar(node) ? parse(node.value, node) : undefined;
      if (v === undefined) w.problem(path, `must be ${want}, got ${show(node)}`);
      return v;
    },
  };
}

/** Adds a check that runs only on a value that already passed `spec`; it returns a message when it fails. */
export function refine<T>(spec: Spec<T>, check: (value: T, w: Walk) => string | undefined): Spec<T> {
  return {
    read(node, path, w) {
      const v = spec.read(node, path, w);
      if (v === undefined) return undefined;
      const message = check(v, w);
      if (message === undefined) return v;
      w.problem(path, message);
      return undefined;
    },
  };
}

export const bool: Spec<boolean> = scalar('true or false', (v) => (typeof v === 'boolean' ? v : undefined));

export function int(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): Spec<number> {
  const want =
    max === Number.MAX_SAFE_INTEGER
      ? min === Number.MIN_SAFE_INTEGER
        ? 'an integer'
        : `an integer of at least ${min}`
      : `an integer from ${min} to ${max}`;
  return scalar(want, (v) => (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : undefined));
}

export function oneOf<const T extends string>(values: readonly T[]): Spec<T> {
  return scalar(`one of ${values.join(', ')}`, (v) => (values.includes(v as T) ? (v as T) : undefined));
}

/** A string matching `re`. With `numbers`, a plain number is taken as written (`version: 15` → "15"). */
export function text(want: string, re: RegExp, opts: { numbers?: boolean } = {}): Spec<string> {
  return scalar(want, (v, node) => {
    const s = typeof v === 'string' ? v : opts.numbers && typeof v === 'number' && isScalar(node) ? node.source : undefined;
    return typeof s === 'string' && re.test(s) ? s : undefined;
  });
}

// ---- collections

type Kind = 'required' | 'optional' | 'default' | 'section';
export interface Field<T, K extends Kind = Kind> {
  spec: Spec<T>;
  kind: K;
  value?: T;
}
/** Missing → `required`. */
export const required = <T>(spec: Spec<T>): Field<T, 'required'> => ({ spec, kind: 'required' });
/** Missing → the key is absent from the result. */
export const optional = <T>(spec: Spec<T>): Field<T, 'optional'> => ({ spec, kind: 'optional' });
/** Missing → a copy of `value`. */
export const withDefault = <T>(spec: Spec<T>, value: NoInfer<T>): Field<T, 'default'> => ({ spec, kind: 'default', value });
/** A sub-map that may be left out entirely: missing → read as an empty map, so its own defaults apply. */
export const section = <T>(spec: Spec<T>): Field<T, 'section'> => ({ spec, kind: 'section' });

type Fields = Record<string, Field<any>>;
type ValueOf<F> = F extends Field<infer T> ? T : never;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type MapOf<F extends Fields> = Simplify<
  { [K in keyof F as F[K]['kind'] extends 'optional' ? never : K]: ValueOf<F[K]> } & {
    [K in keyof F as F[K]['kind'] extends 'optional' ? K : never]?: ValueOf<F[K]>;
  }
>;

/**
 * A map with exactly these keys. A value that fails leaves its key out of the result, so the result is complete
 * only when the walk found no problem; checks that look across fields must not assume more than `Loose<T>`.
 */
export function map<F extends Fields>(fields: F, what = 'a map'): Spec<MapOf<F>> {
  return {
    read(node, path, w) {
      if (!isMap(node)) {
        w.problem(path, `must be ${what}, got ${show(node)}`);
        return undefined;
      }
      const out: Record<string, unknown> = {};
      const given = new Map<string, Node | undefined>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : '?';
        // A key is part of every message about it: quoted (and cut short) when it is not plain text.
        const keyPath = join(path, PLAIN_KEY.test(key) ? key : quoted(key));
        w.mark(keyPath, pair.key as Node);
        if (!Object.hasOwn(fields, key)) {
          const guess = didYouMean(key, Object.keys(fields));
          w.problem(keyPath, `unknown key${guess ? ` (did you mean ${guess}?)` : ''}`);
          continue;
        }
        const value = deref(pair.value as Node | null, w.doc);
        // A collection is located by its key (`replication:`), so `replication.user: required` points there.
        w.mark(keyPath, isMap(value) || isSeq(value) ? (pair.key as Node) : value);
        given.set(key, isScalar(value) && value.value === null ? undefined : value);
      }
      for (const [key, field] of Object.entries(fields)) {
        const keyPath = join(path, key);
        const value = given.get(key);
        let v: unknown;
        if (value !== undefined) v = field.spec.read(value, keyPath, w);
        else if (field.kind === 'required') w.problem(keyPath, 'required');
        else if (field.kind === 'default') v = structuredClone(field.value);
        else if (field.kind === 'section') v = field.spec.read(new YAMLMap(), keyPath, w);
        if (v !== undefined) out[key] = v;
      }
      return out as MapOf<F>;
    },
  };
}

/** A list; an entry that fails is left as a hole (undefined) so that indexes in later messages stay right. */
export function list<T>(item: Spec<T>, min = 0): Spec<T[]> {
  return {
    read(node, path, w) {
      if (!isSeq(node)) {
        w.problem(path, `must be a list, got ${show(node)}`);
        return undefined;
      }
      if (node.items.length < min) w.problem(path, `needs at least ${min} entr${min === 1 ? 'y' : 'ies'}, got ${node.items.length}`);
      return node.items.map((raw, i) => {
        const itemPath = `${path}[${i}]`;
        w.mark(itemPath, raw as Node);
        const value = deref(raw as Node, w.doc);
        if (value === undefined || (isScalar(value) && value.value === null)) {
          w.problem(itemPath, 'empty entry');
          return undefined;
        }
        return item.read(value, itemPath, w);
      }) as T[];
    },
  };
}

/** A map whose `tag` key picks which of `variants` (each itself a map that includes `tag`) it must be. */
export function tagged<V extends Record<string, Spec<unknown>>>(
  tag: string,
  variants: V,
): Spec<V[keyof V] extends Spec<infer T> ? T : never> {
  const names = Object.keys(variants);
  return {
    read(node, path, w) {
      if (!isMap(node)) {
        w.problem(path, `must be a map with ${tag}: ${names.join(' or ')}, got ${show(node)}`);
        return undefined;
      }
      const chosen = node.get(tag, true);
      const name = isScalar(chosen) ? chosen.value : undefined;
      const variant = typeof name === 'string' && Object.hasOwn(variants, name) ? variants[name] : undefined;
      if (variant) return variant.read(node, path, w) as never;
      if (chosen === undefined) {
        w.problem(join(path, tag), `required (${names.join(' or ')})`);
      } else {
        w.mark(join(path, tag), chosen as Node);
        w.problem(join(path, tag), `must be one of ${names.join(', ')}, got ${show(chosen as Node)}`);
      }
      return undefined;
    },
  };
}

/** What validating checks across fields may rely on: anything may be missing when some value was invalid. */
export type Loose<T> = T extends (infer I)[] ? (Loose<I> | undefined)[] : T extends object ? { [K in keyof T]?: Loose<T[K]> } : T;

// ---- helpers

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function deref(node: Node | null | undefined, doc: Document): Node | undefined {
  if (node == null) return undefined;
  return isAlias(node) ? (node.resolve(doc) as Node | undefined) : node;
}

const PLAIN_KEY = /^[\x21-\x7e]{1,64}$/;

/**
 * A string as a message quotes it: JSON, with everything outside printable ASCII escaped (a Cyrillic "а" in a host
 * name must not look like the Latin one it imitates, a newline must not split the message) and a long value cut
 * short with its length.
 */
export function quoted(s: string): string {
  const cut = s.length > 80 ? s.slice(0, 60) : s;
  const q = JSON.stringify(cut).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return cut === s ? q : `${q.slice(0, -1)}…" (${s.length} characters)`;
}

/** How a node is quoted back in a message: `"abc"`, `70000`, `nothing`, `a map`, `a list`. */
export function show(node: Node | undefined): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'nothing' : typeof node.value === 'string' ? quoted(node.value) : JSON.stringify(node.value);
  return 'nothing';
}

/** The closest known key within a small edit distance, for `unknown key (did you mean identity_file?)`. */
export function didYouMean(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = editDistance(key.toLowerCase(), name);
    if (d <= Math.min(3, Math.floor(name.length / 3)) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}
