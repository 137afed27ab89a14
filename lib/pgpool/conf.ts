// pgpool.conf text: rendering pgpool/hooks.conf for an install directory, and reading one `key = value` line the
// way pgpool 4.3's configuration lexer (src/config/pool_config.l) does. Pure: the caller reads and writes files.

import { ConfigError, UsageError } from '../errors.ts';

/** The executables pgpool/hooks.conf names, per pgpool setting. */
export const HOOK_EXECUTABLES = {
  failover_command: 'maas-ha-failover',
  follow_primary_command: 'maas-ha-follow-primary',
  failback_command: 'maas-ha-failback',
} as const;

/**
 * The bin directory is pasted unquoted into pgpool strings that pgpool expands (`%`) and sh parses, inside
 * pgpool's single quotes: only characters that mean nothing to any of the three are allowed.
 */
const SAFE_DIR = /^\/[A-Za-z0-9_.+/-]*$/;

/**
 * Substitutes @BINDIR@ in the hooks.conf template; every line of the result is checked with parsePgpoolConfLine.
 * `configFile`: a configuration outside the default path, written into every hook line as `--config FILE` (the
 * hooks take it before their own flags), so pgpool's hooks find it without an environment variable.
 */
export function renderHookLines(template: string, binDir: string, configFile?: string): string {
  const dir = binDir.length > 1 ? binDir.replace(/\/+$/, '') : binDir;
  if (!SAFE_DIR.test(dir) || dir.split('/').includes('..')) {
    throw new UsageError(`bin directory "${binDir}": expected an absolute path made of letters, digits and . _ + - / (it is pasted unquoted into pgpool.conf)`);
  }
  if (configFile !== undefined && (!SAFE_DIR.test(configFile) || configFile.split('/').includes('..') || configFile.endsWith('/'))) {
    throw new UsageError(`configuration file "${configFile}": expected an absolute path made of letters, digits and . _ + - / (it is pasted unquoted into pgpool.conf)`);
  }
  const withConfig = configFile === undefined ? template : template.replace(/(@BINDIR@\/maas-ha-[a-z0-9-]+)/g, `$1 --config ${configFile}`);
  const rendered = withConfig.replaceAll('@BINDIR@', dir === '/' ? '' : dir);
  const leftover = /@[A-Z_]+@/.exec(rendered);
  if (leftover) throw new UsageError(`hooks.conf template: unknown substitution ${leftover[0]}`);
  rendered.split('\n').forEach((line, i) => parsePgpoolConfLine(line, `hooks.conf line ${i + 1}`));
  return rendered;
}

export interface PgpoolConfEntry {
  key: string;
  /** As pgpool stores it: a quoted value without its outer quotes, backslashes kept (pgpool does not unescape). */
  value: string;
}

// pool_config.l as of 4.3.5 (checked against the Debian 4.3.5 binary: `pgpool -d -f FILE -m fast stop` logs each parsed value):
//   KEY             {LETTER}{LETTER_OR_DIGIT}*            LETTER = [A-Za-z_\200-\377]
//   UNQUOTED_STRING {LETTER}({LETTER_OR_DIGIT}|[-._:/])*
//   STRING          \'([^'\n]|\\.)*\'
//   INTEGER         {SIGN}?({DIGIT}+|0x{HEXDIGIT}+){UNIT_LETTER}*   (4.3: `10s`, `64MB`; UNIT_LETTER = [a-zA-Z])
//   REAL            {SIGN}?{DIGIT}*"."{DIGIT}*{EXPONENT}?
//   `#` to end of line is a comment; `=` between key and value is optional.
// extract_string() only strips the outer quotes of a STRING: `\'` lets a quote into the value but the backslash
// stays in it, and `''` is no escape at all (it ends one string and starts another: a syntax error).
const KEY = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*/;
const UNQUOTED = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff._:/-]*/;
const INTEGER = /^[-+]?(?:0x[0-9A-Fa-f]+|\d+)[A-Za-z]*/;
const REAL = /^[-+]?\d*\.\d*(?:[Ee][-+]?\d+)?/;

