// `npm test`: typecheck, build, then ava over every test file (or the files given), echoing ava's TAP output.
// Without arguments the files run one after another (see E2E_ORDER).
// Whatever happens it ends with the one line CI reads, "N passed, N failed": a typecheck or build failure counts
// as a failed test, and so does ava exiting non-zero without having reported a failure (a crashed worker, a
// file that timed out) — a runner that dies early must never look green. A skipped or todo test counts as failed
// too: this suite promises that its end-to-end tests run, so a skip is a defect, not a pass.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';

const files = process.argv.slice(2);
const AVA = 'node_modules/ava/entrypoints/cli.mjs';
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

/**
 * One file after another. The suite used to run in two lanes (two ava processes side by side, a lab in each), but
 * on this 2-core machine kind two labs at once slow each other down far more than twice: measured in one run on a
 * fresh clone (2026-12-01), the guard file took 155 s beside the compound campaign and 26 s after it, the lab file
 * 161 s and 19 s, a 22 MB base-backup recovery over a minute; and the contention made scenarios with 5 s promises
 * flaky. So the unit, hook and CLI files run first (one ava run, two files at a time: they start no lab, and
 * 79-81 s against 166 s one at a time here), then each end-to-end file as an ava run of its own (each prints its
 * time, and each test's), the heaviest last. Files not named in E2E_ORDER run before those
 * it names, so a new file can never be left out.
 */
const E2E_ORDER = ['lab', 'install', 'uninstall', 'guard', 'failover', 'vip', 'soak', 'recovery', 'campaign', 'campaign-compound'].map((f) => `test/e2e/${f}.test.ts`);

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'support' || e.name === 'bench' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

async function ava() {
  if (files.length) return avaRun(files, []);
  const all = testFiles('test').sort();
  const missing = E2E_ORDER.filter((f) => !all.includes(f));
  if (missing.length) throw new Error(`test/run.mjs names test files that do not exist: ${missing.join(', ')}`);
  const e2e = all.filter((f) => f.includes('/e2e/'));
  await avaRun(all.filter((f) => !f.includes('/e2e/')), ['--concurrency', '2']);
  for (const f of [...e2e.filter((x) => !E2E_ORDER.includes(x)), ...E2E_ORDER]) await avaRun([f], ['--concurrency', '1']);
}

async function avaRun(list, flags) {
  const started = Date.now();
  // ava's own entry point under this node: npx would add its package resolution (about a second here) to every run.
  const child = spawn(process.execPath, [AVA, '--tap', ...flags, ...list], { stdio: ['ignore', 'pipe', 'inherit'] });
  let last = started;
  for await (const line of createInterface({ input: child.stdout })) {
    process.stdout.write(`${line}\n`);
    const m = /^(not ok|ok) \d+ - (.*?)(\s+# (SKIP|TODO).*)?$/.exec(line);
    if (!m) continue;
    // Each end-to-end test's own time (with its beforeEach), so the log shows where the suite's minutes go.
    if (list.length === 1) console.log(`#   took ${((Date.now() - last) / 1000).toFixed(1)} s`);
    last = Date.now();
    if (m[1] === 'ok' && !m[4]) passed++;
    else {
      failed++;
      failures.push(m[4] ? `${m[2]} (${m[4] === "SKIP" ? "skipped" : "todo"})` : m[2]);
    }
  }
  const code = await new Promise((resolve) => child.on('close', (c, s) => resolve(c ?? s)));
  // Where the suite's time goes, in the log CI keeps.
  console.log(`# ${list.length} file(s) from ${list[0]}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (code !== 0 && failures.length === 0) {
    failed++;
    failures.push(`ava exited with ${code} without reporting a failed test`);
  }
}

const typed = await step('typecheck (tsc --noEmit)', process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit']);
const built = typed && (await step('build (node build.mjs)', 'node', ['build.mjs']));
if (built) await ava();
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
