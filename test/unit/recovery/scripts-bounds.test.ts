// Killing the local ssh does not stop a command on the database host: every command of the rebuild scripts that
// can take long must be bounded there, by coreutils timeout, from the budget the caller passes. Each script runs
// under dash with one command at a time replaced by one that never finishes (a hung NFS mount, a huge du, a sync
// stuck behind a dying disk); it must come back within its bound, not after the hang.
import test from 'ava';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASEBACKUP_SCRIPT, FACTS_SCRIPT, PROGRESS_SCRIPT, PRUNE_SCRIPT, RESUME_SCRIPT, REWIND_SCRIPT } from '../../../lib/recovery/scripts.ts';

const BOUND_S = 5;
/** Far beyond the bound (plus timeout's 5 s grace), far below the hang: a loaded machine is slow, not stuck. */
const LIMIT_MS = 60_000;
const HANGING = ['du', 'sync', 'rm', 'cp', 'mv', 'find', 'df', 'ls', 'touch'];
const LINES = ["primary_conninfo = 'host=10.0.0.11'"];

function executable(path: string, text: string): string {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
}

/** Runs the script in its own process group; an unbounded hang is killed (group and all) at the limit. */
function runBounded(script: string, args: string[], path: string): Promise<{ ms: number; code: number | null; killed: boolean; stderr: string }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn('dash', ['-c', script, 'maas-ha', ...args], { env: { ...process.env, PATH: path }, detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, LIMIT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ ms: Date.now() - started, code, killed, stderr });
    });
  });
}

function world(root: string, hang: string) {
  const fake = join(root, 'fake-bin');
  mkdirSync(fake);
  // The hanging stand-in first leaves a mark: a script that never reached the command proves nothing.
  const HANG = `#!/bin/sh\n: > '${root}/reached'\nexec sleep 600\n`;
  if (HANGING.includes(hang)) executable(join(fake, hang), HANG);
  const bin = join(root, 'pgbin');
  mkdirSync(bin);
  executable(join(bin, 'pg_controldata'), hang === 'pg_controldata' ? HANG : '#!/bin/sh\necho "Database cluster state: shut down"\n');
  const data = join(root, 'main');
  mkdirSync(join(data, 'pg_replslot', 'slot'), { recursive: true });
  mkdirSync(join(data, 'conf.d'));
  writeFileSync(join(data, 'PG_VERSION'), '15\n');
  writeFileSync(join(data, 'postgresql.conf'), "include_dir = 'conf.d'\n");
  writeFileSync(join(data, 'conf.d', 'a.conf'), 'x = 1\n');
  writeFileSync(join(data, 'standby.signal'), '');
  mkdirSync(`${data}.maas-ha-new/pg_wal`, { recursive: true });
  mkdirSync(`${data}.maas-ha-old-20250101T000000Z`);
  const tool = (name: string) =>
    executable(join(root, name), hang === name ? HANG : `#!/bin/sh\nmkdir -p "$1" && echo 15 > "$1/PG_VERSION"\n`);
  return { data, bin, path: `${fake}:${process.env.PATH}`, rewind: tool('pg_rewind'), basebackup: tool('pg_basebackup') };
}

/** Script, its arguments, and the commands it must reach (each one hanging in turn). */
const scripts: [string, string, (w: ReturnType<typeof world>) => string[], string[]][] = [
  ['facts', FACTS_SCRIPT, (w) => [w.data, w.bin, '1', String(BOUND_S)], ['du', 'rm', 'df', 'find', 'ls', 'touch', 'pg_controldata']],
  ['rewind', REWIND_SCRIPT, (w) => [w.data, String(BOUND_S), '1', ...LINES, '--keep', '1', 'd:conf.d', w.rewind, w.data], ['sync', 'rm', 'cp', 'mv', 'find', 'pg_rewind']],
  ['base backup', BASEBACKUP_SCRIPT, (w) => [w.data, `${w.data}.maas-ha-old-x`, String(BOUND_S), `${w.data}.log`, '1', ...LINES, '--keep', '1', 'd:conf.d', w.basebackup, `${w.data}.maas-ha-new`], ['sync', 'rm', 'cp', 'mv', 'ls', 'pg_basebackup']],
  ['prune', PRUNE_SCRIPT, (w) => ['--bound', String(BOUND_S), '--tidy', w.data, `${w.data}.maas-ha-old-20250101T000000Z`], ['rm']],
  ['progress', PROGRESS_SCRIPT, (w) => [w.data, String(BOUND_S)], ['du']],
  ['resume', RESUME_SCRIPT, (w) => [`${w.data}-gone`, String(BOUND_S)], ['mv']],
];

for (const [name, script, args, hangs] of scripts) {
  // The hangs sleep, they do not spin: every script of the file and every hanging command at once costs a few
  // dozen sleeping shells, and the file takes one bound instead of the sum of them.
  test(`remote bounds: the ${name} script returns within its bound whichever of its commands hangs`, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'maas-ha-bounds-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const results = await Promise.all(
      hangs.map(async (hang) => {
        const dir = join(root, hang);
        mkdirSync(dir);
        const w = world(dir, hang);
        const r = await runBounded(script, args(w), w.path);
        // On a loaded machine the steps before may use up the bound: the script said so, which is the bound working.
        return { hang, ...r, reached: existsSync(join(dir, 'reached')) || /out of time before/.test(r.stderr) };
      }),
    );
    const unbounded = results.filter((r) => r.killed).map((r) => r.hang);
    t.deepEqual(unbounded, [], `${name}: these hung past ${LIMIT_MS} ms, unbounded on the remote side`);
    for (const r of results) t.true(r.ms < LIMIT_MS, `${r.hang}: ${r.ms} ms`);
    t.deepEqual(results.filter((r) => !r.reached).map((r) => r.hang), [], 'every one of these commands was reached (and hung), or the bound ran out before it');
  });
}