/**
 * One line of pgpool.conf: `{key, value}`, or undefined for a blank or comment line. Throws ConfigError for
 * what pgpool would reject as a syntax error (and, being modest, for two settings on one line, which pgpool
 * accepts but nobody means).
 */
export function parsePgpoolConfLine(line: string, where = 'pgpool.conf'): PgpoolConfEntry | undefined {
  const fail = (why: string): never => {
    throw new ConfigError(where, [`${why}: ${line.trim()}`]);
  };
  let rest = line.replace(/^[ \t\r]+/, '');
  if (rest === '' || rest.startsWith('#')) return undefined;
  const key = KEY.exec(rest)?.[0];
  if (!key) return fail('expected a parameter name');
  rest = rest.slice(key.length).replace(/^[ \t\r]+/, '');
  if (rest.startsWith('=')) rest = rest.slice(1).replace(/^[ \t\r]+/, '');
  let value: string;
  if (rest.startsWith("'")) {
    const end = quotedEnd(rest);
    if (end === undefined) return fail('unterminated quoted value');
    value = rest.slice(1, end - 1);
    rest = rest.slice(end);
  } else {
    // flex takes the longest match; on a tie the earlier rule (KEY before UNQUOTED_STRING) — same text either way.
    const word = [UNQUOTED, INTEGER, REAL].map((re) => re.exec(rest)?.[0] ?? '').reduce((a, b) => (b.length > a.length ? b : a));
    // REAL also matches a lone `.` or `-.`; pgpool would take those, nobody means them.
    if (!/[A-Za-z0-9_\u0080-\uffff]/.test(word)) return fail(`expected a value for ${key}`);
    value = word;
    rest = rest.slice(word.length);
  }
  rest = rest.replace(/^[ \t\r]+/, '');
  if (rest !== '' && !rest.startsWith('#')) {
    return fail(rest.startsWith("'") ? `${key}: '' is not an escape in pgpool.conf (write \\' and mind that the backslash stays in the value)` : `${key}: unexpected text after the value`);
  }
  return { key, value };
}

/**
 * Index just past the closing quote of the STRING token at the start of s, as flex matches
 * `'([^'\n]|\\.)*'`: the longest match, where a backslash may either escape the next character or stand alone.
 */
function quotedEnd(s: string): number | undefined {
  let reach = new Set<number>([1]);
  let best: number | undefined;
  for (let i = 1; i < s.length && reach.size > 0; i++) {
    if (!reach.has(i)) continue;
    reach.delete(i);
    const c = s[i];
    if (c === '\n') continue;
    if (c === "'") {
      best = i + 1;
      continue;
    }
    reach.add(i + 1);
    if (c === '\\' && i + 1 < s.length && s[i + 1] !== '\n') reach.add(i + 2);
  }
  return best;
}

/**
 * Why a backend value (backend_hostnameN, backend_data_directoryN) is unsafe in pgpool's hook lines, or
 * undefined if it is fine. Our lines put every placeholder in double quotes, which keeps spaces, `;`, `'`, `&`,
 * `|`, `<`, `>`, `*`, `#` and `~` literal, but inside double quotes sh still expands `$…` and `` `…` ``, treats
 * `\` as an escape and ends the quote at `"`; pgpool pastes the value verbatim, so no quoting of ours can help.
 * A `'` breaks pgpool.conf itself and the SQL literal pgpool builds for online recovery (docs/pgpool-hooks.md,
 * "Online recovery").
 */
export function placeholderValueHazard(value: string): string | undefined {
  const bad = /["$`\\']/.exec(value);
  if (bad) return `contains ${bad[0]}, which pgpool pastes unquoted into a shell command line (sh interprets it even inside our double quotes)`;
  if (/[\u0000-\u001f\u007f]/.test(value)) return 'contains a control character';
  return undefined;
}
