// Online recovery, end to end: real PostgreSQL 15 nodes, a real pgpool-II 4.3 whose pcp_recovery_node makes the
// primary's PostgreSQL run maas-ha's recovery wrappers (placed in every data directory by the lab), real ssh to
// the target. Scenarios speak the operator's language; the failure scenarios check the one promise that matters
// most: the node's old data directory is intact and starts.
import test from 'ava';
import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { startByHand } from '../support/campaign.ts';
import type { NodeConfig } from '../../lib/config/types.ts';
import { observeNode } from '../../lib/observe.ts';
import { control, stopNode } from '../../lib/pgctl.ts';
import { parseBasebackupProgress } from '../../lib/recovery/progress.ts';
import {
  DIST_BIN,
  NODE_DOWN_NOISE,
  closingLines,
  clusterStatus,
  healLab,
  killPostmaster,
  logMark,
  redundant,
  serverLogHookRecords,
  serverLogMark,
  snapshot,
  startLab,
  stopLab,
  stopPgpool,
  unexpectedErrors,
  waitFor,
  waitRedundant,
  waitRedundantWithout,
  type TestLab,
} from '../support/lab.ts';

/** How `maas-ha recover` writes a duration (formatSeconds): "8.1 s", "42 s", "1 min 4 s". */
const TOOK = '(?:\\d+ min )?[\\d.]+ s';

let lab: TestLab;
const shell = createShell();
/**
 * pgpool's replication-delay check (sr_check_worker) loses its connection to a node that was just killed or just
 * attached and says so at ERROR/FATAL level, while the node itself is fine: expected around a failover or recovery.
 */
const NOISE = [...NODE_DOWN_NOISE, /sr_check_worker pid \d+: (ERROR: {2}Failed to check replication time lag|FATAL: {2}Backend throw an error message)/];

/** This file's recovery settings: one old data directory kept. Copies run at full speed unless a scenario throttles. */
function throttle(): void {
  const text = readFileSync(lab.paths.config, 'utf8');
  if (!/^recovery:/m.test(text)) appendFileSync(lab.paths.config, 'recovery:\n  keep_old_data_dirs: 1\n');
}

/** The configuration text with base backups throttled to `kbPerSecond` (so a copy lasts long enough to watch). */
const throttled = (config: string, kbPerSecond: number) => config.replace(/^recovery:\n/m, `recovery:\n  max_rate_kb_s: ${kbPerSecond}\n`);

test.before(async () => {
  lab = await startLab({ name: 'recovery', net: 110 });
  throttle();
});
test.after.always(async () => {
  if (lab) await stopLab(lab);
});

/** Redundant again, whichever node is primary (a rebuild only when recovery could not get there). */
async function heal(): Promise<void> {
  const s = await clusterStatus(lab).catch(() => undefined);
  if (s && redundant(s, lab.o.nodes)) return;
  await healLab(lab, { primary: s?.primary ?? 0 });
  throttle();
}
test.beforeEach(heal);

const cfg = (id: number): NodeConfig => lab.deps.config.nodes[id]!;
const primaryId = async () => (await clusterStatus(lab)).primary!;
async function aStandby(): Promise<{ p: number; s: number }> {
  const p = await primaryId();
  return { p, s: p === 2 ? 1 : 2 };
}

