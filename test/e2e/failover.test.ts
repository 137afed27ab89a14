// Automatic failover, end to end: real PostgreSQL 15 nodes, a real pgpool-II 4.3 running maas-ha's hooks through
// the production pgpool/hooks.conf lines, writes flowing through pgpool. Each scenario reads like an operation
// and ends by scanning pgpool's log (which holds every hook's output) for errors nobody expected.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { control } from '../../lib/pgctl.ts';
import { observeNode } from '../../lib/observe.ts';
import { serviceEnv, postgresUser } from '../../lib/lab/lab.ts';
import { formatLsn } from '../../lib/model/lsn.ts';
import {
  DIST_BIN,
  runCli,
  NODE_DOWN_NOISE,
  executedLine,
  closingLines,
  clusterStatus,
  healLab,
  hookRecords,
  killPostmaster,
  logMark,
  startLab,
  stopLab,
  unexpectedErrors,
  waitFor,
  waitRedundant,
  type TestLab,
  waitRedundantWithout,
} from '../support/lab.ts';
import { rowsOn, startWriter, writeThroughPgpool } from '../support/writes.ts';

let lab: TestLab;
test.before(async () => {
  lab = await startLab({ name: 'failover', net: 102 });
});
test.after.always(async () => {
  if (lab) await stopLab(lab);
});
test.beforeEach(async () => {
  await healLab(lab);
});

const primaryOf = async () => (await clusterStatus(lab)).primary;

test.serial('kill -9 of the primary under writes → a standby is promoted, the other follows, writes resume, no acknowledged row lost', async (t) => {
  const mark = logMark(lab);
  const writer = await startWriter(lab);
  await waitFor('100 acknowledged writes', 20_000, async () => writer.acks.length >= 100 || undefined);
  killPostmaster(lab.nodes[0]!);
  const killedAt = Date.now();
  await waitFor('a write acknowledged after the kill', 30_000, async () => writer.acks.some((a) => a.sentAt > killedAt) || undefined);
  const s = await waitRedundantWithout(lab, 0);
  await writer.stop();

  const promoted = s.primary!;
  t.true(promoted === 1 || promoted === 2);
  const present = new Set(await rowsOn(lab, promoted));
  t.deepEqual(writer.acks.filter((a) => !present.has(a.seq)).map((a) => a.seq), [], 'acknowledged rows missing on the new primary');

  // pgpool shows the standby up a moment before the follow hook that attached it writes its closing line.
  const done = await waitFor('both follow_primary runs finished', 20_000, async () => {
    const lines = closingLines(lab, mark);
    return lines.filter((r) => r.hook === 'follow_primary').length >= 2 ? lines : undefined;
  });
  const failover = done.find((r) => r.hook === 'failover');
  t.regex(failover?.msg ?? '', new RegExp(`failover done in [\\d.]+ s: promoted node ${promoted} .*old primary node 0 is down`));
  const follows = done.filter((r) => r.hook === 'follow_primary').map((r) => r.msg);
  t.true(follows.some((m) => /node 0 is down .*stays detached/.test(m)), follows.join('\n'));
  // The failover hook repointed the other standby right after the promotion (so that commits on the new primary
  // stay synchronous); follow_primary finds it streaming and attaches it, or repoints it if it was not yet.
  t.true(
    follows.some((m) => new RegExp(`node ${3 - promoted} (already followed node ${promoted}: attached|repointed to node ${promoted}, streaming timeline 2, attached)`).test(m)),
    follows.join('\n'),
  );
  t.regex(failover?.msg ?? '', new RegExp(`commits on node ${promoted} are synchronous again \\(pg${3 - promoted} streaming\\)`));
  t.deepEqual(unexpectedErrors(lab, mark, NODE_DOWN_NOISE), []);
});

test.serial("pgpool's %m is behind another standby → the most advanced standby is promoted and every row any standby had survives", async (t) => {
  const mark = logMark(lab);
  // Node 1 is %m (the lowest live id). Cut its WAL stream, then write: with ANY 1 the commits are
  // acknowledged by node 2 alone, so node 1 falls behind.
  await lab.deps.pg.query({ host: lab.nodes[1]!.host, port: 5432 }, "ALTER SYSTEM SET primary_conninfo = ''");
  await lab.deps.pg.query({ host: lab.nodes[1]!.host, port: 5432 }, 'SELECT pg_reload_conf()');
  await waitFor('node 1 stops receiving', 10_000, async () => {
    const o = await observeNode(lab.deps, lab.deps.config.nodes[1]!, 2000);
    return o.reachable && !o.walReceiver ? true : undefined;
  });
  const acked = await writeThroughPgpool(lab, 200);
  const [on1, on2] = [await rowsOn(lab, 1), await rowsOn(lab, 2)];
  t.true(on2.length > on1.length, `node 2 (${on2.length} rows) must be ahead of node 1 (${on1.length})`);
  const o1 = await observeNode(lab.deps, lab.deps.config.nodes[1]!);
  const o2 = await observeNode(lab.deps, lab.deps.config.nodes[2]!);
  if (!o1.reachable || !o2.reachable) throw new Error('both standbys must answer before the kill');
  t.true(o2.receiveLsn! > o1.receiveLsn!, 'node 2 has received more WAL');

  killPostmaster(lab.nodes[0]!);
  const s = await waitRedundantWithout(lab, 0);
  t.is(s.primary, 2, 'the most advanced standby is the new primary, not pgpool\'s %m');
  const present = new Set(await rowsOn(lab, 2));
  t.deepEqual(acked.filter((seq) => !present.has(seq)), [], 'acknowledged rows lost');
  t.deepEqual([...on1, ...on2].filter((seq) => !present.has(seq)), [], 'rows a standby had are lost');

  const choose = hookRecords(lab, mark).find((r) => r.hook === 'failover' && r.step === 'choose');
  t.regex(choose?.msg ?? '', new RegExp(`promoting node 2: most advanced, lsn ${formatLsn(o2.receiveLsn!).replace('/', '\\/')} > `));
  t.deepEqual(unexpectedErrors(lab, mark, NODE_DOWN_NOISE), []);
});

