// `npm test`: typecheck, build, then ava over every test file (or the files given), echoing ava's TAP output.
// Without arguments the files run in two lanes (see LANE_ONE).
// Whatever happens it ends with the one line CI reads, "N passed, N failed": a typecheck or build failure counts
// as a failed test, and so does ava exiting non-zero without having reported a failure (a crashed worker, a
// file that timed out) — a runner that dies early must never look green. A skipped or todo test counts as failed
// too: this suite promises that its end-to-end tests run, so a skip is a defect, not a pass.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
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

/**
 * The whole suite runs in two lanes: two ava processes side by side, each running its files one at a time. The
 * heaviest files (the fault campaigns, each a writer, a probe and three PostgreSQL nodes recovering again and
 * again) go into different lanes, so they never load the two cores together (ava's own scheduling started both
 * at once, and every recovery under that load took four times as long). Lane one is named; lane two is every
 * other test file, so a new file can never be left out. The VIP lab (three pgpools and two PostgreSQL nodes in
 * namespaces, faults under the campaign's writer and probe) goes first in lane one, beside lane two's unit, hook
 * and CLI files, which start no lab: the two heaviest labs never overlap it. The lab's own small file goes to lane
 * one to even the lanes out. Each end-to-end file is an ava run of its own, so each prints its time.
 */
const LANE_ONE = ['vip', 'campaign', 'soak', 'failover', 'guard', 'install', 'uninstall', 'lab'].map((f) => `test/e2e/${f}.test.ts`);

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
  const missing = LANE_ONE.filter((f) => !all.includes(f));
  if (missing.length) throw new Error(`test/run.mjs names test files that do not exist: ${missing.join(', ')}`);
  // Lane two starts with what needs no lab (unit, hook, cli) and ends with the end-to-end files, the compound
  // campaign last: by then lane one is past its own campaign.
  // (One ava run per group, one group after another: ava may order the files it is given as it likes.)
  const rest = all.filter((f) => !LANE_ONE.includes(f));
  const groups = [rest.filter((f) => !f.includes('/e2e/')), rest.filter((f) => f.includes('/e2e/') && !f.includes('campaign')), rest.filter((f) => f.includes('/e2e/campaign'))];
  // One ava run per end-to-end file (and one for all the small ones), so that each prints its own time.
  const laneTwo = async () => {
    for (const g of [groups[0], ...groups[1], ...groups[2]].map((x) => (Array.isArray(x) ? x : [x]))) if (g.length) await avaRun(g, ['--concurrency', '1']);
  };
  const laneOne = async () => {
    for (const f of LANE_ONE) await avaRun([f], ['--concurrency', '1']);
  };
  await Promise.all([laneOne(), laneTwo()]);
}

async function avaRun(list, flags) {
  const started = Date.now();
  const child = spawn('npx', ['--no-install', 'ava', '--tap', ...flags, ...list], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  // Where the suite's time goes, in the log CI keeps.
  console.log(`# ${list.length} file(s) from ${list[0]}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
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
