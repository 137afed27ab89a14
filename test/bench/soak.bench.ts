// Soak benchmark (the soak issue): `maas-ha lab soak --cycles 50` on a fresh lab of its own (3 with --quick). Its
// figures are absolute, not ratios: a count of cycles that needed no step by hand, acknowledged writes lost and
// samples with two writable nodes (the goal: 50 of 50 without a manual step, 0 lost, 0 two-primary samples), and
// the median and p90 of write unavailability and of time to full redundancy over the cycles.

import { labDown } from '../../lib/lab/lab.ts';
import { runSoak } from '../../lib/lab/soak.ts';
import { labOptions } from '../support/lab.ts';
import { result, type BenchContext, type BenchResult } from './run.ts';

const quiet = () => {};

export default async function soakBench(ctx: BenchContext): Promise<BenchResult[]> {
  const cycles = ctx.cycles < 5 ? 3 : 50;
  const o = labOptions({ name: 'bench-soak', net: 142 });
  try {
    await labDown(o, quiet, { purge: true });
    const r = await runSoak(o, cycles, (l) => ctx.say(l));
    const how = `\`maas-ha lab soak --cycles ${cycles}\` on a fresh 3-node lab: one writer through pgpool and one probe of every node every 50 ms for the whole soak; each cycle kills the primary's postmaster with SIGKILL, the hooks fail over, \`maas-ha recover\` brings the old primary back, full redundancy (synchronous commits included) before the next kill`;
    const goal = `${cycles} of ${cycles} without a manual step, 0 lost`;
    const met = r.cycles_without_manual_step === cycles && r.lost_rows === 0;
    ctx.say(`goal "${goal}": ${met ? 'met' : 'NOT met'} (${r.cycles_without_manual_step} of ${cycles} without a manual step, ${r.lost_rows} lost)`);
    const spread = (x: { median: number | null; p90: number | null }) => ({ value: x.median ?? Number.NaN, p90: x.p90 === null ? '-' : `${x.p90.toFixed(2)} s` });
    const down = spread(r.write_unavailability);
    const redundant = spread(r.time_to_redundancy);
    return [
      result({
        name: `soak: cycles without a manual step (of ${cycles})`,
        value: r.cycles_without_manual_step,
        unit: 'x',
        goal: `>= ${cycles}`,
        goalOn: 'value',
        samples: cycles,
        how: `${how}. A cycle needs a manual step when \`maas-ha recover\` fails or redundancy is not back within 180 s of the kill`,
      }),
      result({
        name: 'soak: acknowledged writes lost',
        value: r.lost_rows,
        unit: 'x',
        goal: '<= 0',
        goalOn: 'value',
        samples: r.acknowledged_rows,
        how: `${how}. Every acknowledged row looked for on the final primary and on each standby once it replayed that far`,
      }),
      result({
        name: 'soak: probe samples with two writable nodes',
        value: r.two_primary_samples,
        unit: 'x',
        goal: '<= 0',
        goalOn: 'value',
        samples: cycles,
        how: `${how}. Probe ticks in which more than one node answered pg_is_in_recovery() = false`,
      }),
      result({
        name: `soak: kill -9 → writes back (p90 ${down.p90})`,
        value: down.value,
        unit: 's',
        samples: r.cycles.filter((c) => c.writes_back !== null).length,
        how: `${how}. Seconds from the kill until the promoted node acknowledged the first write sent after it, median (p90 in the name)`,
      }),
      result({
        name: `soak: kill -9 → full redundancy, maas-ha recover included (p90 ${redundant.p90})`,
        value: redundant.value,
        unit: 's',
        samples: r.cycles.filter((c) => c.manual === null).length,
        how: `${how}. Seconds from the kill until every node is again a streaming standby attached in pgpool with synchronous commits, median over the cycles without a manual step (p90 in the name)`,
      }),
    ];
  } finally {
    await labDown(o, quiet, { purge: true });
  }
}
