// The lab itself, end to end: what `maas-ha lab up` builds is a real cluster wired the way production is.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createShell } from '../../lib/adapters/exec.ts';
import { createSsh } from '../../lib/adapters/ssh.ts';
import { renderHookLines } from '../../lib/pgpool/conf.ts';
import { DIST_BIN, ROOT, clusterStatus, logMark, runCli, startLab, stopLab, unexpectedErrors, type TestLab } from '../support/lab.ts';

let lab: TestLab;
let mark = 0;
test.before(async () => {
  lab = await startLab({ name: 'lab', net: 101 });
  mark = logMark(lab);
});
test.after.always(async () => {
  if (lab) await stopLab(lab);
});

test.serial('lab up: one primary, every standby streams synchronously, pgpool has every node up', async (t) => {
  const s = await clusterStatus(lab);
  t.deepEqual(s.problems, []);
  t.is(s.primary, 0);
  t.deepEqual(
    s.rows.map((r) => [r.id, r.pgRole, r.pgpoolStatus, r.pgpoolRole]),
    [
      [0, 'primary', 'up', 'primary'],
      [1, 'standby', 'up', 'standby'],
      [2, 'standby', 'up', 'standby'],
    ],
  );
  for (const r of s.rows.slice(1)) t.regex(r.replication, /^streaming from 127\.0\.101\.11 \(quorum\)$/);
  t.regex(s.rows[0]!.replication, /2 standbys attached, 2 synchronous/);
});

test.serial('maas-ha status --json (the built CLI): the same cluster, for scripts', (t) => {
  const out = execFileSync(join(DIST_BIN, 'maas-ha'), ['status', '--json', '--config', lab.paths.config], { encoding: 'utf8', timeout: 20_000 });
  const s = JSON.parse(out) as { primary: number; rows: { id: number; pgRole: string; timeline: number }[]; problems: string[] };
  t.is(s.primary, 0);
  t.deepEqual(s.problems, []);
  t.deepEqual(s.rows.map((r) => [r.id, r.pgRole, r.timeline]), [[0, 'primary', 1], [1, 'standby', 1], [2, 'standby', 1]]);
  // `lab status --json` is that same document for the lab; with no lab in a directory, it says so as JSON (exit 1).
  const viaLab = JSON.parse(execFileSync(join(DIST_BIN, 'maas-ha'), ['lab', 'status', '--json', '--dir', lab.o.dir], { encoding: 'utf8', timeout: 20_000 })) as typeof s;
  t.is(viaLab.primary, 0);
  t.deepEqual(viaLab.rows.map((r) => r.id), [0, 1, 2]);
  const none = spawnSync(join(DIST_BIN, 'maas-ha'), ['lab', 'status', '--json', '--dir', join(lab.o.dir, 'no-lab-here')], { encoding: 'utf8', timeout: 20_000 });
  t.is(none.status, 1);
  t.deepEqual(JSON.parse(none.stdout), { running: false, dir: join(lab.o.dir, 'no-lab-here') });
});

test.serial('maas-ha metrics --json (the built CLI): the same gauges as the text format, for scripts', (t) => {
  const out = execFileSync(join(DIST_BIN, 'maas-ha'), ['metrics', '--json', '--config', lab.paths.config], { encoding: 'utf8', timeout: 30_000 });
  const m = JSON.parse(out) as { families: { name: string; samples: { labels: Record<string, string>; value: number }[] }[] };
  const primary = m.families.find((f) => f.name === 'maas_ha_primary');
  t.deepEqual(primary?.samples.map((x) => [x.labels.node, x.value]), [['0', 1], ['1', 0], ['2', 0]]);
  t.deepEqual(m.families.find((f) => f.name === 'maas_ha_maintenance')?.samples.map((x) => x.value), [0, 0, 0, 0], 'nothing in maintenance');
});

