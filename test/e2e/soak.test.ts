// `maas-ha lab soak`, three cycles in CI (fifty in `npm run bench`, test/bench/soak.bench.ts): under one writer and
// one probe, the primary is killed with SIGKILL, pgpool's hooks fail over, `maas-ha recover` brings the old primary
// back and the lab is fully redundant again before the next kill, with no step by hand, no acknowledged write
// lost and never two writable nodes. The very function the CLI runs, on a lab of this file's own.
import test from 'ava';
import { runSoak } from '../../lib/lab/soak.ts';
import { startLab, stopLab, type TestLab } from '../support/lab.ts';

let lab: TestLab;

test.before(async () => {
  lab = await startLab({ name: 'soak', net: 123 });
});
test.after.always(async () => {
  if (lab) await stopLab(lab);
});

test.serial('soak: 3 × kill -9 of the primary, maas-ha recover, full redundancy → no manual step, nothing lost, one primary at a time', async (t) => {
  // About 20 s a cycle on an idle 2-core host; a loaded one has taken a minute for a single recover.
  t.timeout(400_000, 'three soak cycles');
  const lines: string[] = [];
  const r = await runSoak(lab.o, 3, (l) => {
    lines.push(l);
    t.log(l);
  });
  t.log(`${r.acknowledged_rows} acknowledged writes; write unavailability median ${r.write_unavailability.median} s, time to redundancy median ${r.time_to_redundancy.median} s`);
  t.deepEqual(r.problems, []);
  t.is(r.cycles.length, 3);
  t.is(r.cycles_without_manual_step, 3, r.cycles.map((c) => c.manual ?? 'ok').join('\n'));
  t.is(r.lost_rows, 0);
  t.is(r.two_primary_samples, 0);
  t.true(r.acknowledged_rows > 0, 'the writer had writes acknowledged, or nothing was proven');
  for (let i = 1; i <= 3; i++) {
    t.true(
      lines.some((l) => new RegExp(`^cycle ${i}/3: killed node \\d \\(primary\\), node \\d promoted, writes back after \\d+\\.\\d\\d s, redundant after \\d+\\.\\d s \\(recover: .+\\)$`).test(l)),
      `the line of cycle ${i} in:\n${lines.join('\n')}`,
    );
  }
  // The kills went round: each cycle killed the primary the one before promoted.
  for (let i = 1; i < r.cycles.length; i++) t.is<number | null, number | null>(r.cycles[i]!.killed, r.cycles[i - 1]!.promoted, `cycle ${i + 1} killed the primary cycle ${i} promoted`);
  t.true(r.ok);
});
