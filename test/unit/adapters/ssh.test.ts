// lib/adapters/ssh.ts: every remote command carries a bound of its own on the remote side.

import test from 'ava';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createShell } from '../../../lib/adapters/exec.ts';
import { CONTROL_PERSIST_S, createSsh, LOGIN_SLACK_MS, REMOTE_SLACK_S, remoteBounded } from '../../../lib/adapters/ssh.ts';
import type { RunOptions, RunResult, Shell } from '../../../lib/model/ports.ts';
import { testConfig } from '../../support/config.ts';
import { splitShWords } from '../../support/fake-world.ts';

const SSH_CFG = testConfig().ssh;

test('ssh: the remote command runs under timeout(1), bounded at the caller\'s deadline plus a little slack', async (t) => {
  const seen: string[][] = [];
  const recorder: Shell = {
    async run(argv: readonly string[], _opts: RunOptions): Promise<RunResult> {
      seen.push([...argv]);
      return { argv: [...argv], exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1 };
    },
  };
  await createSsh(SSH_CFG, recorder).run('db0', ['sh', '-c', 'echo "$1"', 'maas-ha', 'a b'], { timeoutMs: 7500 });
  const argv = seen.at(-1)!;
  t.is(argv[argv.length - 2], 'db0');
  // The remote sh parses the last word again: it must come out as timeout's argv, the command's words intact.
  t.deepEqual(splitShWords(argv.at(-1)!), ['timeout', '-k', '5', String(8 + REMOTE_SLACK_S), 'sh', '-c', 'echo "$1"', 'maas-ha', 'a b']);
  t.deepEqual(remoteBounded(['true'], 0), ['timeout', '-k', '5', String(1 + REMOTE_SLACK_S), 'true'], 'never a zero bound (timeout 0 means none)');
});

test('ssh: what the remote side runs stops at its bound although nobody kills it (our ssh gone, sshd sends no hang-up)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-ssh-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const marker = join(dir, 'late');
  // Run here what sshd would run there, with a local deadline far beyond the bound: only the bound can stop it.
  const bound = remoteBounded(['sh', '-c', 'sleep 30; touch "$1"', 'sh', marker], 500);
  const r = await createShell().run(bound, { timeoutMs: 60_000 });
  t.false(r.timedOut, 'the remote bound fired, not our deadline');
  t.is(r.exitCode, 124, 'timeout(1) says it stopped the command');
  t.false(existsSync(marker));
});

// ---- one login per host: the master connection

interface Call {
  argv: string[];
  timeoutMs: number;
}

/** A shell that answers ssh like OpenSSH would: `answer` decides per call; records every call. */
function sshWorld(answer: (argv: string[]) => Partial<RunResult> = () => ({})) {
  const calls: Call[] = [];
  const shell: Shell = {
    async run(argv: readonly string[], opts: RunOptions): Promise<RunResult> {
      calls.push({ argv: [...argv], timeoutMs: opts.timeoutMs });
      await new Promise((r) => setImmediate(r));
      return { argv: [...argv], exitCode: 0, signal: null, stdout: '', stderr: '', timedOut: false, durationMs: 1, ...answer([...argv]) };
    },
  };
  const opt = (argv: string[], key: string) => argv.find((a, i) => argv[i - 1] === '-o' && a.startsWith(`${key}=`))?.slice(key.length + 1);
  const isMaster = (argv: string[]) => opt(argv, 'ControlMaster') === 'yes';
  return { calls, shell, opt, isMaster };
}

test('ssh: one master connection per host, every command a session over it; the master bounded and short-lived', async (t) => {
  const w = sshWorld();
  const ssh = createSsh(SSH_CFG, w.shell);
  await Promise.all([ssh.run('db0', ['true'], { timeoutMs: 60_000 }), ssh.run('db0', ['true'], { timeoutMs: 60_000 })]);
  await ssh.run('db0', ['true'], { timeoutMs: 60_000 });
  await ssh.run('db1', ['true'], { timeoutMs: 60_000 });
  const masters = w.calls.filter((c) => w.isMaster(c.argv));
  t.deepEqual(masters.map((c) => c.argv.at(-1)), ['db0', 'db1'], 'one master per host, also for commands that start together');
  for (const m of masters) {
    t.true(m.argv.includes('-N') && m.argv.includes('-f'), 'no command, in the background');
    t.is(w.opt(m.argv, 'ControlPersist'), String(CONTROL_PERSIST_S));
    t.true(m.timeoutMs <= SSH_CFG.connect_timeout_s * 1000 + LOGIN_SLACK_MS, 'the login is bounded by the connect timeout, not the command\'s');
    t.is(w.opt(m.argv, 'StrictHostKeyChecking'), 'yes');
  }
  const sessions = w.calls.filter((c) => !w.isMaster(c.argv));
  t.is(sessions.length, 4);
  const path = (host: string) => masters.find((m) => m.argv.at(-1) === host)!.argv.find((a) => a.startsWith('ControlPath='))!.slice('ControlPath='.length);
  for (const s of sessions) {
    t.is(w.opt(s.argv, 'ControlMaster'), 'no', 'a session never makes a master of its own');
    t.is(w.opt(s.argv, 'ControlPath'), path(s.argv.at(-2)!));
  }
  const dir = path('db0').replace(/\/[^/]+$/, '');
  t.is(statSync(dir).mode & 0o777, 0o700, 'the sockets are in a directory only this user may enter');
  t.is(statSync(dir).uid, process.getuid!());
});

