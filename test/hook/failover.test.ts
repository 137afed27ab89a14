// maas-ha-failover as pgpool runs it (failover_command of pgpool/hooks.conf, /bin/sh -c, as postgres), with the
// argument shapes pgpool really sends (docs/pgpool-hooks.md, "Placeholders"), against fake PostgreSQL nodes, a
// fake ssh and fake pcp tools. What the hook did is read from the world: which node received pg_promote, what ssh
// was asked to do, what the closing log line says, what the exit status is.
import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OBSERVE_SQL } from '../../lib/observe.ts';
import { createStateStore } from '../../lib/adapters/state.ts';
import { formatLsn, primary, slotFor, standby } from '../support/fake-pg.ts';
import { closingLine, pgpoolEnv, postgresIds, promotedIn, type PgpoolEnv } from '../support/pgpool-env.ts';

/** node 0 was the primary and is gone; node 1 (pgpool's %m, the lowest live id) is behind node 2. */
const PRIMARY_LOST = () => [
  primary({ reach: 'down' }),
  standby({ receive: '0/3000100', replay: '0/3000100' }),
  standby({ receive: '0/3000148', replay: '0/3000148' }),
];
/** docs/pgpool-hooks.md, "Placeholders", "Primary 0 dies": %d=0 %m=1 %M=0 %P=0. */
const PRIMARY_0_DIES = { node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 };

const fenced = (env: PgpoolEnv, id: number) => {
  const p = join(env.stateDir, 'fenced', `node-${id}.json`);
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as { status: string; reason: string; timeline?: number }) : undefined;
};

test('failover: primary lost, %m behind another standby → the most advanced standby is promoted, not %m; old primary fenced', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
  t.is(env.node(2).role, 'primary');
  t.is(env.node(2).timeline, 2);
  t.is(env.node(1).role, 'standby', 'pgpool\'s %m was not touched');
  // Fencing: the stop script of lib/pgctl.ts for node 0, over ssh, and nothing else over ssh.
  t.deepEqual(env.sshCommands(run).map((c) => [c.node, c.kind]), [[0, 'stop']]);
  t.like(fenced(env, 0), { status: 'stopped', reason: 'not-running' });
  // pg_rewind of the others needs the new timeline in a checkpoint (docs/lab.md, "pg_rewind needs a checkpoint on
  // the new primary").
  const afterPromote = run.statements.slice(run.statements.findIndex((s) => /pg_promote/.test(s.sql)));
  t.true(afterPromote.some((s) => s.node === 2 && s.sql === 'CHECKPOINT'));
  const done = closingLine(run);
  t.is(done?.level, 'info');
  t.regex(done?.msg ?? '', /^failover done in [\d.]+ s: promoted node 2 \(.*most advanced.*\); old primary node 0 is down$/);
});