interface Cli {
  code: number;
  stdout: string;
  stderr: string;
}
/** The built CLI, as an operator runs it (root, stdout not a terminal). */
function maasHa(...args: string[]): Promise<Cli> {
  return new Promise((resolve) => {
    execFile(join(DIST_BIN, 'maas-ha'), [...args, '--config', lab.paths.config], { timeout: 150_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const pgpoolStatus = async (id: number) => (await lab.deps.pcp.nodeInfo(id)).status;
const waitDetached = (id: number) => waitFor(`pgpool shows node ${id} down`, 20_000, async () => ((await pgpoolStatus(id)) === 3 ? true : undefined), 200);

/** A standby stopped cleanly (pgpool notices and detaches it): nothing writes to its directory any more. */
async function stopStandby(id: number): Promise<void> {
  const r = await stopNode(lab.deps, cfg(id), 30_000);
  if (r.outcome !== 'stopped-fast' && r.outcome !== 'not-running') throw new Error(`stopping node ${id}: ${r.outcome} ${r.detail}`);
  await waitDetached(id);
}

const besideData = (id: number) => readdirSync(lab.nodes[id]!.root).filter((f) => f.startsWith('data.'));

/**
 * pcp_recovery_node can return before pgpool's main process has handled its failback (docs/pgpool-hooks.md,
 * "Online recovery": it waits at most 5 s for it); a primary killed meanwhile leaves pgpool searching for a
 * primary instead of failing over. Scenarios that go on to kill a node first wait for the failback hook's closing
 * line.
 */
async function failbackRan(id: number, mark: number): Promise<void> {
  await waitFor(`failback_command for node ${id}`, 20_000, async () =>
    closingLines(lab, mark).some((r) => r.hook === 'failback' && new RegExp(`node ${id} attached`).test(r.msg)) ? true : undefined,
  );
}

/** The old data directory starts (as maas-ha starts nodes: a standby, over ssh) and answers in recovery. */
async function startsAsStandby(id: number): Promise<boolean> {
  await control(lab.deps, cfg(id), 'start', 60_000);
  const o = await waitFor(`node ${id} answers`, 30_000, async () => {
    const x = await observeNode(lab.deps, cfg(id), 2000);
    return x.reachable ? x : undefined;
  });
  return o.reachable && o.inRecovery;
}

test.serial('after a failover, pcp_recovery_node brings the old primary back by pg_rewind: streaming, attached, no longer fenced', async (t) => {
  const mark = logMark(lab);
  killPostmaster(lab.nodes[0]!);
  // pgpool agreeing on the new primary too: the failover hook repoints the other standby before pgpool has even
  // finished its failover, and pcp_recovery_node refuses while pgpool still names node 0 its primary.
  const s = await waitRedundantWithout(lab, 0);
  const p = s.primary!;
  t.true(lab.deps.state.fenced().some((m) => m.node === 0), 'failover fenced the old primary');
  const logMarkP = serverLogMark(lab.nodes[p]!);

  await lab.deps.pcp.recover(0, { timeoutMs: 120_000 });

  await failbackRan(0, mark);
  const after = await waitRedundant(lab);
  t.is(after.primary, p);
  t.is(after.rows[0]!.pgRole, 'standby');
  t.regex(after.rows[0]!.replication, new RegExp(`^streaming from ${lab.nodes[p]!.host.replace(/\./g, '\\.')}`));
  const done = serverLogHookRecords(lab.nodes[p]!, logMarkP).filter((r) => r.step === 'done');
  t.regex(done.find((r) => r.hook === 'recovery_1st_stage')?.msg ?? '', new RegExp(`node 0 rebuilt by pg_rewind from node ${p} in [\\d.]+ s; pgpool_remote_start starts it next`));
  t.regex(done.find((r) => r.hook === 'remote_start')?.msg ?? '', new RegExp(`node 0 started and streams timeline 2 from node ${p}`));
  t.deepEqual(besideData(0), [], 'a rewind happens in place: nothing beside the data directory');
  t.false(lab.deps.state.fenced().some((m) => m.node === 0), 'the fencing marker is cleared once it streams as a standby');
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('a former primary that pg_rewind cannot rejoin (its WAL is gone) comes back by base backup; the rewound-at directory is kept, not deleted', async (t) => {
  const old = await primaryId();
  const mark = logMark(lab);
  killPostmaster(lab.nodes[old]!);
  const s = await waitRedundantWithout(lab, old);
  const p = s.primary!;
  // The WAL pg_rewind (and its crash recovery first) would read from is gone, as when it was recycled.
  const wal = join(lab.nodes[old]!.data, 'pg_wal');
  for (const f of readdirSync(wal).filter((x) => /^[0-9A-F]{24}$/.test(x))) rmSync(join(wal, f));
  const logP = serverLogMark(lab.nodes[p]!);

  await lab.deps.pcp.recover(old, { timeoutMs: 120_000 });

  await failbackRan(old, mark);
  await waitRedundant(lab);
  const first = serverLogHookRecords(lab.nodes[p]!, logP).find((r) => r.hook === 'recovery_1st_stage' && r.step === 'done');
  const m = new RegExp(`node ${old} rebuilt by base backup \\(pg_rewind failed: .+\\) from node ${p} in [\\d.]+ s; its previous data directory is kept at (\\S+maas-ha-old-\\d{8}T\\d{6}Z); pgpool_remote_start starts it next`).exec(first?.msg ?? '');
  t.truthy(m, first?.msg);
  t.true(existsSync(join(m![1]!, 'PG_VERSION')), 'the directory pg_rewind failed on is kept beside the new one');
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('a standby wiped on disk comes back by base backup through `maas-ha recover`, with a progress bar and the total time', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  await stopStandby(s);
  const data = lab.nodes[s]!.data;
  for (const f of readdirSync(data)) await shell.run(['rm', '-rf', '--', join(data, f)], { timeoutMs: 30_000 });
  t.deepEqual(readdirSync(data), []);

  // Throttled for this one, so that pg_basebackup reports several times and a throughput can be shown.
  const config = readFileSync(lab.paths.config, 'utf8');
  writeFileSync(lab.paths.config, throttled(config, 4096));
  const r = await maasHa('recover', String(s)).finally(() => writeFileSync(lab.paths.config, config));
  t.log(r.stdout);
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, new RegExp(`^recover node ${s} \\(pg${s}, [\\d.:]+\\) from primary node ${p} by base backup \\(about \\d+ MB\\), through pgpool \\(pcp_recovery_node`, 'm'));
  t.regex(r.stdout, /why: pg_rewind cannot work: the data directory is empty/);
  t.regex(r.stdout, /^ {2}base backup \[[#.]{24}\] +\d+% +[\d.]+ [kM]B \/ [\d.]+ MB +[\d.]+ [kM]B\/s +ETA /m, 'a progress line with throughput and ETA');
  t.regex(r.stdout, new RegExp(`^node ${s} recovered by base backup in ${TOOK}: streams timeline \\d+ from node ${p}, attached in pgpool$`, 'm'));
  await waitRedundant(lab);
  t.true(existsSync(join(data, 'PG_VERSION')) && existsSync(join(data, 'standby.signal')));
  t.deepEqual(besideData(s).filter((f) => !f.endsWith('.log')), [], 'an empty directory has nothing to keep');
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('maas-ha recover refuses the primary and a healthy standby; --dry-run plans; --force --method basebackup keeps the old directory, pruned to keep_old_data_dirs', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  const primary = await maasHa('recover', String(p));
  t.is(primary.code, 1);
  t.regex(primary.stderr, new RegExp(`node ${p} is the primary: there is nothing to rebuild it from`));
  const healthy = await maasHa('recover', String(s));
  t.is(healthy.code, 1);
  t.regex(healthy.stderr, new RegExp(`node ${s} is a healthy standby: .*use --force`));

  const dry = await maasHa('recover', `pg${s}`, '--dry-run', '--force', '--method', 'basebackup');
  t.is(dry.code, 0, dry.stderr);
  const d = lab.nodes[s]!.data;
  t.regex(dry.stdout, new RegExp(`swap: ${d} → ${d}\\.maas-ha-old-\\d{8}T\\d{6}Z \\([\\d.]+ MB\\), then ${d}\\.maas-ha-new → ${d}$`, 'm'));
  t.regex(dry.stdout, /^ {3}1\. stop node \d's PostgreSQL \(it runs as a standby\)$/m);
  t.deepEqual(besideData(s).filter((f) => f.includes('old')), [], 'a dry run changes nothing');
  t.true(redundant(await clusterStatus(lab), 3));

  const kept: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await maasHa('recover', String(s), '--force', '--method', 'basebackup');
    t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const m = new RegExp(`^node ${s} recovered by base backup in ${TOOK}: streams timeline \\d+ from node ${p}, attached in pgpool; previous data directory kept at (\\S+)$`, 'm').exec(r.stdout);
    t.truthy(m, r.stdout);
    kept.push(m![1]!);
    t.true(existsSync(join(m![1]!, 'PG_VERSION')), 'the kept directory still holds the cluster');
    await waitRedundant(lab);
  }
  t.notDeepEqual(kept[0], kept[1]);
  t.false(existsSync(kept[0]!), 'keep_old_data_dirs: 1 → the older copy is deleted once the node streams again');
  t.deepEqual(besideData(s).filter((f) => f.includes('old')), [kept[1]!.split('/').pop()]);
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('maas-ha recover of a healthy standby that pgpool has down (detached by hand): attached, nothing rebuilt; --dry-run says so and changes nothing', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  await lab.deps.pcp.detach(s);
  await waitFor(`pgpool showing node ${s} down`, 30_000, async () => (await clusterStatus(lab)).rows.find((r) => r.id === s)?.pgpoolStatus === 'down' || undefined);
  // pgpool ran the failover hook for the lost standby; the node itself still streams.
  await waitFor('the failover hook to finish', 30_000, async () => closingLines(lab, mark).some((x) => x.hook === 'failover') || undefined);

  const dry = await maasHa('recover', String(s), '--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, new RegExp(`node ${s} already streams timeline \\d+ from node ${p} and pgpool has it down: nothing to rebuild, attach it \\(pcp_attach_node\\)`));
  t.regex(dry.stdout, new RegExp(`^1\\. pcp_attach_node -n ${s}, then wait until pgpool shows it up$`, 'm'));
  t.is((await clusterStatus(lab)).rows.find((r) => r.id === s)?.pgpoolStatus, 'down', 'a dry run changes nothing');

  const before = besideData(s);
  const r = await maasHa('recover', String(s));
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, new RegExp(`^node ${s} recovered by an attach \\(it already streamed; nothing rebuilt\\) in ${TOOK}: streams timeline \\d+ from node ${p}, attached in pgpool$`, 'm'));
  t.deepEqual(besideData(s), before, 'no data directory moved or copied');
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('maas-ha recover --initial: a brand-new standby whose directory holds a fresh, foreign cluster is synced by base backup; the foreign one is kept', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  await stopStandby(s);
  const n = lab.nodes[s]!;
  // What the Debian package leaves on a new host: its own freshly initialised cluster.
  await shell.run(['rm', '-rf', '--', n.data], { timeoutMs: 30_000 });
  const init = await shell.run(
    ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '/usr/lib/postgresql/15/bin/initdb', '-D', n.data, '-A', 'trust', '--locale=C.UTF-8'],
    { timeoutMs: 60_000, env: { HOME: '/var/lib/postgresql' } },
  );
  t.is(init.exitCode, 0, init.stderr);
  const refused = await maasHa('recover', String(p === 0 ? 1 : 0), '--initial');
  t.is(refused.code, 1, 'a member of the cluster is no initial sync');
  t.regex(refused.stderr, /--initial: node \d's data directory .* already holds this cluster|is the primary|healthy standby/);

  const r = await maasHa('recover', String(s), '--initial');
  t.is(r.code, 0, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /why: pg_rewind cannot work: it holds another cluster \(system identifier \d+, the primary's is \d+\)/);
  t.regex(r.stdout, new RegExp(`^node ${s} recovered by base backup .*attached in pgpool; previous data directory kept at \\S+maas-ha-old-\\S+$`, 'm'));
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('ssh to the target fails: pcp_recovery_node fails, the primary\'s PostgreSQL log says why and what to check; the old data directory is intact and starts', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  await stopStandby(s);
  const before = snapshot(lab.nodes[s]!.data);
  const known = readFileSync(lab.paths.knownHosts, 'utf8');
  const logP = serverLogMark(lab.nodes[p]!);
  try {
    // The target's host key is no longer known: ssh with strict host key checking refuses it.
    writeFileSync(lab.paths.knownHosts, known.split('\n').filter((l) => !l.includes(`[${lab.nodes[s]!.host}]`)).join('\n'));
    const err = await t.throwsAsync(lab.deps.pcp.recover(s, { timeoutMs: 60_000 }));
    t.regex(err?.message ?? '', /pcp_recovery_node .*(ERROR|failed)/);
  } finally {
    writeFileSync(lab.paths.knownHosts, known);
  }
  const failed = serverLogHookRecords(lab.nodes[p]!, logP).find((r) => r.hook === 'recovery_1st_stage' && r.step === 'done');
  t.is(failed?.level, 'error');
  t.regex(failed?.msg ?? '', new RegExp(`cannot reach node ${s}'s host ${lab.nodes[s]!.host.replace(/\./g, '\\.')} over ssh as postgres \\(.*Host key verification failed.*\\): nothing was changed there\\. Check .*known_hosts holds its host key`));
  t.deepEqual(snapshot(lab.nodes[s]!.data), before, 'the data directory was not touched');
  t.true(await startsAsStandby(s));
  await lab.deps.pcp.attach(s);
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, [...NOISE, /execution of command failed at "1st stage"|recovery_1st_stage|node recovery failed/]), []);
});

test.serial('the target\'s disk is read-only: recovery is refused before anything changes; once writable, the old data directory starts', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  await stopStandby(s);
  const n = lab.nodes[s]!;
  const before = snapshot(n.data);
  const logP = serverLogMark(lab.nodes[p]!);
  const mount = async (...args: string[]) => {
    const r = await shell.run(['mount', ...args], { timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new Error(`mount ${args.join(' ')}: ${r.stderr}`);
  };
  await mount('--bind', n.root, n.root);
  try {
    await mount('-o', 'remount,ro,bind', n.root);
    await t.throwsAsync(lab.deps.pcp.recover(s, { timeoutMs: 60_000 }));
    const failed = serverLogHookRecords(lab.nodes[p]!, logP).find((r) => r.hook === 'recovery_1st_stage' && r.step === 'done');
    t.regex(failed?.msg ?? '', new RegExp(`node ${s}'s data directory ${n.data} is not writable \\(read-only filesystem or wrong owner\\): nothing was changed; fix the disk, then retry`));
    const cli = await maasHa('recover', String(s), '--method', 'basebackup');
    t.is(cli.code, 1);
    t.regex(cli.stderr, new RegExp(`cannot build the copy beside ${n.data}: ${n.root} is not writable on node ${s}'s host .*nothing was changed`));
  } finally {
    await shell.run(['umount', n.root], { timeoutMs: 10_000 });
  }
  t.deepEqual(snapshot(n.data), before);
  t.true(await startsAsStandby(s));
  await lab.deps.pcp.attach(s);
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, [...NOISE, /execution of command failed at "1st stage"|recovery_1st_stage|node recovery failed/]), []);
});

test.serial('the primary dies in the middle of the copy: the base backup fails with a clear error; the target\'s old data directory is untouched and starts', async (t) => {
  const { p, s } = await aStandby();
  // Without pgpool nothing reacts to the dying primary, and `maas-ha recover` takes its direct path.
  await stopPgpool(lab);
  const stop = await stopNode(lab.deps, cfg(s), 30_000);
  t.is(stop.outcome, 'stopped-fast');
  const n = lab.nodes[s]!;
  const before = snapshot(n.data);
  const beside = besideData(s).filter((f) => f.includes('old'));
  const slow = join(lab.o.dir, 'slow.yaml');
  writeFileSync(slow, throttled(readFileSync(lab.paths.config, 'utf8'), 1024));
  const log = `${n.data}.maas-ha-basebackup.log`;
  rmSync(log, { force: true }); // an earlier copy's progress must not count as this one's
  const run = new Promise<Cli>((resolve) => {
    execFile(join(DIST_BIN, 'maas-ha'), ['recover', String(s), '--method', 'basebackup', '--config', slow], { timeout: 150_000, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
  await waitFor('the copy under way (1 MB reported by pg_basebackup)', 60_000, async () => {
    const progress = existsSync(log) ? parseBasebackupProgress(readFileSync(log, 'utf8')) : undefined;
    return progress && progress.done >= 1024 * 1024 ? true : undefined;
  }, 100);
  killPostmaster(lab.nodes[p]!);
  const r = await run;
  t.is(r.code, 1, `${r.stdout}\n${r.stderr}`);
  t.regex(r.stdout, /directly over ssh \(pgpool does not answer/, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(`node ${s} not recovered after .*: base backup of node ${s} from node ${p} failed after [\\d.]+ s \\(pg_basebackup: error: .*\\): node ${s}'s data directory ${n.data} was not touched and the unfinished copy was removed; check the primary`),
  );
  t.false(existsSync(`${n.data}.maas-ha-new`));
  t.deepEqual(besideData(s).filter((f) => f.includes('old')), beside, 'nothing was moved aside');
  t.deepEqual(snapshot(n.data), before, 'not one file of the old data directory changed');
  t.true(await startsAsStandby(s), 'the old data directory starts (as a standby; its primary is gone)');
  await healLab(lab);
  throttle();
});

// Maintenance (lib/maintenance.ts), as an operator uses it: marks in the lab's state_dir, the hooks run by the lab's
// real pgpool.
const hookDone = (hook: string, mark: number, re: RegExp) =>
  waitFor(`${hook}'s closing line ${re}`, 30_000, async () => closingLines(lab, mark).find((r) => r.hook === hook && re.test(r.msg)));

test.serial('maintenance on a standby: detached, then stopping it triggers nothing (no fence, no slot dropped, no rebuild); recover refuses it; off brings redundancy back', async (t) => {
  const { p, s } = await aStandby();
  const mark = logMark(lab);
  const dry = await maasHa('maintenance', 'on', String(s), '--reason', 'kernel update', '--dry-run');
  t.is(dry.code, 0, dry.stderr);
  t.regex(dry.stdout, new RegExp(`^would mark node ${s} in maintenance.*\\nwould detach node ${s} from pgpool`, 'm'));
  t.deepEqual(lab.deps.state.maintenance(), [], 'a dry run sets no mark');
  t.not(await pgpoolStatus(s), 3, 'a dry run detaches nothing');
  const onPrimary = await maasHa('maintenance', 'on', String(p));
  t.is(onPrimary.code, 1);
  t.regex(onPrimary.stderr, new RegExp(`node ${p} is the primary: switch over first`));

  const on = await maasHa('maintenance', 'on', String(s), '--reason', 'kernel update');
  t.is(on.code, 0, on.stderr);
  t.regex(on.stdout, new RegExp(`^marked node ${s} in maintenance.*\\ndetached node ${s} from pgpool`, 'm'));
  t.is(await pgpoolStatus(s), 3);
  // pgpool ran the failover hook for the detach: it found the mark.
  await hookDone('failover', mark, new RegExp(`node ${s} \\(a standby\\) lost: promoted nobody; node ${s} is in maintenance \\(since .*: kernel update\\)`));
  const stop = await stopNode(lab.deps, cfg(s), 30_000);
  t.is(stop.outcome, 'stopped-fast');
  const listed = JSON.parse((await maasHa('maintenance', '--json')).stdout) as { marks: { node?: number; reason: string }[] };
  t.like(listed.marks, [{ node: s, reason: 'kernel update' }]);
  const status = JSON.parse((await maasHa('status', '--json')).stdout) as { rows: { id: number; problems: string[] }[] };
  t.regex(status.rows[s]!.problems.join('; '), /in maintenance \(since .* kernel update\)/);
  const refused = await maasHa('recover', String(s));
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`node ${s} is in maintenance .*maas-ha maintenance off ${s} brings it back`));
  t.false(lab.deps.state.fenced().some((m) => m.node === s), 'a node in maintenance is never fenced');
  t.true(existsSync(join(lab.nodes[s]!.data, 'standby.signal')), 'nothing rebuilt or reconfigured it');
  t.deepEqual(closingLines(lab, mark).filter((r) => r.hook !== 'failover').map((r) => r.hook), [], 'no follow, no recovery, no failback ran');

  const off = await maasHa('maintenance', 'off', String(s));
  t.is(off.code, 0, `${off.stdout}\n${off.stderr}`);
  t.regex(off.stdout, new RegExp(`^removed the maintenance mark of node ${s}`, 'm'));
  t.regex(off.stdout, new RegExp(`^node ${s} recovered by a start \\(no rebuild needed\\)`, 'm'));
  t.deepEqual(lab.deps.state.maintenance(), []);
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});

test.serial('maintenance on the cluster: the primary stopped for planned work is not failed over (nobody promoted, nothing fenced); switchover refused; off attaches it again', async (t) => {
  const { p } = await aStandby();
  const mark = logMark(lab);
  const on = await maasHa('maintenance', 'on', '--reason', 'PostgreSQL minor upgrade');
  t.is(on.code, 0, on.stderr);
  const status = await maasHa('status');
  t.regex(status.stdout, /CLUSTER IN MAINTENANCE \(since .* PostgreSQL minor upgrade\): automatic failover is off/);
  const sw = await maasHa('switchover', String(p === 2 ? 1 : 2));
  t.not(sw.code, 0);
  t.regex(sw.stderr, /the cluster is in maintenance .*maas-ha maintenance off first/);

  const stop = await stopNode(lab.deps, cfg(p), 30_000);
  t.is(stop.outcome, 'stopped-fast');
  await hookDone('failover', mark, /in maintenance: the cluster is in maintenance/);
  const obs = await Promise.all(lab.nodes.filter((n) => n.id !== p).map((n) => observeNode(lab.deps, cfg(n.id), 3000)));
  t.true(obs.every((o) => o.reachable && o.inRecovery), 'no standby was promoted');
  t.false(lab.deps.state.fenced().some((m) => m.node === p), 'the primary under planned work was not fenced');

  // The planned work done, the operator starts it as it was: a primary (maas-ha's own start only starts standbys).
  await startByHand(lab, lab.nodes[p]!);
  await waitFor(`node ${p} answers as the primary`, 30_000, async () => {
    const o = await observeNode(lab.deps, cfg(p), 2000);
    return o.reachable && !o.inRecovery ? true : undefined;
  });
  // pgpool still searches for a primary (search_primary_node_timeout) after the failover that promoted nobody; the
  // attach is carried out when that ends, and `off` waits for it.
  const off = await maasHa('maintenance', 'off');
  t.regex(off.stdout, /^removed the maintenance mark of the cluster/m, off.stderr);
  t.regex(off.stdout, new RegExp(`^then: node ${p} is the primary: attach it in pgpool \\(pcp_attach_node\\): attached$`, 'm'), off.stderr);
  await waitRedundant(lab);
  t.deepEqual(unexpectedErrors(lab, mark, NOISE), []);
});
