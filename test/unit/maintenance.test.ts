// Maintenance marks (lib/maintenance.ts, lib/adapters/state.ts): the rules every hook asks, and the files they
// live in. A damaged mark still stands (the hooks must not act on a node under planned work because a file was
// cut short); another cluster's is left out, and both are reported.
import test from 'ava';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStateStore } from '../../lib/adapters/state.ts';
import { failoverGate, followGate, maintenanceView, markedNodes, type FailoverGate } from '../../lib/maintenance.ts';
import { buildStatus } from '../../lib/status.ts';
import type { MaintenanceMark } from '../../lib/model/ports.ts';
import { testConfig } from '../support/config.ts';

const clock = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
const mark = (node?: number, reason = 'new disks'): MaintenanceMark => ({ ...(node === undefined ? {} : { node }), by: 'root@region1', since: '2026-11-30T20:00:00.000Z', reason });

function world(t: import('ava').ExecutionContext) {
  const dir = mkdtempSync(join(tmpdir(), 'maas-ha-maint-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const warnings: string[] = [];
  return { dir, warnings, store: createStateStore(dir, clock, { cluster: 'region', warn: (m) => warnings.push(m) }) };
}

test('marks: set, listed, cleared; written 0600 with the cluster name', (t) => {
  const w = world(t);
  t.deepEqual(w.store.maintenance(), []);
  w.store.setMaintenance(mark());
  w.store.setMaintenance(mark(2, 'kernel update'));
  t.deepEqual(w.store.maintenance(), [mark(), mark(2, 'kernel update')]);
  const file = join(w.dir, 'maintenance-node-2.json');
  t.is(statSync(file).mode & 0o777, 0o600);
  t.like(JSON.parse(readFileSync(file, 'utf8')), { node: 2, cluster: 'region' });
  t.true(w.store.clearMaintenance(2));
  t.false(w.store.clearMaintenance(2), 'clearing twice says there was nothing');
  t.true(w.store.clearMaintenance());
  t.deepEqual(w.store.maintenance(), []);
  t.deepEqual(w.warnings, []);
});

test('marks: a damaged mark still stands for what its name says; another cluster\'s is left out; both reported', (t) => {
  const w = world(t);
  writeFileSync(join(w.dir, 'maintenance-node-1.json'), '{"node": 1, "by": "ro', { mode: 0o600 });
  writeFileSync(join(w.dir, 'maintenance-cluster.json'), JSON.stringify({ by: 'x', since: '2026-01-01T00:00:00Z', reason: '', cluster: 'other' }), { mode: 0o600 });
  const marks = w.store.maintenance();
  t.deepEqual(markedNodes(marks), [1]);
  t.is(maintenanceView(marks).cluster, undefined);
  t.regex(w.warnings.join('\n'), /maintenance-node-1\.json is damaged: node 1 stays in maintenance/);
  t.regex(w.warnings.join('\n'), /maintenance-cluster\.json belongs to cluster "other"/);
});

test('marks: a state_dir others may write is refused, for reading and writing', (t) => {
  const w = world(t);
  w.store.setMaintenance(mark(1));
  chmodSync(w.dir, 0o777);
  t.throws(() => w.store.maintenance(), { message: /writable by group or others/ });
  t.throws(() => w.store.setMaintenance(mark(2)), { message: /writable by group or others/ });
  chmodSync(w.dir, 0o700);
});

// [title, marks, failed node, primary lost?, gate kind, why]
const gates: [string, MaintenanceMark[], number, boolean, FailoverGate['kind'], RegExp | undefined][] = [
  ['no mark → go', [], 0, true, 'go', undefined],
  ['another node marked → go', [mark(2)], 0, true, 'go', undefined],
  ['the cluster marked, primary lost → nothing at all', [mark()], 0, true, 'nothing', /cluster is in maintenance .*failover does nothing; pgpool has detached node 0/],
  ['the cluster marked, standby lost → nothing at all', [mark()], 1, false, 'nothing', /cluster is in maintenance/],
  ['the lost primary marked → no fence, no promotion', [mark(0)], 0, true, 'nothing', /node 0, the primary, is in maintenance .*fencing nothing, promoting nobody/],
  ['a marked standby lost → only what keeps writes flowing', [mark(1)], 1, false, 'standby-in-maintenance', /node 1 is in maintenance \(since 2026-11-30T20:00:00.000Z by root@region1: new disks\)/],
];
for (const [title, marks, failed, primaryLost, kind, why] of gates) {
  test(`failover gate: ${title}`, (t) => {
    const g = failoverGate(marks, failed, primaryLost);
    t.is(g.kind, kind);
    if (why) t.regex('why' in g ? g.why : '', why);
  });
}

test('follow gate: the cluster marked → every node left; a marked node left; others followed', (t) => {
  t.regex(followGate([mark()], 1) ?? '', /cluster is in maintenance .*follow does nothing; node 1 is left as it is/);
  t.regex(followGate([mark(1)], 1) ?? '', /node 1 is in maintenance .*left as it is, detached/);
  t.is(followGate([mark(1)], 2), undefined);
  t.is(followGate([], 2), undefined);
});

test('status: a cluster mark is a loud problem; a node mark says why the node is out', (t) => {
  const config = testConfig();
  const down = (id: number) => ({ id, reachable: false as const, error: 'connection refused' });
  const s = buildStatus(config, [down(0), down(1), down(2)], [], [], [mark(), mark(1)]);
  t.regex(s.problems[0]!, /^CLUSTER IN MAINTENANCE \(since .* by root@region1: new disks\): automatic failover is off/);
  t.regex(s.rows[1]!.problems.join('; '), /in maintenance .*maintenance off 1/);
  t.deepEqual(s.maintenance, [mark(), mark(1)]);
});
