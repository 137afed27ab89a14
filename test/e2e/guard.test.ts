// The split-brain guard, end to end: real PostgreSQL 15 nodes, each with the guard `maas-ha lab up` runs beside
// it (maas-ha-guard watch, as a database host's maas-ha-guard.service would). The scenario is the one the fence
// alone cannot handle: the cluster promoted another node while the old primary kept running (a partition that
// healed), and later the old primary's host "reboots" without standby.signal.
import test from 'ava';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { guardFiles } from '../../lib/lab/layout.ts';
import { postgresUser, serviceEnv } from '../../lib/lab/lab.ts';
import { logRecords } from '../../lib/log-render.ts';
import { observeNode } from '../../lib/observe.ts';
import { postmasterPid, startLab, stopLab, stopPgpool, waitFor, waitRedundant, type TestLab } from '../support/lab.ts';

let lab: TestLab;
test.before(async () => {
  lab = await startLab({ name: 'guard', net: 121 });
});
test.after.always(async () => {
  if (lab) await stopLab(lab);
});

const guardLog = (id: number) => {
  const f = guardFiles(lab.nodes[id]!).log;
  return existsSync(f) ? logRecords(readFileSync(f, 'utf8')) : [];
};
const observe = (id: number, timeoutMs = 1000) => observeNode(lab.deps, lab.deps.config.nodes[id]!, timeoutMs);

test.serial('node 1 promoted while primary node 0 still runs → node 0 writes standby.signal and stops itself within 5 s; after a "reboot" start-check keeps it a standby', async (t) => {
  await waitRedundant(lab);
  // pgpool would react to what follows on its own (docs/pgpool-hooks.md, "failover_command": pgpool itself fences nothing); with it stopped,
  // only the guards act, which is what this scenario is about.
  await stopPgpool(lab);
  const before = await observe(0);
  t.like(before, { reachable: true, inRecovery: false, timeline: 1 }, 'node 0 starts as the writable primary on timeline 1');

  await lab.deps.pg.query({ host: lab.nodes[1]!.host, port: lab.nodes[1]!.port }, 'SELECT pg_promote(true, 30)');
  const promotedAt = Date.now();
  t.like(await observe(1), { reachable: true, inRecovery: false, timeline: 2 }, 'node 1 is a primary on timeline 2');

  // Two primaries now. Node 0's guard must end it: not writable, then not running, all within 5 s.
  const deadline = () => Math.max(1, 5000 - (Date.now() - promotedAt));
  await waitFor('node 0 no longer accepts writes', deadline(), async () => {
    const o = await observe(0, 500);
    return !o.reachable || o.inRecovery ? true : undefined;
  }, 50);
  await waitFor('node 0 stopped', deadline(), async () => (postmasterPid(lab.nodes[0]!) === undefined ? true : undefined), 50);
  t.true(existsSync(join(lab.nodes[0]!.data, 'standby.signal')), 'node 0 keeps standby.signal, so any later start is a standby');
  t.like(await observe(1), { reachable: true, inRecovery: false, timeline: 2 }, 'node 1, the newer primary, is untouched');

  // The guard writes its closing line once its stop command has returned, a moment after the postmaster is gone
  // (on a loaded machine, pg_ctl notices that moment late: the bound is generous; the 5 s above is the promise).
  const demotion = await waitFor('node 0\'s guard reports the demotion', 30_000, async () => guardLog(0).find((r) => r.step === 'done' && /^guard check: demoted:/.test(r.msg)), 100).catch(() => undefined);
  t.regex(demotion?.msg ?? '', /demoted: node 0 is a primary on timeline 1 but node 1 is a (primary|standby) on timeline 2: the cluster moved on .*wrote .*standby.signal, stopped \((fast|immediate)/);
  const acted = (r: { step?: string; msg: string }) => r.step === 'standby-signal' || /^stop-/.test(r.step ?? '') || /demoted:|demotion FAILED/.test(r.msg);
  t.deepEqual(guardLog(1).filter(acted).map((r) => r.msg), [], "node 1's guard never touches the newer primary");

  // "Reboot": node 0's host comes back without standby.signal (say, the fence never wrote it). Before PostgreSQL
  // starts, the ExecStartPre check sees node 1 as the primary on a newer timeline and writes it back.
  rmSync(join(lab.nodes[0]!.data, 'standby.signal'));
  const pg = postgresUser();
  const asPostgres = (argv: string[]) => ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', ...argv];
  const shell = createShell();
  const r = await shell.run(
    asPostgres([process.execPath, join(lab.paths.bin, 'maas-ha-guard'), 'start-check', '--data-directory', lab.nodes[0]!.data, '--config', lab.paths.config]),
    { timeoutMs: 20_000, env: serviceEnv(lab.o, pg), cwd: '/' },
  );
  t.is(r.exitCode, 0, r.stderr);
  const closing = logRecords(r.stderr).find((x) => x.step === 'done');
  t.regex(closing?.msg ?? '', /guard start-check done in [\d.]+ s: node 0 has no standby.signal \(its last checkpoint on timeline 1\) but node 1 is a primary on timeline 2: writing standby.signal/);
  t.true(existsSync(join(lab.nodes[0]!.data, 'standby.signal')));
  const n0 = lab.nodes[0]!;
  const start = await shell.run(asPostgres([join(lab.o.pgBinDir, 'pg_ctl'), '-D', n0.conf, '-l', n0.log, '-w', '-t', '30', 'start']), {
    timeoutMs: 40_000,
    env: serviceEnv(lab.o, pg),
  });
  t.is(start.exitCode, 0, start.stderr);
  t.like(await observe(0, 3000), { reachable: true, inRecovery: true }, 'node 0 came back read-only, not as a second primary');

  // No guard logged an error in the whole scenario. (Node 1 may be seen mid-promotion: still in recovery, already on
  // timeline 2; a standby on a newer timeline proves the cluster moved on just as well.)
  const errors = [0, 1, 2].flatMap((id) => guardLog(id).filter((x) => x.level === 'error' || x.level === 'fatal').map((x) => `node ${id}: ${x.msg}`));
  t.deepEqual(errors, []);
});
