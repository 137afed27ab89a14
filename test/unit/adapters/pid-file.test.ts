// lib/adapters/pid-file.ts against real processes: the labs stop every daemon through it.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { alive, readPid, stopByPidFile } from '../../../lib/adapters/pid-file.ts';

function daemon(script: string): { pid: number; file: string; exited: Promise<void> } {
  const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
  const file = join(mkdtempSync(join(tmpdir(), 'maas-ha-pid-')), 'daemon.pid');
  writeFileSync(file, `${child.pid}\n`);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { pid: child.pid!, file, exited };
}

test('pid file: a daemon that obeys the signal is stopped, and the file kept unless asked', async (t) => {
  const d = daemon('exec sleep 60');
  t.is(readPid(d.file), d.pid);
  t.is(await stopByPidFile(d.file, { signal: 'SIGTERM', graceMs: 10_000, everyMs: 20 }), 'stopped');
  await d.exited;
  t.true(existsSync(d.file));
  t.is(readPid(d.file), undefined, 'a pid file naming a dead process names nothing');
});

test('pid file: a daemon that ignores the signal is killed once the grace is over, and the file removed when asked', async (t) => {
  const ready = join(mkdtempSync(join(tmpdir(), 'maas-ha-pid-')), 'trap-set');
  const d = daemon(`trap "" TERM; : > ${ready}; while :; do sleep 0.05; done`);
  // The shell must have set its trap before the signal comes: it says so by creating a file.
  const deadline = Date.now() + 10_000;
  while (!existsSync(ready) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.true(existsSync(ready), 'the shell set its trap');
  t.is(await stopByPidFile(d.file, { signal: 'SIGTERM', graceMs: 300, everyMs: 20, removeFile: true }), 'killed');
  await d.exited;
  t.false(alive(d.pid));
  t.false(existsSync(d.file));
});

test('pid file: no file, garbage or a NUL-terminated pid (pgpool writes one)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-pid-'));
  t.is(await stopByPidFile(join(dir, 'absent.pid'), { signal: 'SIGTERM', graceMs: 100 }), 'not-running');
  writeFileSync(join(dir, 'garbage.pid'), 'not a pid\n');
  t.is(readPid(join(dir, 'garbage.pid')), undefined);
  writeFileSync(join(dir, 'one.pid'), '1\n');
  t.is(readPid(join(dir, 'one.pid')), undefined, 'pid 1 is never a daemon of ours');
  writeFileSync(join(dir, 'pgpool.pid'), `${process.pid}\0`);
  t.is(readPid(join(dir, 'pgpool.pid')), process.pid);
});

test('pid file: a daemon that removes its own pid file as it exits (sshd does) → stopped, no error from the vanished file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-pid-'));
  const file = join(dir, 'sshd.pid');
  const ready = join(dir, 'trap-set');
  const child = spawn('sh', ['-c', `trap 'rm -f ${file}; exit 0' TERM; : > ${ready}; while :; do sleep 0.05; done`], { stdio: 'ignore' });
  writeFileSync(file, `${child.pid}\n`);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  while (!existsSync(ready) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.is(await stopByPidFile(file, { signal: 'SIGTERM', graceMs: 10_000, everyMs: 1 }), 'stopped');
  await exited;
  t.false(existsSync(file));
  t.is(readPid(file), undefined);
});
