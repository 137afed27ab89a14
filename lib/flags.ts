// The one flag parser, small and strict: the hooks' argument parsers (lib/pgpool/args.ts), the guard and every CLI
// command parse with it. It lives below the CLI so that a hook's bundle does not reach into lib/cli/. It exists
// (instead of node:util's parseArgs) because the hooks need two things parseArgs does not give: a value that is an
// empty string or starts with a dash (pgpool passes `""` and `-1`), and a UsageError whose message always starts
// with the flag it is about, so that the one error line pgpool puts in its log tells the operator which
// placeholder to fix.
//
// Accepted forms: `--name value`, `--name=value`, `--bool-flag`, `--` (everything after it is positional).
// Not accepted: short flags, `--no-x`, a string/int value that starts with `--` in the separate form (that is
// almost always a forgotten value; write `--name=--x` if you mean it), a bool flag with a value.

import { UsageError } from './errors.ts';

export type FlagType = 'string' | 'int' | 'bool';

export interface FlagSpec {
  type: FlagType;
  required?: boolean;
  /** May be given more than once; the value is then an array, in argv order (empty when never given). */
  repeatable?: boolean;
}

/** Flag name without the leading dashes (kebab-case) → its spec. */
export type FlagsSpec = Readonly<Record<string, FlagSpec>>;

type ScalarOf<S extends FlagSpec> = S['type'] extends 'int' ? number : S['type'] extends 'bool' ? boolean : string;

/** What parseFlags returns for one spec: arrays for repeatable flags, `T | undefined` for optional ones. */
export type FlagValues<T extends FlagsSpec> = {
  [K in keyof T]: T[K]['repeatable'] extends true
    ? ScalarOf<T[K]>[]
    : T[K]['required'] extends true
      ? ScalarOf<T[K]>
      : ScalarOf<T[K]> | undefined;
};

export interface ParsedFlags<T extends FlagsSpec> {
  values: FlagValues<T>;
  positionals: string[];
}

export interface ParseFlagsOptions {
  /** How many positional arguments are allowed (default 0). */
  positionals?: number;
}

const NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;
const INT = /^[+-]?\d+$/;

/**
 * Parses argv against spec. Every problem is a UsageError whose message starts with the flag:
 * `--port: expected an integer, got "x"`, `--port: given twice`, `--port: missing (required)`,
 * `--colour: unknown flag`.
 */
export function parseFlags<const T extends FlagsSpec>(argv: readonly string[], spec: T, options: ParseFlagsOptions = {}): ParsedFlags<T> {
  const specs = new Map<string, FlagSpec>();
  for (const [name, s] of Object.entries(spec)) {
    // A programming error, not a usage error: the spec is ours.
    if (!NAME.test(name)) throw new Error(`parseFlags: flag name "${name}" is not kebab-case`);
    specs.set(name, s);
  }
  const seen = new Map<string, unknown[]>();
  const positionals: string[] = [];
  const maxPositionals = options.positionals ?? 0;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`${arg}: unknown flag (only long --flags are accepted)`);
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const flag = `--${name}`;
    const s = specs.get(name);
    if (!s) throw new UsageError(`${flag}: unknown flag`);
    let raw: string | undefined;
    if (s.type === 'bool') {
      if (eq !== -1) throw new UsageError(`${flag}: takes no value, got "${arg.slice(eq + 1)}"`);
    } else if (eq !== -1) {
      raw = arg.slice(eq + 1);
    } else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new UsageError(`${flag}: expected a value`);
      raw = next;
      i++;
    }
    const values = seen.get(name) ?? [];
    if (values.length > 0 && !s.repeatable) throw new UsageError(`${flag}: given twice`);
    values.push(convert(flag, s.type, raw));
    seen.set(name, values);
  }

  if (positionals.length > maxPositionals) {
    const extra = positionals[maxPositionals] ?? '';
    throw new UsageError(maxPositionals === 0 ? `unexpected argument "${extra}"` : `unexpected argument "${extra}" (at most ${maxPositionals} allowed)`);
  }

  const out: Record<string, unknown> = {};
  for (const [name, s] of specs) {
    const values = seen.get(name);
    if (s.repeatable) out[name] = values ?? [];
    else if (values) out[name] = values[0];
    else if (s.required) throw new UsageError(`--${name}: missing (required)`);
    else out[name] = undefined;
  }
  return { values: out as FlagValues<T>, positionals };
}

function convert(flag: string, type: FlagType, raw: string | undefined): unknown {
  if (type === 'bool') return true;
  const value = raw ?? '';
  if (type === 'string') return value;
  const t = value.trim();
  const n = Number(t);
  if (!INT.test(t) || !Number.isSafeInteger(n)) throw new UsageError(`${flag}: expected an integer, got "${value}"`);
  return n;
}

/**
 * `--help` or `-h` anywhere before `--`. The CLI and every hook ask this before they parse a flag, read the
 * configuration or touch anything, so help added to any command line (even one with a wrong flag) is always
 * safe to run and always answered.
 */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}
