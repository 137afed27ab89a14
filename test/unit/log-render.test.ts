// maas-ha's log records inside logs that pgpool and PostgreSQL also write to.
import test from 'ava';
import { logRecords, renderLogLine } from '../../lib/log-render.ts';

const OURS = '{"level":"info","time":"2026-11-25T04:33:43.175Z","hook":"failover","run_id":"r1","step":"done","outcome":"ok","duration_ms":408,"msg":"failover done in 0.41 s: promoted node 1"}';

test('logRecords: only maas-ha records, pgpool lines, broken and foreign JSON skipped, order kept', (t) => {
  const text = [
    '2026-11-25 04:33:43.370: watchdog_utility pid 8880: LOG:  watchdog escalation successful',
    OURS,
    '{"level":"info","msg":"someone else\'s JSON"}',
    '{"level":"info","hook":"failover", "msg": "cut off',
    '{"level":"warn","time":"2026-11-25T04:33:44Z","hook":"follow_primary","run_id":"r2","step":"plan","node_id":0,"msg":"node 0 is down"}',
  ].join('\n');
  t.deepEqual(
    logRecords(text).map((r) => [r.hook, r.step, r.msg]),
    [
      ['failover', 'done', 'failover done in 0.41 s: promoted node 1'],
      ['follow_primary', 'plan', 'node 0 is down'],
    ],
  );
});

test('renderLogLine: our record for people; pgpool\'s own line unchanged', (t) => {
  t.is(renderLogLine(OURS), '04:33:43.175 INFO  failover/done [ok] failover done in 0.41 s: promoted node 1 (408 ms)');
  const pgpool = '2026-11-25 04:33:43.370: watchdog_utility pid 8880: LOG:  watchdog escalation successful';
  t.is(renderLogLine(pgpool), pgpool);
});
