// Quoting for POSIX sh. Commands sent over ssh are one string that the remote login shell (dash on Debian,
// sh/bash elsewhere) parses again, so every argument is wrapped in single quotes, where sh interprets nothing;
// an embedded single quote becomes '\'' (close, escaped quote, reopen). This is the only function in maas-ha
// that builds shell text; test/unit/shquote.test.ts runs it against dash with hostile strings.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

export function shQuote(arg: string): string {
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** One command line for sh: each argv element quoted, joined by spaces. */
export function shJoin(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('shJoin: empty argv');
  return argv.map(shQuote).join(' ');
}