test.serial('a standby fails → nobody is promoted, the primary keeps its timeline, writes go on', async (t) => {
  const mark = logMark(lab);
  killPostmaster(lab.nodes[2]!);
  await waitFor('pgpool detaches node 2', 20_000, async () => {
    const s = await clusterStatus(lab);
    return s.rows[2]?.pgpoolStatus === 'down' ? s : undefined;
  });
  const done = await waitFor('the failover hook has finished', 20_000, async () => closingLines(lab, mark).find((r) => r.hook === 'failover'));
  t.regex(done.msg, /node 2 \(a standby\) lost: promoted nobody; slot maas_ha_node_2 kept/);
  const s = await clusterStatus(lab);
  t.is(s.primary, 0);
  t.is(s.rows[0]!.timeline, 1);
  t.is(s.rows[1]!.pgRole, 'standby');
  t.true((await writeThroughPgpool(lab, 20)).length === 20);
  t.false(hookRecords(lab, mark).some((r) => r.step === 'promote'));
  t.deepEqual(unexpectedErrors(lab, mark, NODE_DOWN_NOISE), []);
});

test.serial('the last synchronous standby is lost → synchronous replication is relaxed, writes never freeze; attaching a standby restores it', async (t) => {
  const mark = logMark(lab);
  const primary = { host: lab.nodes[0]!.host, port: 5432 };
  const setting = async () =>
    (await lab.deps.pg.query<{ s: string }>(primary, "SELECT current_setting('synchronous_standby_names') AS s"))[0]!.s;
  t.is(await setting(), 'ANY 1 ("pg1", "pg2")');
  const hookDone = (node: number) =>
    waitFor(`the failover hook for node ${node} has finished`, 20_000, async () =>
      closingLines(lab, mark).find((r) => r.hook === 'failover' && r.msg.includes(`node ${node} (a standby) lost`)),
    );
  killPostmaster(lab.nodes[1]!);
  const first = await hookDone(1);
  t.notRegex(first.msg, /relaxed/, 'node 2 still streams: one synchronous standby is enough for ANY 1');
  t.is(await setting(), 'ANY 1 ("pg1", "pg2")');
  const secondMark = logMark(lab);
  killPostmaster(lab.nodes[2]!);
  await hookDone(2);
  // Whichever run of the failover hook since node 2's loss saw no standby left relaxed the setting: pgpool may
  // run the hook for node 1 once more (a client's connection error) before the one for node 2, and then node 2's
  // run finds the setting already relaxed.
  const since = closingLines(lab, secondMark).filter((r) => r.hook === 'failover').map((r) => r.msg);
  t.true(
    since.some((m) => /\(a standby\) lost: promoted nobody; .*synchronous replication relaxed on node 0 \(0 standby streaming, 1 required\)/.test(m)),
    since.join('\n'),
  );
  t.is(await setting(), '');
  // With no standby left, a commit through pgpool returns at once instead of waiting for ever.
  t.is((await writeThroughPgpool(lab, 5)).length, 5);

  // Bring node 1 back as the standby it still is, and attach it as an operator would: failback restores the setting.
  const pg = postgresUser();
  const n1 = lab.nodes[1]!;
  execFileSync('setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', join(lab.o.pgBinDir, 'pg_ctl'), '-D', n1.conf, '-l', n1.log, '-w', '-t', '30', 'start'], {
    env: serviceEnv(lab.o, pg),
    timeout: 40_000,
    stdio: 'ignore',
  });
  await waitFor('node 1 streams again', 20_000, async () => {
    const o = await observeNode(lab.deps, lab.deps.config.nodes[1]!, 2000);
    return o.reachable && o.walReceiver?.status === 'streaming' ? true : undefined;
  });
  await lab.deps.pcp.attach(1);
  await waitFor('synchronous replication restored', 20_000, async () => ((await setting()) === 'ANY 1 ("pg1", "pg2")' ? true : undefined));
  const back = closingLines(lab, mark).find((r) => r.hook === 'failback');
  t.regex(back?.msg ?? '', /node 1 attached; synchronous replication restored on node 0/);
  t.deepEqual(unexpectedErrors(lab, mark, NODE_DOWN_NOISE), []);
});

