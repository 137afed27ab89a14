import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createShell } from '../../../lib/adapters/exec.ts';
import { CommandError, checked } from '../../../lib/model/ports.ts';

const shell = createShell();

/** A scratch directory, removed when the test ends. */
function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-exec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('run: a command that sleeps forever is killed at its budget', async (t) => {
  const r = await shell.run(['sleep', 'infinity'], { timeoutMs: 300 });
  t.true(r.timedOut);
  t.is(r.signal, 'SIGKILL');
  t.true(r.durationMs >= 290 && r.durationMs < 3000, `took ${r.durationMs} ms`);
});

test('run: children of a timed-out command die with it', async (t) => {
  const dir = scratch(t);
  const marker = join(dir, 'late');
  await shell.run(['sh', '-c', 'sleep 1; touch "$1"', 'sh', marker], { timeoutMs: 200 });
  await new Promise((r) => setTimeout(r, 1300));
  t.false(existsSync(marker), 'the child shell survived the timeout and ran on');
});

test('run: argv elements are never interpreted by a shell', async (t) => {
  const dir = scratch(t);
  const r = await shell.run(['printf', '%s|', "'; touch pwned", '$(touch pwned)', 'a b'], { timeoutMs: 2000, cwd: dir });
  t.is(r.stdout, "'; touch pwned|$(touch pwned)|a b|");
  t.false(existsSync(join(dir, 'pwned')));
});

test('run: exit status, stderr and duration are reported; checked() turns failure into CommandError', async (t) => {
  const r = await shell.run(['sh', '-c', 'echo oops >&2; exit 3'], { timeoutMs: 2000 });
  t.is(r.exitCode, 3);
  t.is(r.stderr.trim(), 'oops');
  t.false(r.timedOut);
  const err = t.throws(() => checked(r, 'the thing'), { instanceOf: CommandError });
  t.regex(err!.message, /the thing exited 3: oops/);
});

test('run: a missing binary is a failure, not a success', async (t) => {
  const r = await shell.run(['/nonexistent/bin/tool'], { timeoutMs: 2000 });
  t.not(r.exitCode, 0);
});

test('run: refuses a call without a timeout', async (t) => {
  await t.throwsAsync(shell.run(['true'], { timeoutMs: 0 }), { message: /timeoutMs is required/ });
});

test('run: when the process exits (a hook past its budget), commands still running die with it', async (t) => {
  const dir = scratch(t);
  const marker = join(dir, 'late');
  // A child node process starts a slow command with a long timeout, then exits the way runHook's budget guard does.
  const script = `
    import { createShell } from ${JSON.stringify(new URL('../../../lib/adapters/exec.ts', import.meta.url).href)};
    const shell = createShell();
    shell.run(['sh', '-c', 'sleep 1; touch "$1"', 'sh', ${JSON.stringify(marker)}], { timeoutMs: 60000 });
    setTimeout(() => process.exit(1), 300);`;
  const r = await createShell().run([process.execPath, '--import=tsx', '--input-type=module', '-e', script], { timeoutMs: 20_000 });
  t.is(r.exitCode, 1, r.stderr);
  await new Promise((resolve) => setTimeout(resolve, 1300));
  t.false(existsSync(marker), 'the command outlived the process that started it');
});