test('ssh: many Ssh instances in one process (a soak builds one per cycle) → one exit listener for all their socket directories', async (t) => {
  const w = sshWorld();
  await createSsh(SSH_CFG, w.shell).run('db0', ['true'], { timeoutMs: 60_000 });
  const before = process.listenerCount('exit');
  for (let i = 0; i < 15; i++) await createSsh(SSH_CFG, w.shell).run('db0', ['true'], { timeoutMs: 60_000 });
  t.is(process.listenerCount('exit'), before);
  t.is(w.calls.filter((c) => w.isMaster(c.argv)).length, 16, 'each instance its own master (and directory)');
});

test('ssh: a host that does not let us in → the command fails as its own login would (exit 255, ssh\'s words), nothing run; the next command tries again', async (t) => {
  let refuse = true;
  const w = sshWorld((argv) => (refuse ? { exitCode: 255, stderr: `ssh: connect to host ${argv.at(-1)} port 22: Connection refused\n` } : {}));
  const ssh = createSsh(SSH_CFG, w.shell);
  const r = await ssh.run('db0', ['pg_ctl', 'stop'], { timeoutMs: 30_000 });
  t.is(r.exitCode, 255);
  t.regex(r.stderr, /Connection refused/);
  t.true(w.calls.every((c) => w.isMaster(c.argv)), 'no session was attempted');
  t.regex(r.argv.at(-1)!, /pg_ctl/, 'the result names the command that did not run');
  refuse = false;
  t.is((await ssh.run('db0', ['true'], { timeoutMs: 30_000 })).exitCode, 0);
  t.is(w.calls.filter((c) => w.isMaster(c.argv)).length, 2, 'a new master, not the failed one');
});

test('ssh: a host that never answers costs the connect timeout once, not the command\'s whole budget', async (t) => {
  const w = sshWorld((argv) => (argv.includes('-N') ? { exitCode: null, signal: 'SIGKILL', timedOut: true, durationMs: 10_000 } : {}));
  const r = await createSsh(SSH_CFG, w.shell).run('db0', ['true'], { timeoutMs: 120_000 });
  t.true(r.timedOut);
  t.is(w.calls.length, 1);
  t.true(w.calls[0]!.timeoutMs <= SSH_CFG.connect_timeout_s * 1000 + LOGIN_SLACK_MS);
});

test('ssh: a master that cannot carry a session (multiplexing refused) → the command logs in on its own', async (t) => {
  const w = sshWorld((argv) => (argv.some((a) => a === 'ControlMaster=no') ? { exitCode: 255, stderr: 'mux_client_request_session: session request failed: Session open refused by peer\n' } : {}));
  const r = await createSsh(SSH_CFG, w.shell).run('db0', ['true'], { timeoutMs: 30_000 });
  t.is(r.exitCode, 0);
  const last = w.calls.at(-1)!.argv;
  t.false(last.some((a) => a.startsWith('ControlPath=')), 'the fallback is a login of its own');
  t.is(w.calls.length, 3, 'master, refused session, own login');
});

test('ssh: reuse off → every command a login of its own, no master', async (t) => {
  const w = sshWorld();
  const ssh = createSsh(SSH_CFG, w.shell, { reuse: false });
  await ssh.run('db0', ['true'], { timeoutMs: 5000 });
  await ssh.run('db0', ['true'], { timeoutMs: 5000 });
  t.is(w.calls.length, 2);
  t.false(w.calls.some((c) => c.argv.some((a) => a.startsWith('Control'))));
});

test.serial('ssh: no private directory for the sockets (TMPDIR unwritable) → every command logs in on its own, nothing thrown', async (t) => {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = '/nonexistent/maas-ha-test';
  try {
    const w = sshWorld();
    const r = await createSsh(SSH_CFG, w.shell).run('db0', ['true'], { timeoutMs: 5000 });
    t.is(r.exitCode, 0);
    t.is(w.calls.length, 1);
    t.false(w.calls[0]!.argv.some((a) => a.startsWith('Control')));
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
});
