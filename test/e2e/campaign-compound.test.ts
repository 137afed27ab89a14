// The fault campaign, compound faults: two things going wrong at once, or one fault landing in the middle of
// maas-ha's own work (a follow_primary run, a pcp_recovery_node, a second pgpool host's hook). Same instruments and
// verdict as test/e2e/campaign.test.ts (a writer counting acknowledged COMMITs, a probe sampling every node every
// 50 ms, the invariants, a log scan), on a lab of this file's own so that the two files run side by side.
//
// Scenarios name nodes by role, never by id, and end redundant through maas-ha's own commands.
import test from 'ava';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { COPY_HEADROOM_BYTES } from '../../lib/recovery/plan.ts';
import { parseBasebackupProgress } from '../../lib/recovery/progress.ts';
import { postgresUser, serviceEnv } from '../../lib/lab/lab.ts';
import { blackHole, cleanStop } from '../support/campaign.ts';
import { STATUS_POLL_MS, clusterStatus, closingLines, executedLine, hookRecords, killPostmaster, logMark, serverLogHookRecords, snapshot, waitRedundantWithout } from '../support/lab.ts';
import { campaignLab } from '../support/scenario.ts';

const { lab, maasHa, primaryNow, failoverDone, healWithMaasHa, hooksFinished, waitFor, trace, marks, unexpected, underCampaign, writeAfter } = campaignLab({
  name: 'campaign-compound',
  net: 124,
});

const others = (ids: number[]) => lab.nodes.map((n) => n.id).filter((id) => !ids.includes(id));

/** The node a failover hook's closing sentence names as promoted (or as already primary). */
const promotedIn = (msg: string) => Number(/promoted node (\d+)/.exec(msg)?.[1] ?? /node (\d+) is already primary/.exec(msg)?.[1] ?? NaN);

/** pgpool's primary once it is `node`, attached. */
const pgpoolPrimaryIs = (node: number, timeoutMs: number) =>
  waitFor(`node ${node} is the primary in pgpool`, timeoutMs, async () => {
    const s = await clusterStatus(lab);
    return s.primary === node && s.rows[node]!.pgpoolStatus === 'up' && s.rows[node]!.pgRole === 'primary' ? s : undefined;
  }, STATUS_POLL_MS);

test.serial('campaign: the primary and a standby lost together → the last standby is promoted with every acknowledged write', async (t) => {
  const m = marks();
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    const [s, r] = others([p]) as [number, number];
    trace(`kill -9 node ${s} (standby) and node ${p} (primary)`);
    killPostmaster(lab.nodes[s]!);
    killPostmaster(lab.nodes[p]!);
    const killedAt = Date.now();
    const done = await failoverDone(p, m.pgpool, 45_000);
    t.is(promotedIn(done.msg), r, `the only standby left, node ${r}, must be promoted: ${done.msg}`);
    await pgpoolPrimaryIs(r, 45_000);
    await writeAfter(c, killedAt, r);
    const healed = await healWithMaasHa(t, m.pgpool);
    t.deepEqual(healed.map((h) => h.node).sort(), [p, s].sort(), 'both lost nodes needed maas-ha recover, nothing else');
  });
  t.deepEqual(unexpected(m), []);
});

test.serial('campaign: a second primary failure while follow_primary runs → the last node is promoted, nothing acknowledged is lost', async (t) => {
  const m = marks();
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    trace(`kill -9 node ${p} (primary)`);
    killPostmaster(lab.nodes[p]!);
    const first = await failoverDone(p, m.pgpool);
    const n = promotedIn(first.msg);
    const [s] = others([p, n]) as [number];
    t.true(Number.isInteger(n) && n !== p, first.msg);
    // The moment pgpool starts the follow hook for the surviving standby, the new primary dies too.
    await waitFor(`follow_primary for node ${s} started`, 30_000, async () => (followStarted(m.pgpool, s) ? true : undefined), 20);
    const mark = logMark(lab);
    trace(`kill -9 node ${n} (the new primary) while node ${s} follows it`);
    killPostmaster(lab.nodes[n]!);
    const killedAt = Date.now();
    const second = await failoverDone(n, mark, 60_000);
    t.is(promotedIn(second.msg), s, `node ${s}, the last node standing, must be promoted: ${second.msg}`);
    await pgpoolPrimaryIs(s, 60_000);
    await writeAfter(c, killedAt, s);
    const healed = await healWithMaasHa(t, m.pgpool);
    t.deepEqual(healed.map((h) => h.node).sort(), [p, n].sort(), 'both killed primaries needed maas-ha recover, nothing else');
  });
  t.deepEqual(
    unexpected(m, [
      // The follow_primary runs for the new primary that died under them say so, and pgpool, with every backend
      // down until the promoted node is attached, turns clients away.
      /"hook":"follow_primary".*node \d is not an answering primary/,
      /FATAL: {2}pgpool is not accepting any new connections/,
    ]),
    [],
  );
});

