// `npm test`: typecheck, build, then ava over every test file (or the files given), echoing ava's TAP output.
// Whatever happens it ends with the one line CI reads, "N passed, N failed": a typecheck or build failure counts
// as a failed test, and so does ava exiting non-zero without having reported a failure (a crashed worker, a
// file that timed out) — a runner that dies early must never look green. A skipped or todo test counts as failed
// too: this suite promises that its end-to-end tests run, so a skip is a defect, not a pass.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

const files = process.argv.slice(2);
let passed = 0;
let failed = 0;
const failures = [];

function step(name, cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('close', (code, signal) => {
      if (code === 0) passed++;
      else {
        failed++;
        failures.push(`${name} (${signal ?? `exit ${code}`})`);
      }
      console.log(`${code === 0 ? 'ok' : 'not ok'} - ${name}`);
      resolve(code === 0);
    });
  });
}

async function ava() {
  const child = spawn('npx', ['--no-install', 'ava', '--tap', ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
  for await (const line of createInterface({ input: child.stdout })) {
    process.stdout.write(`${line}\n`);
    const m = /^(not ok|ok) \d+ - (.*?)(\s+# (SKIP|TODO).*)?$/.exec(line);
    if (!m) continue;
    if (m[1] === 'ok' && !m[4]) passed++;
    else {
      failed++;
      failures.push(m[4] ? `${m[2]} (${m[4] === "SKIP" ? "skipped" : "todo"})` : m[2]);
    }
  }
  const code = await new Promise((resolve) => child.on('close', (c, s) => resolve(c ?? s)));
  if (code !== 0 && failures.length === 0) {
    failed++;
    failures.push(`ava exited with ${code} without reporting a failed test`);
  }
}

const typed = await step('typecheck (tsc --noEmit)', 'npx', ['--no-install', 'tsc', '--noEmit']);
const built = typed && (await step('build (node build.mjs)', 'node', ['build.mjs']));
if (built) await ava();
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
