// `npm test`: typecheck, build, then ava over every test file (or the files given), echoing ava's TAP output.
// Without arguments the files run one after another (see E2E_ORDER), and after each end-to-end file whatever it
// left running is taken down (test/support/reap.ts, loaded through tsx: `npm test` runs this with --import=tsx).
// Whatever happens it ends with the one line CI reads, "N passed, N failed": a typecheck or build failure counts
// as a failed test, and so does ava exiting non-zero without having reported a failure (a crashed worker, a
// file that timed out) — a runner that dies early must never look green. A skipped or todo test counts as failed
// too: this suite promises that its end-to-end tests run, so a skip is a defect, not a pass.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
const E2E_ORDER = ['lab', 'install', 'uninstall', 'guard', 'failover', 'vip', 'vip-active-active', 'soak', 'recovery', 'campaign', 'campaign-compound'].map((f) => `test/e2e/${f}.test.ts`);

function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return e.name === 'support' || e.name === 'bench' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [p] : [];
  });
}

async function ava() {
  if (files.length) {
    await avaRun(files, []);
    if (files.some((f) => f.includes('/e2e/'))) await reap(files.join(' '));
    return;
  }
  const all = testFiles('test').sort();
  const missing = E2E_ORDER.filter((f) => !all.includes(f));
  if (missing.length) throw new Error(`test/run.mjs names test files that do not exist: ${missing.join(', ')}`);
  const e2e = all.filter((f) => f.includes('/e2e/'));
  await avaRun(all.filter((f) => !f.includes('/e2e/')), ['--concurrency', '2']);
  for (const f of [...e2e.filter((x) => !E2E_ORDER.includes(x)), ...E2E_ORDER]) {
    console.log(`# machine before ${f}: ${machine()}`);
    await avaRun([f], ['--concurrency', '1']);
    await reap(f);
  }
}

/**
 * A file whose ava worker died (killed, or timed out) never ran its after.always hook: its lab would go on running
 * beside the next file's and could break it. The labs' own teardown takes down whatever is left.
 */
async function reap(file) {
  const { reapTestLabs } = await import('./support/reap.ts');
  for (const line of await reapTestLabs()) console.log(`# left running after ${file}: ${line}`);
}

/** One line of what the machine has left, so a log shows a file that starves the ones after it. */
function machine() {
  const mem = Object.fromEntries(readFileSync('/proc/meminfo', 'utf8').split('\n').map((l) => /^(\w+):\s+(\d+)/.exec(l)).filter(Boolean).map((m) => [m[1], Math.round(Number(m[2]) / 1024)]));
  const procs = readdirSync('/proc').filter((e) => /^\d+$/.test(e)).length;
  const shm = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').length - 1;
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return `${mem.MemAvailable} MB available, ${mem.Shmem} MB shared, ${shm} System V segments, ${procs} processes, load ${load}`;
}

/** After a file that failed: the biggest processes and what the kernel said about memory. */
function postMortem() {
  const rows = [];
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const rss = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${e}/status`, 'utf8'))?.[1] ?? 0);
      rows.push([rss, e, readFileSync(`/proc/${e}/cmdline`, 'utf8').replace(/\0/g, ' ').slice(0, 120)]);
    } catch {
      // gone
    }
  }
  rows.sort((a, b) => b[0] - a[0]);
  for (const [rss, pid, cmd] of rows.slice(0, 8)) console.log(`#   ${Math.round(rss / 1024)} MB pid ${pid}: ${cmd}`);
  const k = spawnSync('dmesg', [], { encoding: 'utf8', timeout: 5000 });
  const oom = (k.stdout ?? '').split('\n').filter((l) => /out of memory|oom|killed process/i.test(l)).slice(-5);
  console.log(oom.length ? oom.map((l) => `#   kernel: ${l}`).join('\n') : `#   kernel: no out-of-memory lines${k.status === 0 ? '' : ' (dmesg unreadable)'}`);
}

/**
 * One ava run's bound. ava's own timeout (package.json) fails a test that stays silent for 10 min, but its TAP
 * reporter can crash on that timeout and leave the run hanging (seen in CI, 2026-12-01: 19 min for one file). The
 * longest file takes under 5 min here.
 */
const RUN_DEADLINE_MS = 15 * 60_000;
let current;

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone
  }
}

// ^C or a CI stop reaches ava and its worker too, in their own process group.
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current) killGroup(current.pid, sig);
    process.exit(130);
  });
}

async function avaRun(list, flags) {
  const started = Date.now();
  const failedBefore = failures.length;
  // ava's own entry point under this node: npx would add its package resolution (about a second here) to every run.
  // In a process group of its own, so that a run past its deadline goes with its worker.
  const child = spawn(process.execPath, [AVA, '--tap', ...flags, ...list], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const closed = new Promise((resolve) => child.on('close', (c, s) => resolve(c ?? s)));
  current = child;
  let overdue = false;
  const deadline = setTimeout(() => {
    overdue = true;
    killGroup(child.pid, 'SIGKILL');
  }, RUN_DEADLINE_MS);
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
  const code = await closed;
  clearTimeout(deadline);
  current = undefined;
  if (overdue) {
    failed++;
    failures.push(`${list.length === 1 ? list[0] : 'the batch'}: killed after ${RUN_DEADLINE_MS / 60_000} min, the bound of one ava run`);
  }
  // Where the suite's time goes, in the log CI keeps.
  console.log(`# ${list.length} file(s) from ${list[0]}: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (code !== 0 && failures.length === failedBefore) {
    failed++;
    failures.push(`${list.length === 1 ? list[0] : 'ava'}: exited with ${code} without reporting a failed test`);
  }
  if (code !== 0) {
    console.log(`# after ${list.length === 1 ? list[0] : 'the batch'} failed: ${machine()}`);
    postMortem();
  }
}

const typed = await step('typecheck (tsc --noEmit)', process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit']);
const built = typed && (await step('build (node build.mjs)', 'node', ['build.mjs']));
if (built) await ava();
if (failures.length) console.log(`\nfailed:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
console.log(`\n${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