test.serial("campaign: two pgpool hosts' failover hooks at once (separate state dirs) → one promotion, the same node", async (t) => {
  const m = marks();
  // A second pgpool host: the same cluster, its own state dir (its own journal and markers), as on another machine.
  const state = join(lab.o.dir, 'state-host-b');
  mkdirSync(state, { recursive: true });
  const pg = postgresUser();
  chownSync(state, pg.uid, pg.gid);
  chmodSync(state, 0o700);
  const configB = join(lab.o.dir, 'maas-ha-host-b.yaml');
  writeFileSync(configB, readFileSync(lab.paths.config, 'utf8').replace(/^state_dir: .*$/m, `state_dir: ${state}`), { mode: 0o640 });
  chownSync(configB, 0, pg.gid);
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    const before = await clusterStatus(lab);
    trace(`kill -9 node ${p} (primary)`);
    killPostmaster(lab.nodes[p]!);
    const killedAt = Date.now();
    // The moment pgpool runs its failover hook, the other host runs the same line with its own configuration.
    const line = await waitFor('pgpool runs the failover hook', 30_000, async () => {
      try {
        return executedLine(lab, 'maas-ha-failover', m.pgpool);
      } catch {
        return undefined;
      }
    }, 10);
    t.true(line.includes(`--config ${lab.paths.config}`), line);
    const hostB = createShell().run(['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '/bin/sh', '-c', line.replace(`--config ${lab.paths.config}`, `--config ${configB}`)], {
      timeoutMs: 60_000,
      cwd: '/',
      env: serviceEnv(lab.o, pg),
    });
    const [a, b] = [await failoverDone(p, m.pgpool), await hostB];
    t.is(b.exitCode, 0, b.stderr);
    const closingB = b.stderr.split('\n').filter((l) => l.includes('"step":"done"'));
    t.is(closingB.length, 1, b.stderr);
    const [na, nb] = [promotedIn(a.msg), promotedIn(closingB[0] ?? '')];
    t.log(`host A (pgpool): ${a.msg}`);
    t.log(`host B: ${JSON.parse(closingB[0] ?? '{}').msg}`);
    t.is(na, nb, 'both hosts settle on the same new primary');
    const s = await waitRedundantWithout(lab, p);
    t.is(s.primary, na);
    const oldTl = before.rows[p]!.timeline!;
    t.is(s.rows[na]!.timeline, oldTl + 1, 'one promotion: the new primary is exactly one timeline past the old one');
    await writeAfter(c, killedAt, na);
    await healWithMaasHa(t, m.pgpool);
  });
  t.deepEqual(unexpected(m), []);
});

test.serial('campaign: ssh to the old primary lost in the middle of follow_primary → it stays detached and not writable; maas-ha recover brings it back once ssh is back', async (t) => {
  const m = marks();
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    trace(`clean stop of node ${p} (primary)`);
    // A cleanly stopped old primary is rewound by follow_primary over ssh: cut ssh to its host as that begins.
    await cleanStop(lab, lab.nodes[p]!);
    const stoppedAt = Date.now();
    await waitFor(`follow_primary about to rewind node ${p}`, 45_000, async () =>
      hookRecords(lab, m.pgpool).some((r) => r.hook === 'follow_primary' && r.node_id === p && (r.step === 'discard' || r.step === 'plan')) || undefined,
    20);
    trace(`black hole around ssh of node ${p}`);
    const hole = await blackHole(lab, lab.nodes[p]!, 'ssh');
    try {
      const follow = await waitFor(`follow_primary for node ${p} finished`, 120_000, async () =>
        closingLines(lab, m.pgpool).find((r) => r.hook === 'follow_primary' && new RegExp(`\\bnode ${p}\\b`).test(r.msg)),
      );
      t.log(`follow_primary for node ${p}: ${follow.msg}`);
      const s = await clusterStatus(lab);
      t.not(s.primary, p);
      await writeAfter(c, stoppedAt, s.primary!);
      const last = c.lastSample(p, Date.now() - 1000);
      t.not(last?.state, 'writable', `node ${p} must not be writable after a rewind cut short`);
    } finally {
      trace(`ssh to node ${p} back`);
      await hole.heal();
    }
    await healWithMaasHa(t, m.pgpool);
  });
  t.deepEqual(unexpected(m, [/could not follow node \d|timed out|does not answer ssh|ssh .*(exit|timeout)/i]), []);
});

