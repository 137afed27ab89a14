// lib/adapters/ssh.ts: every remote command carries a bound of its own on the remote side.

import test from 'ava';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createShell } from '../../../lib/adapters/exec.ts';
import { createSsh, REMOTE_SLACK_S, remoteBounded } from '../../../lib/adapters/ssh.ts';
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
  const argv = seen[0]!;
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