test.serial('pcp_promote_node -s (switchover) → the requested standby is primary, the old primary is stopped cleanly, rewound and following', async (t) => {
  const mark = logMark(lab);
  const cfg = lab.deps.config.pcp;
  const r = await createShell().run(
    [join(cfg.bin_dir, 'pcp_promote_node'), '-h', cfg.host, '-p', String(cfg.port), '-U', cfg.user, '-w', '-s', '-n', '2'],
    { timeoutMs: 20_000, env: { PCPPASSFILE: cfg.pcppass_file, HOME: '/root' } },
  );
  t.regex(r.stdout, /Command Successful/, r.stderr);
  const s = await waitRedundant(lab, 60_000);
  t.is(s.primary, 2);
  t.deepEqual(s.rows.map((x) => x.timeline), [2, 2, 2]);
  const fence = hookRecords(lab, mark).find((x) => x.hook === 'failover' && x.step === 'fence');
  t.regex(fence?.msg ?? '', /old primary node 0: stopped-fast/);
  const follows = closingLines(lab, mark).filter((x) => x.hook === 'follow_primary').map((x) => x.msg);
  t.true(follows.some((m) => /node 0 rewound onto node 2, streaming timeline 2, attached/.test(m)), follows.join('\n'));
  t.deepEqual(unexpectedErrors(lab, mark, NODE_DOWN_NOISE), []);
});

test.serial('maas-ha switchover (the built CLI): refuses the primary itself; moves the primary to node 1, printing each change, ends redundant', async (t) => {
  const cli = (...args: string[]) => runCli([...args, '--config', lab.paths.config], 150_000);
  const refused = cli('switchover', '0');
  t.is(refused.code, 1);
  t.regex(refused.out, /node 0 is already the primary/);
  t.is(await primaryOf(), 0);
  const dryMark = logMark(lab);
  const dry = cli('switchover', '1', '--dry-run');
  t.is(dry.code, 0, dry.out);
  t.regex(dry.out, /^would switch the primary from node 0 to node 1:$/m);
  t.regex(dry.out, /rewinds node 0 and repoints node 2 to follow node 1/);
  const dryJson = cli('switchover', '1', '--dry-run', '--json');
  t.like(JSON.parse(dryJson.out) as object, { node: 1, kind: 'switch', from: 0, to: 1 });

  t.is(await primaryOf(), 0, '--dry-run changed nothing');
  t.throws(() => executedLine(lab, 'maas-ha-failover', dryMark), { message: /no execute command/ }, 'pgpool ran no failover hook for the dry runs');

  const mark = logMark(lab);
  const r = cli('switchover', '1');
  t.is(r.code, 0, r.out);
  t.regex(r.out, /asking pgpool to switch the primary from node 0 to node 1/);
  t.regex(r.out, /node 1: primary \(timeline 2\), pgpool up/);
  t.regex(r.out, /switchover done in [\d.]+ s: node 1 is the primary, nodes 0 and 2 follow it$/m);
  const s = await clusterStatus(lab);
  t.is(s.primary, 1);
  t.deepEqual(s.problems, []);
  // The hook stops the old primary before promoting, within the ssh bound (connect timeout + 5 s). On a loaded
  // two-core machine its clean shutdown (a checkpoint, the last WAL to both standbys) has outlasted that bound: the
  // hook then marks it fenced-pending, the stop completes on its own, and the switchover ends as above.
  t.deepEqual(unexpectedErrors(lab, mark, [...NODE_DOWN_NOISE, /old primary node 0 could not be stopped over ssh \(ssh timed out after \d+ ms\): marked fenced-pending/]), []);
});

test.serial('a fenced old primary cannot come back writable: the fence left standby.signal, so even a start brings it up read-only', async (t) => {
  killPostmaster(lab.nodes[0]!);
  await waitRedundantWithout(lab, 0);
  const fenced = lab.deps.state.fenced().find((f) => f.node === 0);
  t.is(fenced?.status, 'stopped');
  t.true(existsSync(join(lab.nodes[0]!.data, 'standby.signal')), 'the fence wrote standby.signal into the old primary');
  // What a reboot with PostgreSQL's autostart, or maas-ha's own start, would do: it comes up, read-only.
  await control(lab.deps, lab.deps.config.nodes[0]!, 'start', 20_000);
  const o = await waitFor('node 0 to answer', 20_000, async () => {
    const x = await observeNode(lab.deps, lab.deps.config.nodes[0]!, 2000);
    return x.reachable ? x : undefined;
  });
  t.true(o.reachable && o.inRecovery, 'the old primary came back in recovery, never writable');
});