test.serial('campaign: the primary killed in the middle of pcp_recovery_node of a standby → the copy fails cleanly, the other standby is promoted, maas-ha recover brings both back', async (t) => {
  const m = marks();
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    const [s, r] = others([p]) as [number, number];
    // A standby whose disk was replaced: `maas-ha recover` copies the whole database (pcp_recovery_node, base backup).
    trace(`kill -9 node ${s} (standby) and wipe its data directory`);
    killPostmaster(lab.nodes[s]!);
    await failoverDone(s, m.pgpool);
    const data = lab.nodes[s]!.data;
    for (const f of readdirSync(data)) await createShell().run(['rm', '-rf', '--', join(data, f)], { timeoutMs: 30_000 });
    // Throttled for this copy only, so that the primary dies with the copy under way.
    const unthrottle = throttleCopies();
    let recover;
    try {
      recover = maasHa('recover', String(s));
      await copyUnderWay(data);
    } finally {
      unthrottle();
    }
    const mark = logMark(lab);
    trace(`kill -9 node ${p} (primary) during the copy to node ${s}`);
    killPostmaster(lab.nodes[p]!);
    const killedAt = Date.now();
    const r1 = await recover;
    t.log(`maas-ha recover ${s}: exit ${r1.code}: ${(r1.stderr || r1.stdout).trim().split('\n').at(-1)}`);
    t.not(r1.code, 0, 'a recovery whose source died cannot have succeeded');
    t.deepEqual(readdirSync(lab.nodes[s]!.root).filter((f) => f.endsWith('.maas-ha-new')), [], 'no unfinished copy is left behind');
    const done = await failoverDone(p, mark, 45_000);
    t.is(promotedIn(done.msg), r, `node ${r}, the standby that held every acknowledged write, must be promoted: ${done.msg}`);
    await pgpoolPrimaryIs(r, 45_000);
    await writeAfter(c, killedAt, r);
    const healed = await healWithMaasHa(t, m.pgpool);
    t.deepEqual(healed.map((h) => h.node).sort(), [p, s].sort());
  });
  const recoveryNoise = [
    /execution of command failed at "1st stage"|recovery_1st_stage|node recovery failed|pg_basebackup|base backup of node \d from node \d failed/,
    // The backend that ran pgpool_recovery's function for pcp_recovery_node, on the primary that was killed.
    /FATAL: {2}terminating connection due to unexpected postmaster exit/,
  ];
  t.deepEqual(unexpected(m, recoveryNoise), []);
  t.true(
    lab.nodes.some((n) => serverLogHookRecords(n, m.servers[n.id]!).some((x) => x.hook === 'recovery_1st_stage')),
    'the copy ran through pgpool (recovery_1st_stage in a PostgreSQL log)',
  );
});