test('failover: the webhook gets the run as JSON (Slack-style text, timeline from primary lost to the first write accepted)', async (t) => {
  const received: Record<string, unknown>[] = [];
  const sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  t.teardown(() => sink.close());
  const url = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/hooks/maas-ha`;
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST(), config: { notify: { webhooks: [{ url }] } } });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.is(received.length, 1);
  const n = received[0] as { hook: string; outcome: string; text: string; timeline: { event: string; node?: number; xid?: string }[] };
  t.like(n, { hook: 'failover', outcome: 'ok' });
  t.regex(n.text, /^:white_check_mark: maas-ha failover: promoted node 2 \(most advanced/);
  const events = n.timeline.map((e) => e.event);
  for (const [before, after] of [['primary_lost', 'candidate_chosen'], ['candidate_chosen', 'promoted'], ['promoted', 'first_write_accepted']]) {
    t.true(events.indexOf(before!) < events.indexOf(after!) && events.indexOf(before!) >= 0, `${before} before ${after} in ${events.join(', ')}`);
  }
  t.true(events.includes('old_primary_fenced'));
  t.like(n.timeline.find((e) => e.event === 'first_write_accepted'), { node: 2 });
  t.regex(n.timeline.find((e) => e.event === 'first_write_accepted')?.xid ?? '', /^\d+$/);
});

test('failover: the chosen standby received more than it replayed → promoted only after its replay caught up', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000148', replay: '0/3000000' })] });
  // Node 2 finishes replaying by its third observation; record what it had replayed when pg_promote arrived.
  let observed = 0;
  let replayedAtPromotion: string | undefined;
  env.node(2)
    .on((sql) => sql === OBSERVE_SQL, (s, n) => {
      if (++observed === 3) n.replay = n.receive;
      return n.answer(s);
    })
    .on('pg_promote', (s, n) => {
      replayedAtPromotion = formatLsn(n.replay!);
      return n.answer(s);
    });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
  t.is(replayedAtPromotion, '0/3000148');
  t.like(run.logs.find((l) => l.step === 'catch-up'), { outcome: 'ok', node_id: 2 });
});

test('failover: old primary still running (pgpool lost it, ssh still reaches it) → stopped cleanly before anyone is promoted', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ lsn: '0/3000100' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000100' })] });
  // What node 0 looked like at the moment a promotion arrived anywhere.
  const oldPrimaryAtPromotion: string[] = [];
  for (const id of [1, 2]) {
    env.node(id).on('pg_promote', (s, n) => {
      oldPrimaryAtPromotion.push(env.node(0).reach);
      return n.answer(s);
    });
  }
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(env.sshCommands(run).map((c) => [c.node, c.kind]), [[0, 'stop']]);
  t.deepEqual(oldPrimaryAtPromotion, ['down'], 'one promotion, and node 0 was already stopped (no moment with two primaries)');
  t.deepEqual(promotedIn(run), [1], 'equal LSNs: pgpool\'s %m wins the tie');
  t.regex(closingLine(run)?.msg ?? '', /stopped old primary node 0 \(clean shutdown\)/);
});

test('failover: switchover (pcp_promote_node -s -n 2: %m = 2) while node 1 is ahead → old primary stopped cleanly, then node 2 promoted', async (t) => {
  // Before the stop node 1 is ahead of node 2; the clean shutdown brings both to the primary's last position
  // (docs/lab.md, "A clean stop"), and then pgpool's %m — the operator's choice — wins the tie.
  const env = await pgpoolEnv(t, { nodes: [primary({ lsn: '0/3000200' }), standby({ receive: '0/3000180' }), standby({ receive: '0/3000100' })] });
  const run = await env.run('failover_command', { node: 0, newMain: 2, oldMain: 0, oldPrimary: 0 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
  t.is(env.node(1).role, 'standby');
  t.regex(closingLine(run)?.msg ?? '', /promoted node 2 .*pgpool's main node wins the tie.*; stopped old primary node 0 \(clean shutdown\)$/);
});

test('failover: standby lost (%d=2, %m=0 a standby, %P=1) → nobody promoted, slot kept, nothing touched, exit 0', async (t) => {
  // docs/pgpool-hooks.md, "Placeholders", "Standby 2 dies (node 1 primary, node 0 a live standby)": %m points at a
  // standby.
  const env = await pgpoolEnv(t, { nodes: [standby({ upstream: 1 }), primary(), standby({ upstream: 1, reach: 'down' })] });
  const run = await env.run('failover_command', { node: 2, newMain: 0, oldMain: 0, oldPrimary: 1 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.is(env.node(0).role, 'standby');
  t.deepEqual(run.calls.filter((c) => c.tool === 'ssh'), [], 'a lost standby is not fenced');
  t.deepEqual(run.statements, [], 'no slot dropped, no setting changed');
  t.true(env.node(1).slots.has(slotFor(2)));
  t.regex(closingLine(run)?.msg ?? '', /node 2 \(a standby\) lost: promoted nobody; slot maas_ha_node_2 kept/);
});

test('failover: standby lost with drop_slot_on_standby_loss → its slot dropped on the primary, nobody promoted', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [standby({ upstream: 1 }), primary(), standby({ upstream: 1, reach: 'down' })],
    config: { replication: { drop_slot_on_standby_loss: true } },
  });
  const run = await env.run('failover_command', { node: 2, newMain: 0, oldMain: 0, oldPrimary: 1 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.deepEqual(run.statements.map((s) => [s.node, s.params]), [[1, [slotFor(2)]]]);
  t.false(env.node(1).slots.has(slotFor(2)));
  t.true(env.node(1).slots.has(slotFor(0)), 'the live standby\'s slot stays');
});

test('failover: the last synchronous standby lost → synchronous replication relaxed on the primary, writes keep flowing', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [primary({ synchronousStandbyNames: 'ANY 1 ("node1", "node2")' }), standby({ reach: 'down' }), standby({ reach: 'down' })],
    config: { replication: { synchronous: { mode: 'any', count: 1 } } },
  });
  const run = await env.run('failover_command', { node: 2, newMain: 0, oldMain: 0, oldPrimary: 0 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.is(env.node(0).settings.get('synchronous_standby_names'), '');
  t.regex(closingLine(run)?.msg ?? '', /synchronous replication relaxed on node 0/);
});

test('failover: primary lost with a second standby running → it is repointed to the new primary by the hook, whose commits stay synchronous (nothing acknowledged on the new primary alone)', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [
      primary({ reach: 'down', synchronousStandbyNames: 'ANY 1 ("node1", "node2")' }),
      standby({ receive: '0/3000100', replay: '0/3000100', synchronousStandbyNames: 'ANY 1 ("node1", "node2")' }),
      standby({ receive: '0/3000148', replay: '0/3000148', synchronousStandbyNames: '' }),
    ],
    config: { replication: { synchronous: { mode: 'any', count: 1 } } },
  });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
  // Node 2 inherited nothing (its auto.conf was relaxed once): the hook sets the managed value, not ''.
  t.is(env.node(2).settings.get('synchronous_standby_names'), 'ANY 1 ("node0", "node1")');
  t.regex(env.node(1).settings.get('primary_conninfo') ?? '', new RegExp(`host=${env.node(2).host.replace(/\./g, '\\.')} port=${env.node(2).port}\\b`));
  t.false(run.statements.some((s) => s.node === 2 && /synchronous_standby_names = ''/.test(s.sql)), 'never relaxed');
  t.regex(closingLine(run)?.msg ?? '', /; commits on node 2 are synchronous again \(node1 streaming\)$/);
});

test('failover: primary lost and no other standby running → synchronous replication relaxed on the new primary (writes would wait forever)', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [
      primary({ reach: 'down', synchronousStandbyNames: 'ANY 1 ("node1", "node2")' }),
      standby({ reach: 'down' }),
      standby({ receive: '0/3000148', replay: '0/3000148', synchronousStandbyNames: 'ANY 1 ("node1", "node2")' }),
    ],
    config: { replication: { synchronous: { mode: 'any', count: 1 } } },
  });
  const run = await env.run('failover_command', { node: 0, newMain: 2, oldMain: 0, oldPrimary: 0 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [2]);
  t.is(env.node(2).settings.get('synchronous_standby_names'), '');
  t.regex(closingLine(run)?.msg ?? '', /synchronous replication relaxed on node 2 \(0 standby streaming, 1 required\)/);
});

test('failover: %m = -1 (pgpool had every backend down) → the promoted node is attached through pcp, for pgpool to find it once the failover ends', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ receive: '0/3000148', replay: '0/3000148' }), standby({ reach: 'down' })] });
  const run = await env.run('failover_command', { node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), [1]);
  t.deepEqual(
    run.calls.filter((c) => c.tool.startsWith('pcp_')).map((c) => [c.tool, c.argv.slice(-2)]),
    [['pcp_attach_node', ['-n', '1']]],
  );
  t.regex(closingLine(run)?.msg ?? '', /; pgpool had no backend up: asked it to attach node 1$/);
});

test('failover: a synchronous standby lost while another still streams → synchronous setting left alone', async (t) => {
  const ssn = 'ANY 1 ("node1", "node2")';
  const env = await pgpoolEnv(t, {
    nodes: [primary({ synchronousStandbyNames: ssn }), standby(), standby({ reach: 'down' })],
    config: { replication: { synchronous: { mode: 'any', count: 1 } } },
  });
  const run = await env.run('failover_command', { node: 2, newMain: 0, oldMain: 0, oldPrimary: 0 });
  t.is(run.exitCode, 0, run.stderr);
  t.is(env.node(0).settings.get('synchronous_standby_names'), ssn);
  t.false(run.statements.some((s) => /ALTER SYSTEM/.test(s.sql)));
});

test('failover: %P = -1 (pgpool had no primary), "" for %N %S → nobody promoted, exit 0', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [standby({ upstream: null }), standby({ upstream: null, reach: 'down' }), standby({ upstream: null })] });
  const event = { node: 1, newMain: 0, oldMain: 0, oldPrimary: -1 };
  t.regex(env.expand('failover_command', event), /--old-primary "-1" --old-primary-host """" --old-primary-port """"$/);
  const run = await env.run('failover_command', event);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.deepEqual(run.calls, []);
  t.regex(closingLine(run)?.msg ?? '', /node 1 \(a standby\) lost: promoted nobody/);
});

test('failover: %m = -1 with "" for %H %r %R (no live node left) → nobody promoted, an error line says why, exit 1', async (t) => {
  const env = await pgpoolEnv(t, { nodes: [primary({ reach: 'down' }), standby({ reach: 'down' }), standby({ reach: 'down' })] });
  const event = { node: 0, newMain: -1, oldMain: 0, oldPrimary: 0 };
  t.regex(env.expand('failover_command', event), /--new-main "-1" --new-main-host """" --new-main-port """" --new-main-data-dir """"/);
  const run = await env.run('failover_command', event);
  t.is(run.exitCode, 1);
  t.deepEqual(promotedIn(run), []);
  const why = run.logs.find((l) => l.level === 'error' && l.step === 'choose');
  t.regex(why?.msg ?? '', /^no standby fit for promotion: node 1 unreachable \(.*ECONNREFUSED.*\); node 2 unreachable/);
  t.is(closingLine(run)?.level, 'error');
});

test('failover: no fit standby (%m=1 but every standby unreachable or not a candidate) → nobody promoted, error line, exit 1', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [primary({ reach: 'down' }), standby({ reach: 'down' }), standby()],
    nodeConfig: { 2: { candidate: false } },
  });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 1);
  t.deepEqual(promotedIn(run), []);
  t.is(env.node(2).role, 'standby');
  const done = closingLine(run);
  t.is(done?.level, 'error');
  t.regex(done?.msg ?? '', /primary node 0 lost and no standby fit for promotion \(node 1 unreachable .*; node 2 has candidate: false\)/);
});

test('failover: a black-holed standby (%m) → the hook still finishes within its configured budget and promotes the other', async (t) => {
  const budget = 10_000; // production's default
  const env = await pgpoolEnv(t, {
    nodes: [primary({ reach: 'down' }), standby({ reach: 'blackhole' }), standby({ receive: '0/3000100' })],
    config: { budgets: { failover: budget } },
  });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  // The hook's own clock (from its start, as its budget guard counts), not the harness's, which adds node's start-up.
  const took = closingLine(run)?.duration_ms ?? Infinity;
  t.true(took < budget, `finished in ${took} ms, budget ${budget} ms`);
  t.deepEqual(promotedIn(run), [2]);
  t.false(run.logs.some((l) => l.step === 'budget'), 'finished by itself, not by the budget guard');
  t.regex(run.logs.find((l) => l.step === 'observe' && l.node_id === 1)?.msg ?? '', /^node 1: unreachable/);
});

test('failover: the old primary\'s host hangs on ssh → fenced-pending recorded, promotion still done within budget', async (t) => {
  const budget = 6000;
  const env = await pgpoolEnv(t, {
    nodes: [primary({ reach: 'down', ssh: 'hang' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000100' })],
    config: { budgets: { failover: budget } },
  });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  const took = closingLine(run)?.duration_ms ?? Infinity;
  t.true(took < budget, `finished in ${took} ms, budget ${budget} ms`);
  t.false(run.logs.some((l) => l.step === 'budget'));
  t.deepEqual(promotedIn(run), [1]);
  t.is(fenced(env, 0)?.status, 'pending');
  t.regex(closingLine(run)?.msg ?? '', /old primary node 0 unreachable over ssh: fenced-pending/);
});

test('failover: pg_promote and the ssh fallback both hang → exit 1 within the budget, the error says both timed out', async (t) => {
  const budget = 4000;
  const env = await pgpoolEnv(t, {
    nodes: [primary({ reach: 'down' }), standby({ receive: '0/3000100' }), standby({ receive: '0/3000148' })],
    config: { budgets: { failover: budget } },
  });
  env.node(2).on('pg_promote', { hang: true });
  env.world.script('ssh', (c) => env.describeSsh(c).node === 2, { hang: true });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 1);
  const done = closingLine(run);
  t.regex(done?.msg ?? '', /promotion of node 2 failed: .*no answer within \d+ ms; then .*promote over ssh timed out after \d+ ms/);
  t.true((done?.duration_ms ?? Infinity) < budget, `finished in ${done?.duration_ms} ms, budget ${budget} ms`);
  t.false(run.logs.some((l) => l.step === 'budget'), 'finished by itself, not by the budget guard');
});

test('failover: a second run with the same arguments after success → no second promotion', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  const first = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(first.exitCode, 0, first.stderr);
  const second = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(promotedIn(first), [2]);
  t.deepEqual(promotedIn(second), []);
  t.deepEqual(env.cluster.promoted(), [2]);
  t.is(env.node(2).timeline, 2, 'no further timeline');
  t.regex(closingLine(second)?.msg ?? '', /node 2 is already primary, nothing promoted/);
});

test('failover: two pgpools without watchdog fire the same failover at once → one promotion (pitfall 20)', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  const runs = await Promise.all([env.run('failover_command', PRIMARY_0_DIES), env.run('failover_command', PRIMARY_0_DIES)]);
  t.deepEqual(runs.map((r) => r.exitCode), [0, 0]);
  t.deepEqual(env.cluster.promoted(), [2]);
  t.is(env.cluster.nodes.filter((n) => n.role === 'primary' && n.reach === 'up').length, 1);
});

test('failover: garbage arguments (--failed-node x) → exit 2, the log line names --failed-node, nothing touched', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  const handWritten = env.template('failover_command').replace('--failed-node "%d"', '--failed-node x');
  const run = await env.runLine(env.expand(handWritten, PRIMARY_0_DIES));
  t.is(run.exitCode, 2);
  const line = closingLine(run);
  t.is(line?.step, 'arguments');
  t.is(line?.level, 'error');
  t.regex(line?.msg ?? '', /^--failed-node: expected a node id \(0 to 127\), got "x"$/);
  t.deepEqual(run.calls, []);
  t.deepEqual(run.statements, []);
});

// ---- the failover-safety faults: each reproduces what broke, then what must happen instead ----------------------

/** Writes an earlier run's journal lines as the hook (postgres) would have. */
function plantJournal(env: PgpoolEnv, failed: number, lines: Record<string, unknown>[]): void {
  const dir = join(env.stateDir, 'journal');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `failover-node${failed}.jsonl`);
  writeFileSync(file, lines.map((l) => `${JSON.stringify({ at: new Date().toISOString(), ...l })}\n`).join(''), { mode: 0o600 });
  const { uid, gid } = postgresIds();
  chownSync(dir, uid, gid);
  chownSync(file, uid, gid);
}

test('failover: a stale primary (old primary restarted writable on timeline 3) is never adopted → fenced, the standby on timeline 5 promoted', async (t) => {
  // Node 1 was fenced long ago and started by hand without standby.signal: writable on its old timeline 3. Node 0,
  // the real primary on timeline 5, dies; node 2 streamed it and holds every acknowledged write.
  const env = await pgpoolEnv(t, {
    nodes: [
      primary({ reach: 'down', timeline: 5, lsn: '0/9000000' }),
      primary({ timeline: 3, lsn: '0/7000000' }),
      standby({ timeline: 5, checkpointTimeline: 3, receive: '0/9000000', upstream: 0 }),
    ],
  });
  const run = await env.run('failover_command', { node: 0, newMain: 1, oldMain: 0, oldPrimary: 0 });
  t.deepEqual(promotedIn(run), [2], 'the standby with the newest data is promoted, not the stale node');
  t.is(env.node(2).role, 'primary');
  t.is(env.node(1).reach, 'down', 'the stale writable node is stopped');
  t.true(env.node(1).standbySignal, 'and can only come back as a standby');
  const stops = env.sshCommands(run).filter((c) => c.kind === 'stop').map((c) => c.node);
  t.deepEqual(stops.sort(), [0, 1]);
  t.true(run.logs.some((l) => l.step === 'split-brain' && l.level === 'error' && /node 1 accepts writes on timeline 3, but node 2 is on timeline 5/.test(l.msg)), 'the log says split brain');
  t.regex(closingLine(run)?.msg ?? '', /promoted node 2 .*split brain: stopped stale primary node 1/);
});

test('failover: stale checkpoint timelines never outrank WAL → the standby holding the most WAL is promoted (IDENTIFY_SYSTEM says both replay timeline 25)', async (t) => {
  // The incident: node 1's last restartpoint says timeline 24, node 2's says 5, both stream timeline 25; node 2
  // has WAL that node 1 lacks. Ranking by the checkpoint's timeline promoted node 1 and rewound node 2 onto it.
  const env = await pgpoolEnv(t, {
    nodes: [
      primary({ reach: 'down', timeline: 25 }),
      standby({ timeline: 25, checkpointTimeline: 24, receive: '0/A4F00E0' }),
      standby({ timeline: 25, checkpointTimeline: 5, receive: '0/A4F0190' }),
    ],
  });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.deepEqual(promotedIn(run), [2]);
  t.regex(closingLine(run)?.msg ?? '', /promoted node 2 \(most advanced, lsn 0\/A4F0190 > 0\/A4F00E0 of node 1\)/);
  t.true(run.statements.some((s) => s.node === 2 && s.sql === 'IDENTIFY_SYSTEM' && s.session.replication === 'database'));
});

test('failover: a standby that cannot be asked its timeline (IDENTIFY_SYSTEM refused) → ranked by WAL position only, and the log says so', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [primary({ reach: 'down', timeline: 7 }), standby({ timeline: 7, checkpointTimeline: 6, receive: '0/5000100' }), standby({ timeline: 7, checkpointTimeline: 2, receive: '0/5000200' })],
  });
  for (const id of [1, 2]) env.node(id).on(/^IDENTIFY_SYSTEM$/, { error: 'no pg_hba.conf entry for replication connection', code: '28000' });
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.deepEqual(promotedIn(run), [2]);
  t.true(run.logs.some((l) => l.step === 'observe' && /timeline 6 \(from its last checkpoint: unsure\)/.test(l.msg)));
});

test('failover: a stale journal (an unfinished run had "fenced: not-running") does not skip fencing an old primary that runs again', async (t) => {
  // An earlier failover of node 0 ended without `done`; since then node 0 was brought back and runs as the
  // primary; pgpool now fails it over again. The old journal must not spare it the stop.
  const env = await pgpoolEnv(t, { nodes: [primary({ lsn: '0/3000200' }), standby({ receive: '0/3000200' }), standby({ receive: '0/3000200' })] });
  plantJournal(env, 0, [
    { run_id: 'old-run', failed: 0, old_primary: 0, step: 'started' },
    { run_id: 'old-run', failed: 0, old_primary: 0, step: 'fenced', node: 0, outcome: 'not-running' },
  ]);
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.true(env.sshCommands(run).some((c) => c.node === 0 && c.kind === 'stop'), 'the old primary is stopped again');
  t.is(env.node(0).reach, 'down');
  t.is(promotedIn(run).length, 1);
  const firstStop = run.calls.findIndex((c) => c.tool === 'ssh');
  const promoteAt = run.statements.findIndex((s) => /pg_promote/.test(s.sql));
  t.true(firstStop >= 0 && promoteAt >= 0);
  t.is(env.cluster.nodes.filter((n) => n.role === 'primary' && n.reach === 'up').length, 1, 'never two writable primaries');
});

test('failover: the fence leaves standby.signal in the old primary, so a reboot cannot bring it back writable', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  env.node(0).standbySignal = false;
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.true(env.node(0).standbySignal);
  t.true(run.logs.some((l) => l.step === 'fence' && /standby\.signal written/.test(l.msg)));
  // The marker records the timeline the cluster was on: a later promotion of node 0 (a newer one) outdates it.
  t.like(fenced(env, 0), { status: 'stopped', timeline: 1 });
});

test('failover: switchover to a node behind (pcp_promote_node -s -n 2, node 2 not streaming) → nobody else promoted, the line says why', async (t) => {
  // Node 2 does not stream (no upstream): the clean stop brings node 1 to the last position, node 2 stays behind.
  // pgpool records node 2 as the primary whatever the hook does: promoting node 1 would leave pgpool writing to a standby.
  const env = await pgpoolEnv(t, { nodes: [primary({ lsn: '0/3000200' }), standby({ receive: '0/3000180' }), standby({ receive: '0/3000100', upstream: null })] });
  const run = await env.run('failover_command', { node: 0, newMain: 2, oldMain: 0, oldPrimary: 0 });
  t.deepEqual(promotedIn(run), [], 'node 1 (ahead) is not promoted in node 2\'s place');
  t.is(run.exitCode, 1);
  t.regex(closingLine(run)?.msg ?? '', /pgpool's new main node 2 .*behind node 1.*did not catch up: promoting nobody/);
});

// Maintenance (lib/maintenance.ts): the marks are set as the operator sets them (the CLI, here as root, writing
// into postgres's state_dir) and read by the hook as postgres.
const setMark = (env: PgpoolEnv, node?: number) =>
  createStateStore(env.stateDir, { now: () => Date.now(), sleep: async () => {} }, { cluster: 'hooktest' }).setMaintenance({
    ...(node === undefined ? {} : { node }),
    by: 'root@test',
    since: new Date().toISOString(),
    reason: 'planned work',
  });

test('failover: the cluster in maintenance, primary lost → nothing at all: no fence, no promotion, no statement; exit 0, "in maintenance"', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  setMark(env);
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.deepEqual(run.calls.filter((c) => c.tool === 'ssh'), [], 'the old primary is not fenced');
  t.deepEqual(run.statements, [], 'no node was asked anything that changes it');
  t.is(fenced(env, 0), undefined);
  t.regex(closingLine(run)?.msg ?? '', /in maintenance: the cluster is in maintenance \(since .* by root@test: planned work\): failover does nothing; pgpool has detached node 0/);
});

test('failover: a standby in maintenance lost with drop_slot_on_standby_loss → its slot kept for its return, nobody promoted, "in maintenance"', async (t) => {
  const env = await pgpoolEnv(t, {
    nodes: [standby({ upstream: 1 }), primary(), standby({ upstream: 1, reach: 'down' })],
    config: { replication: { drop_slot_on_standby_loss: true } },
  });
  setMark(env, 2);
  const run = await env.run('failover_command', { node: 2, newMain: 0, oldMain: 0, oldPrimary: 1 });
  t.is(run.exitCode, 0, run.stderr);
  t.deepEqual(promotedIn(run), []);
  t.deepEqual(run.statements, [], 'no slot dropped');
  t.true(env.node(1).slots.has(slotFor(2)));
  t.regex(closingLine(run)?.msg ?? '', /node 2 \(a standby\) lost: promoted nobody; node 2 is in maintenance/);
});

test('failover: primary lost, the most advanced standby in maintenance → nobody promoted rather than lose its WAL; the reason names it', async (t) => {
  const env = await pgpoolEnv(t, { nodes: PRIMARY_LOST() });
  setMark(env, 2);
  const run = await env.run('failover_command', PRIMARY_0_DIES);
  t.deepEqual(promotedIn(run), []);
  t.is(env.node(1).role, 'standby');
  t.regex(closingLine(run)?.msg ?? '', /node 2 is in maintenance and holds more WAL \(lsn 0\/3000148\) than node 1 \(0\/3000100\)/);
});
