// Reads ava's TAP output on stdin, echoes it, and ends with the line CI reads: "N passed, N failed".
// Exits 1 when anything failed or when no test ran at all (a crashed runner must not look green).
import { createInterface } from 'node:readline';

let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];
for await (const line of createInterface({ input: process.stdin })) {
  process.stdout.write(`${line}\n`);
  const m = /^(not ok|ok) \d+ - (.*?)(\s+# (SKIP|TODO).*)?$/.exec(line);
  if (!m) continue;
  if (m[4]) skipped++;
  else if (m[1] === 'ok') passed++;
  else {
    failed++;
    failures.push(m[2]);
  }
}
if (failures.length) process.stdout.write(`\nfailed:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