test.serial("campaign: the target's disk fills up in the middle of a base backup → the copy fails cleanly, the old data directory is untouched; maas-ha recover brings the node back once there is room", async (t) => {
  const m = marks();
  const shell = createShell();
  const sh = async (...argv: string[]) => {
    const r = await shell.run(argv, { timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')}: exit ${r.exitCode}: ${r.stderr.trim()}`);
    return r.stdout;
  };
  await underCampaign(t, async (c) => {
    const p = await primaryNow();
    const [s] = others([p]) as [number];
    const n = lab.nodes[s]!;
    trace(`kill -9 node ${s} (standby)`);
    killPostmaster(n);
    await failoverDone(s, m.pgpool);
    // Node s's directory moves onto a filesystem of its own, sized so that the base backup's up-front check
    // passes (room for a copy of the database and the headroom), and filled by something else once the copy runs.
    const [row] = await lab.deps.pg.query<{ bytes: string }>({ host: lab.nodes[p]!.host, port: lab.nodes[p]!.port }, 'SELECT sum(pg_database_size(oid))::text AS bytes FROM pg_database');
    const bytes = Number(row?.bytes ?? NaN);
    const used = Number((await sh('du', '-sb', n.root)).split('\t')[0]);
    const disk = join(lab.o.dir, `disk-${s}`);
    mkdirSync(disk, { recursive: true });
    await sh('mount', '-t', 'tmpfs', '-o', `size=${used + bytes + COPY_HEADROOM_BYTES + 32 * 1024 * 1024},mode=0755`, 'maas-ha-test-disk', disk);
    let unthrottle = () => {};
    let recover: Promise<{ code: number; stdout: string; stderr: string }> | undefined;
    try {
      await sh('cp', '-a', `${n.root}/.`, disk);
      await sh('mount', '--bind', disk, n.root);
      const before = snapshot(n.data);
      unthrottle = throttleCopies();
      recover = maasHa('recover', String(s), '--method', 'basebackup');
      await copyUnderWay(n.data);
      trace(`filling node ${s}'s disk during the copy`);
      // dd writes until the filesystem is full and then fails, as it should: that is the point.
      const fill = await shell.run(['dd', 'if=/dev/zero', `of=${join(n.root, 'filler')}`, 'bs=1M'], { timeoutMs: 60_000 });
      t.regex(fill.stderr, /No space left on device/, 'the disk is full');
      const r = await recover;
      unthrottle();
      t.log(`maas-ha recover ${s}: exit ${r.code}: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`);
      t.is(r.code, 1, `${r.stdout}${r.stderr}`);
      t.regex(r.stderr, /No space left on device.*was not touched and the unfinished copy was removed; free space beside /, 'the error says why, and what to do');
      t.false(existsSync(`${n.data}.maas-ha-new`), 'the unfinished copy is removed');
      t.deepEqual(snapshot(n.data), before, 'not one file of the old data directory changed');
      await writeAfter(c, Date.now(), p);
    } finally {
      unthrottle();
      await recover; // nothing may still write on the disk that goes away
      rmSync(join(n.root, 'filler'), { force: true });
      // Back onto the lab's own directory (which nothing touched while it was covered), then the disk goes.
      for (const target of [n.root, disk]) {
        const u = await shell.run(['umount', target], { timeoutMs: 30_000 });
        if (u.exitCode !== 0) await shell.run(['umount', '-l', target], { timeoutMs: 30_000 });
      }
    }
    const healed = await healWithMaasHa(t, m.pgpool);
    t.deepEqual(healed.map((h) => h.node), [s]);
  });
  t.deepEqual(unexpected(m, [/No space left on device|base backup of node \d from node \d failed|pg_basebackup/]), []);
});

/**
 * Throttles the lab's base backups (1 MB/s) until the returned function puts the configuration back, so that a
 * fault can land in the middle of a copy.
 */
function throttleCopies(): () => void {
  const config = readFileSync(lab.paths.config, 'utf8');
  if (/^recovery:/m.test(config)) throw new Error('the lab configuration already has a recovery section');
  writeFileSync(lab.paths.config, `${config}recovery:\n  max_rate_kb_s: 1024\n`);
  return () => writeFileSync(lab.paths.config, config);
}

/** A base backup into `data`'s new copy is 512 kB along (pg_basebackup's progress log beside the data directory). */
function copyUnderWay(data: string): Promise<true> {
  const progressLog = `${data}.maas-ha-basebackup.log`;
  return waitFor('the copy under way (512 kB reported by pg_basebackup)', 60_000, async () => {
    let text: string;
    try {
      text = readFileSync(progressLog, 'utf8');
    } catch {
      return undefined; // not there yet (or already cleaned up after a failed copy)
    }
    const progress = parseBasebackupProgress(text);
    return progress && progress.done >= 512 * 1024 ? true : undefined;
  }, 50);
}

/** pgpool has started follow_primary for `node` after `mark` (its `execute command:` line). */
function followStarted(mark: number, node: number): boolean {
  const text = readFileSync(lab.paths.pgpoolLog).subarray(mark).toString('utf8');
  return new RegExp(`execute command: \\S*/maas-ha-follow-primary .*--node "${node}" `).test(text);
}
