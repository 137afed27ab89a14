// Code and README cite the project's own documents as `docs/NAME.md, "Section"`. A citation is only worth its
// words when the document and the section exist: every one is checked against the headings of docs/.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const rel = join(dir, name);
    if (name === 'node_modules' || name === 'dist') return [];
    return statSync(join(ROOT, rel)).isDirectory() ? files(rel) : [rel];
  });
}

/** A section name wrapped over comment lines ("// ", " * ", "# ") read as one line. */
const unwrap = (s: string) => s.replace(/\s*\n\s*(\/\/|\*|#)?\s*/g, ' ').trim();

function headings(doc: string): string[] {
  return readFileSync(join(ROOT, doc), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .map((l) => l.replace(/^#+\s*/, '').toLowerCase());
}

const sources = [...files('lib'), ...files('test'), ...files('hooks'), ...files('pgpool'), 'README.md', 'install.sh'].filter((f) => /\.(ts|mjs|md|sh|conf)$|^hooks\//.test(f));
const CITATION = /(docs\/[a-z0-9-]+\.md)(?:,\s*(?:\/\/|\*|#)?\s*"([^"]{1,200})")?/g;

test('every cited document exists, and every cited section is a heading in it', (t) => {
  const broken: string[] = [];
  let sections = 0;
  for (const f of sources) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    for (const m of text.matchAll(CITATION)) {
      const [, doc, section] = m;
      if (!existsSync(join(ROOT, doc!))) {
        broken.push(`${f}: ${doc} does not exist`);
        continue;
      }
      if (section === undefined) continue;
      sections++;
      const want = unwrap(section).toLowerCase();
      if (!headings(doc!).some((h) => h.includes(want))) broken.push(`${f}: ${doc} has no section "${unwrap(section)}"`);
    }
  }
  t.deepEqual(broken, []);
  // The scan itself must find what it checks: the code cites dozens of sections.
  t.true(sections > 50, `only ${sections} cited sections found: the pattern no longer matches the citations`);
});