test.serial('maas-ha config check / config get (the built CLI): the lab configuration is valid; get prints one value', (t) => {
  const cli = (...a: string[]) => execFileSync(join(DIST_BIN, 'maas-ha'), [...a, '--config', lab.paths.config], { encoding: 'utf8', timeout: 20_000 });
  t.regex(cli('config', 'check'), new RegExp(`^${lab.paths.config}: ok \\(3 nodes: 0=127\\.0\\.101\\.11:5432, 1=127\\.0\\.101\\.12:5432, 2=127\\.0\\.101\\.13:5432\\)\nchecked copy: ${lab.paths.config}\\.checked\\.json$`, 'm'));
  t.deepEqual(JSON.parse(cli('config', 'check', '--json')), {
    ok: true,
    source: lab.paths.config,
    nodes: [0, 1, 2].map((id) => ({ id, name: `pg${id}`, hostname: `127.0.101.${11 + id}`, port: 5432 })),
    checked_copy: `${lab.paths.config}.checked.json`,
  });
  t.is(cli('config', 'get', 'state_dir').trim(), lab.paths.state);
  t.is(cli('config', 'get', 'pcp.port').trim(), '9898');
  t.throws(() => cli('config', 'get', 'nodes'), { message: /config get: nodes is not a setting with a single value/ });
});

test.serial('pgpool runs exactly the hook lines of pgpool/hooks.conf (PGPOOL SHOW, not our own file)', async (t) => {
  const expected = new Map(
    renderHookLines(readFileSync(join(ROOT, 'pgpool', 'hooks.conf'), 'utf8'), lab.paths.bin, lab.paths.config)
      .split('\n')
      .filter((l) => /^[a-z_0-9]+ = '/.test(l))
      .map((l) => {
        const [, key, value] = /^([a-z_0-9]+) = '(.*)'$/.exec(l)!;
        return [key!, value!] as const;
      }),
  );
  t.true(expected.has('failover_command') && expected.has('follow_primary_command') && expected.has('failback_command'));
  for (const [key, value] of expected) {
    const rows = await lab.deps.pg.query<{ [k: string]: string }>({ host: lab.pgpool.host, port: lab.pgpool.port }, `PGPOOL SHOW ${key}`);
    t.is(Object.values(rows[0] ?? {})[0], value, key);
  }
});

test.serial('ssh as postgres: every node answers with strict host key checking; a wrong host key is refused', async (t) => {
  const cfg = lab.deps.config.ssh;
  const shell = createShell();
  // As root the key file's owner (postgres) does not matter to ssh; what is checked here is the host key.
  const ssh = createSsh(cfg, shell);
  for (const n of lab.nodes) {
    const r = await ssh.run(n.host, ['sh', '-c', 'id -un; echo "$1"', 'sh', "it's $(not) run"], { timeoutMs: 10_000 });
    t.is(r.exitCode, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['postgres', "it's $(not) run"]);
  }
  const forged = join(lab.o.dir, 'forged_known_hosts');
  const other = execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(lab.o.dir, 'forged'), '-C', 'x'], { encoding: 'utf8' });
  t.is(other, '');
  const key = readFileSync(join(lab.o.dir, 'forged.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  writeFileSync(forged, `[${lab.nodes[0]!.host}]:${cfg.port} ${key}\n`);
  const refused = await createSsh({ ...cfg, known_hosts_file: forged }, shell).run(lab.nodes[0]!.host, ['true'], { timeoutMs: 10_000 });
  t.is(refused.exitCode, 255);
  t.regex(refused.stderr, /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
});

test.serial('maas-ha preflight (the built CLI): the lab passes; a broken copy of its pgpool.conf names each mistake', (t) => {
  const run = (conf: string) => runCli(['preflight', '--config', lab.paths.config, '--pgpool-conf', conf]);
  const good = run(lab.paths.pgpoolConf);
  t.is(good.code, 0, good.out);
  t.regex(good.out, /^preflight passed$/m);
  t.regex(good.out, /ssh node 2 +reachable with strict host keys; tools and recovery wrappers in place/);

  const broken = join(lab.o.dir, 'pgpool-broken.conf');
  writeFileSync(
    broken,
    readFileSync(lab.paths.pgpoolConf, 'utf8')
      .replace(/^health_check_period = .*$/m, 'health_check_period = 0')
      .replace(/^follow_primary_command/m, 'follow_master_command')
      .replace(/^backend_hostname1 = .*$/m, "backend_hostname1 = 'localhost'"),
  );
  const bad = run(broken);
  t.is(bad.code, 1);
  t.regex(bad.out, /FAIL +pgpool.conf +health_check_period is 0/);
  t.regex(bad.out, /FAIL +pgpool.conf +follow_master_command is set/);
  t.regex(bad.out, /FAIL +pgpool.conf +backend_hostname1 is "localhost", maas-ha says "127\.0\.101\.12"/);
  t.regex(bad.out, /^preflight FAILED: 3 problems/m);
});

test.serial('the lab logged no error while it came up and was queried', (t) => {
  t.deepEqual(unexpectedErrors(lab, mark), []);
});
