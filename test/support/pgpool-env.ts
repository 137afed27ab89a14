// The fake pgpool environment: runs a built hook (dist/bin) exactly the way pgpool-II 4.3 runs it, against a
// scripted world, so every hook can be tested in well under a second without PostgreSQL, pgpool or sshd.
//
// "Exactly the way pgpool runs it" (docs/pgpool-hooks.md, "Who runs what, where"), for failover_command,
// follow_primary_command and failback_command:
// - the setting's value comes from pgpool/hooks.conf, rendered for dist/bin with renderHookLines (the very text
//   `maas-ha config render-pgpool` prints), and is expanded as pgpool's trigger_failover_command() does
//   (test/support/pgpool-expand.ts: values pasted unquoted, `""` for a node that does not exist);
// - the result goes to `/bin/sh -c` (pgpool uses system()), as the postgres user with its groups
//   (setpriv --init-groups; Debian's unit has User=postgres), cwd /, umask 0022, stdin /dev/null, and the
//   environment systemd gives a service: PATH, HOME=/var/lib/postgresql, USER and LOGNAME=postgres — plus
//   MAAS_HA_CONFIG pointing at the harness's config, since there is no /etc/maas-ha here;
// - pgpool waits for it with no timeout; the harness has one (a hook that hangs fails its test instead of it).
// test/hook/harness.test.ts checks these claims with a probe executable.
//
// The scripted world:
// - each PostgreSQL node is a FakeNode (test/support/fake-pg.ts) on its cluster's own loopback address, with a state model;
// - the ssh client and the pcp tools named by the config are fake executables (test/support/fake-world.ts) that
//   report every call to this process: the fake ssh refuses to work without BatchMode=yes and
//   StrictHostKeyChecking=yes against maas-ha's known_hosts, identifies the node by its ssh_host, and answers
//   the remote commands of lib/pgctl.ts from the node's state (the stop script stops the fake node, and a clean
//   stop of a primary first brings its streaming standbys to its last position, as PostgreSQL's shutdown does;
//   pg_controldata prints the node's cluster state; pg_ctl promote promotes it; a start runs only behind
//   standby.signal); anything else fails loudly ("no script for the remote command"): tests add answers with
//   world.script('ssh', …). The fake pcp tools model pgpool's node status (FakePcp).
// - the config is a real maas-ha.yaml in a temp dir, validated by the real loader before any hook runs, with
//   secret files 0600 owned by postgres and a state_dir postgres can write.
//
// Besides the shell line, three other ways pgpool gets a program run are available for the recovery and VIP
// hooks (small, documented, probed by test/hook/harness.test.ts):
// - runRecovery: as the pgpool_recovery extension runs recovery_1st_stage / pgpool_remote_start — system() inside
//   the primary's PostgreSQL backend, as postgres, cwd = that primary's data directory, umask 077
//   (docs/pgpool-hooks.md, "Online recovery");
// - runExecv: as the watchdog runs if_up_cmd / if_down_cmd / arping_cmd — no shell: `$_IP_$` substituted, split
//   on spaces (runs collapse, quotes stay literal), the first word joined to if_cmd_path/arping_path unless it
//   starts with `/`, execv; an exec failure still counts as success (exit 0), as in pgpool (docs/pgpool-hooks.md,
//   "Interface commands");
// - runLine with a line that has no placeholders is wd_escalation_command / wd_de_escalation_command: pgpool
//   runs those with system() too, with no arguments.

import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../lib/config/load.ts';
import type { Config, HookName, NodeConfig } from '../../lib/config/types.ts';
import { parsePgpoolConfLine, renderHookLines } from '../../lib/pgpool/conf.ts';
import { FakeCluster, type FakeNode, type NodeSpec, type Statement } from './fake-pg.ts';
import { FakePcp, FakeWorld, parseSshArgv, type ExecAnswer, type ExecCall, type SshInvocation } from './fake-world.ts';
import { expandHookCommand, recoveryCommandLine, remoteStartCommandLine, type Backend, type HookEvent, type RecoveryCall } from './pgpool-expand.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
/** Built by `node build.mjs` (npm test builds before ava starts). */
export const DIST_BIN = join(ROOT, 'dist', 'bin');

/** The environment systemd gives pgpool2.service (User=postgres), which pgpool's hooks inherit unchanged. */
export const SERVICE_ENV: Readonly<Record<string, string>> = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/var/lib/postgresql',
  USER: 'postgres',
  LOGNAME: 'postgres',
};

export const HOOK_SETTINGS = ['failover_command', 'follow_primary_command', 'failback_command', 'follow_master_command'] as const;
export type HookSetting = (typeof HOOK_SETTINGS)[number];

const SETTING_HOOK: Record<HookSetting, HookName> = {
  failover_command: 'failover',
  follow_primary_command: 'follow_primary',
  follow_master_command: 'follow_primary',
  failback_command: 'failback',
};

/** What pgpool knows when it fires a hook: %d, %m, %M, %P (the backends come from the config). */
export type PgpoolEvent = Omit<HookEvent, 'backends'>;

/** One pino line of a hook. */
export interface LogLine {
  level: string;
  hook?: string;
  run_id?: string;
  step?: string;
  node_id?: number;
  outcome?: string;
  duration_ms?: number;
  msg: string;
  [k: string]: unknown;
}

export interface HookRun {
  /** The command line as it reached /bin/sh -c (or the argv, for runExecv). */
  line: string;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The harness killed it (its own timeout, not the hook's budget). */
  timedOut: boolean;
  /** Its process group (the harness starts each run in a group of its own). */
  pgid: number;
  durationMs: number;
  stdout: string;
  stderr: string;
  /** stderr lines that parsed as JSON objects (the hook's log). */
  logs: LogLine[];
  /** stderr lines that did not. */
  otherStderr: string[];
  /** Calls of the fake executables during this run, in order. */
  calls: ExecCall[];
  /** Statements the fake PostgreSQL nodes received during this run, in order. */
  statements: Statement[];
}

/** The closing line of a run (step "done"), or the arguments/config error line that ended it early. */
export function closingLine(run: HookRun): LogLine | undefined {
  return run.logs.find((l) => l.step === 'done') ?? run.logs.find((l) => l.step === 'arguments' || l.step === 'config');
}

export const promotedIn = (run: HookRun): number[] => run.statements.filter((s) => /^\s*SELECT pg_promote\(/i.test(s.sql)).map((s) => s.node);

export interface EnvOptions {
  nodes: NodeSpec[];
  /** pgpool's status per node as the pcp tools report it (default: 3 for a node whose server is down, else 2). */
  pgpoolStatus?: number[];
  /** pgpool's idea of each node's role (default: the role the node starts with). */
  pgpoolRole?: ('primary' | 'standby')[];
  /** Deep-merged into the maas-ha.yaml the harness writes (arrays are replaced). */
  config?: Record<string, unknown>;
  /** Merged into nodes[id] of that file. */
  nodeConfig?: Record<number, Record<string, unknown>>;
}

export interface RunOptions {
  /** The harness's own limit (default: the hook's budget, at most 25 s, + 5 s); pgpool itself has none. */
  timeoutMs?: number;
  /** Replaces SERVICE_ENV (MAAS_HA_CONFIG is still added unless given). */
  env?: Record<string, string>;
}

interface Ids {
  uid: number;
  gid: number;
}

let ids: Ids | undefined;
/**
 * The postgres user's ids (the hooks run as postgres; the files they read must be its own). Read from
 * /etc/passwd rather than by running `id`: everything in the harness that blocks the event loop also stalls the
 * fake servers of every other test in this worker, and a stalled fake looks like a dead node.
 */
export function postgresIds(): Ids {
  if (ids) return ids;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no postgres user in /etc/passwd (apt-get install postgresql-15)');
  return (ids = { uid: Number(uid), gid: Number(gid) });
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  if (!statSync(path).isDirectory()) return;
  for (const e of readdirSync(path)) chownTree(join(path, e), uid, gid);
}

/**
 * At most this many runs at once per test worker. ava starts every test of a file together; a dozen hooks, each
 * a node process that starts more node processes (the fakes), on a 2-core machine stretch a 100 ms connect into
 * seconds, and then the hooks' own timeouts (which several tests are about) fire for reasons no test meant.
 */
const runSlots = (() => {
  const limit = availableParallelism();
  let running = 0;
  const waiting: (() => void)[] = [];
  return {
    async acquire(): Promise<() => void> {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      running++;
      return () => {
        running--;
        waiting.shift()?.();
      };
    },
  };
})();

type Plain = Record<string, unknown>;
const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);
function merge(a: Plain, b: Plain): Plain {
  const out: Plain = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Plain, v) : v;
  return out;
}

export class PgpoolEnv {
  readonly binDir: string;
  readonly stateDir: string;
  readonly configPath: string;
  config!: Config;
  pcp!: FakePcp;
  private templates = new Map<HookSetting, string>();

  private constructor(
    readonly dir: string,
    readonly cluster: FakeCluster,
    readonly world: FakeWorld,
  ) {
    this.binDir = join(dir, 'bin');
    this.stateDir = join(dir, 'state');
    this.configPath = join(dir, 'maas-ha.yaml');
  }

  /** A fresh world: fake nodes, fake executables, a validated config. Call stop() (t.teardown) when done. */
  static async start(o: EnvOptions): Promise<PgpoolEnv> {
    if (process.getuid?.() !== 0) throw new Error('the fake pgpool environment runs hooks as postgres (setpriv): run the tests as root');
    if (!existsSync(join(DIST_BIN, 'maas-ha-failover'))) throw new Error(`${DIST_BIN} has no built hooks: run node build.mjs first`);
    // mkdtemp's suffix is [A-Za-z0-9], so every path stays within the config's /^\/[A-Za-z0-9._/+@-]*$/.
    const dir = mkdtempSync(join(tmpdir(), 'maas-ha-hook-'));
    const cluster = await FakeCluster.start(o.nodes);
    mkdirSync(join(dir, 'bin'));
    const world = await FakeWorld.start(join(dir, 'bin'));
    const env = new PgpoolEnv(dir, cluster, world);
    try {
      env.setUp(o);
    } catch (err) {
      await env.stop();
      throw err;
    }
    return env;
  }

  private setUp(o: EnvOptions): void {
    const { uid, gid } = postgresIds();
    const dir = this.dir;
    const secret = (name: string, text: string) => {
      const p = join(dir, name);
      writeFileSync(p, text, { mode: 0o600 });
      chmodSync(p, 0o600);
      return p;
    };
    const identity = secret('id_ed25519', '-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n-----END OPENSSH PRIVATE KEY-----\n');
    const pcppass = secret('pcppass', 'localhost:9898:pcpadmin:pcpsecret\n');
    const knownHosts = join(dir, 'known_hosts');
    writeFileSync(knownHosts, this.cluster.nodes.map((n) => `node${n.id} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFake\n`).join(''));
    mkdirSync(this.stateDir, { mode: 0o700 });
    for (const n of this.cluster.nodes) mkdirSync(join(dir, `node${n.id}`, 'data'), { recursive: true, mode: 0o700 });

    const doc = merge(
      {
        cluster_name: 'hooktest',
        state_dir: this.stateDir,
        log_level: 'info',
        replication: { user: 'replicator', use_slots: true, drop_slot_on_standby_loss: false, synchronous: { mode: 'off', count: 1 } },
        nodes: this.cluster.nodes.map((n) =>
          merge(
            {
              id: n.id,
              hostname: n.host,
              port: n.port,
              data_directory: join(dir, `node${n.id}`, 'data'),
              bin_dir: '/usr/lib/postgresql/15/bin',
              control: { method: 'pg_ctl', log_file: join(dir, `node${n.id}`, 'postgresql.log') },
              ssh_host: `node${n.id}`,
              name: n.name,
            },
            o.nodeConfig?.[n.id] ?? {},
          ),
        ),
        ssh: { binary: join(this.binDir, 'ssh'), user: 'postgres', port: 22, identity_file: identity, known_hosts_file: knownHosts, connect_timeout_s: 5 },
        pcp: { bin_dir: this.binDir, host: 'localhost', port: 9898, user: 'pcpadmin', pcppass_file: pcppass },
        // Roomier than production's 10 s for failover and failback: a test machine running every other suite
        // too can take seconds to start a process, and a test that is not about the budget must not trip on it.
        // Tests about the budget set their own.
        budgets: { failover: 30_000, failback: 30_000 },
      },
      o.config ?? {},
    );
    writeFileSync(this.configPath, `# written by test/support/pgpool-env.ts\n${stringify(doc)}`, { mode: 0o644 });
    // The hooks read all of it as postgres, and write state_dir.
    chownTree(dir, uid, gid);
    this.config = loadConfig(this.configPath);

    this.world.install('ssh', (call) => this.ssh(call));
    this.pcp = new FakePcp(
      this.cluster.nodes.map((n, i) => ({
        host: n.host,
        port: n.port,
        status: o.pgpoolStatus?.[i] ?? (n.reach === 'down' ? 3 : 2),
        role: o.pgpoolRole?.[i] ?? n.role,
        actual: () => ({ up: n.reach === 'up', role: n.role }),
      })),
      { host: this.config.pcp.host, port: this.config.pcp.port, user: this.config.pcp.user, pcppassFile: this.config.pcp.pcppass_file },
    );
    this.pcp.install(this.world);

    const rendered = renderHookLines(readFileSync(join(ROOT, 'pgpool', 'hooks.conf'), 'utf8'), DIST_BIN);
    for (const line of rendered.split('\n')) {
      // The 3.x follow_master_command line is shipped commented out; take it as an operator would, uncommented.
      const e = parsePgpoolConfLine(line.replace(/^#(?=follow_master_command\b)/, ''));
      if (e && (HOOK_SETTINGS as readonly string[]).includes(e.key)) this.templates.set(e.key as HookSetting, e.value);
    }
  }

  node(id: number): FakeNode {
    return this.cluster.node(id);
  }

  nodeConfig(id: number): NodeConfig {
    const n = this.config.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id} in the config`);
    return n;
  }

  /** The setting's value from pgpool/hooks.conf, rendered for dist/bin: what pgpool.conf holds. */
  template(setting: HookSetting): string {
    const t = this.templates.get(setting);
    if (!t) throw new Error(`pgpool/hooks.conf has no ${setting}`);
    return t;
  }

  /** backend_hostnameN / backend_portN / backend_data_directoryN, as pgpool.conf would have them. */
  backends(): Backend[] {
    return [...this.config.nodes].sort((a, b) => a.id - b.id).map((n) => ({ hostname: n.hostname, port: n.port, dataDir: n.data_directory }));
  }

  /** The line pgpool hands to system() for this setting (or a hand-written template) and event. */
  expand(settingOrTemplate: HookSetting | string, event: PgpoolEvent): string {
    const template = (HOOK_SETTINGS as readonly string[]).includes(settingOrTemplate) ? this.template(settingOrTemplate as HookSetting) : settingOrTemplate;
    return expandHookCommand(template, { ...event, backends: this.backends() });
  }

  /** Fires a hook setting as pgpool does for `event`. */
  run(setting: HookSetting, event: PgpoolEvent, opts: RunOptions = {}): Promise<HookRun> {
    const timeoutMs = opts.timeoutMs ?? Math.min(this.config.budgets_ms[SETTING_HOOK[setting]], 25_000) + 5000;
    return this.runLine(this.expand(setting, event), { ...opts, timeoutMs });
  }

  /** Runs an already expanded command line through /bin/sh -c as pgpool's system() does (also: wd_escalation_command). */
  runLine(line: string, opts: RunOptions = {}): Promise<HookRun> {
    return this.spawnAsPostgres(line, ['/bin/sh', '-c', 'umask 022; exec /bin/sh -c "$1"', 'sh', line], '/', opts);
  }

  /**
   * As the pgpool_recovery extension runs recovery_1st_stage (sqlArgs 4..7, pgpool's version) or, with
   * `remoteStart`, pgpool_remote_start: system() in the primary's backend, cwd = its data directory, umask 077.
   * The script must exist in call.primaryDataDir and be executable by postgres.
   */
  runRecovery(call: RecoveryCall | { remoteStart: { primaryDataDir: string; remoteHost: string; remoteDataDir: string } }, sqlArgs: 3 | 4 | 5 | 6 | 7 = 7, opts: RunOptions = {}): Promise<HookRun> {
    const line =
      'remoteStart' in call
        ? remoteStartCommandLine(call.remoteStart.primaryDataDir, call.remoteStart.remoteHost, call.remoteStart.remoteDataDir)
        : recoveryCommandLine(call, sqlArgs);
    const cwd = 'remoteStart' in call ? call.remoteStart.primaryDataDir : call.primaryDataDir;
    return this.spawnAsPostgres(line, ['/bin/sh', '-c', 'umask 077; exec /bin/sh -c "$1"', 'sh', line], cwd, opts);
  }

  /**
   * As the watchdog runs if_up_cmd / if_down_cmd / arping_cmd: no shell. `pathDir` is if_cmd_path or arping_path.
   * pgpool discards stdout (captured here anyway) and counts a failed exec as success: exitCode 0.
   */
  async runExecv(command: string, o: { ip: string; pathDir: string }, opts: RunOptions = {}): Promise<HookRun & { execFailed: boolean }> {
    const words = command.replaceAll('$_IP_$', o.ip).split(' ').filter((w) => w !== '').slice(0, 23);
    if (words.length === 0) throw new Error('runExecv: empty command (pgpool refuses to start with one)');
    const path = words[0]!.startsWith('/') ? words[0]! : `${o.pathDir}/${words[0]}`;
    const run = await this.spawnAsPostgres(JSON.stringify([path, ...words.slice(1)]), [path, ...words.slice(1)], '/', opts);
    // setpriv reports a failed execv as 126/127 with its own message; pgpool's forked child would exit 0.
    const execFailed = (run.exitCode === 126 || run.exitCode === 127) && run.otherStderr.some((l) => l.startsWith('setpriv: failed to execute'));
    return { ...run, exitCode: execFailed ? 0 : run.exitCode, execFailed };
  }

  private async spawnAsPostgres(line: string, argv: string[], cwd: string, opts: RunOptions): Promise<HookRun> {
    const release = await runSlots.acquire();
    try {
      return await this.spawnNow(line, argv, cwd, opts);
    } finally {
      release();
    }
  }

  private async spawnNow(line: string, argv: string[], cwd: string, opts: RunOptions): Promise<HookRun> {
    const env = { ...(opts.env ?? SERVICE_ENV) };
    env.MAAS_HA_CONFIG ??= this.configPath;
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const seq = this.world.nextSeq;
    const stmts = this.cluster.statements.length;
    const started = performance.now();
    const child = spawn('/usr/bin/setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, so a timeout takes the hook and everything it started.
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res, rej) => {
      child.once('error', rej);
      child.once('close', (c, s) => res([c, s]));
    });
    clearTimeout(timer);
    const durationMs = Math.round(performance.now() - started);
    const logs: LogLine[] = [];
    const otherStderr: string[] = [];
    for (const l of stderr.split('\n')) {
      if (l.trim() === '') continue;
      try {
        const v = JSON.parse(l) as unknown;
        if (isPlain(v) && typeof v.msg === 'string') logs.push(v as LogLine);
        else otherStderr.push(l);
      } catch {
        otherStderr.push(l);
      }
    }
    return {
      line,
      exitCode,
      signal,
      timedOut,
      pgid: child.pid!,
      durationMs,
      stdout,
      stderr,
      logs,
      otherStderr,
      calls: this.world.callsOf(undefined, seq),
      statements: this.cluster.statements.slice(stmts),
    };
  }

  // ---- the fake ssh: the database hosts ------------------------------------------------------------------------

  /** ssh commands of a run, parsed, with the node each went to and what the remote command is (master connections left out). */
  sshCommands(run: HookRun): SshCommand[] {
    return run.calls.filter((c) => c.tool === 'ssh').map((c) => this.describeSsh(c)).filter((c) => c.kind !== 'master');
  }

  describeSsh(call: ExecCall): SshCommand {
    const inv = parseSshArgv(call.argv);
    if ('error' in inv) return { node: undefined, kind: 'invalid', error: inv.error };
    const node = this.config.nodes.find((n) => n.ssh_host === inv.host);
    return { ...inv, node: node?.id, kind: !node ? 'unknown-host' : inv.master ? 'master' : classifyRemote(inv.remoteArgv, node) };
  }

  private async ssh(call: ExecCall): Promise<ExecAnswer> {
    const d = this.describeSsh(call);
    if (d.kind === 'invalid') return { stderr: `${d.error}\nusage: ssh [-46AaCfGgKkMNnqsTtVvXxYy] ...\n`, exitCode: 255 };
    const inv = d as SshCommand & SshInvocation;
    // The strictness lib/adapters/ssh.ts promises (STYLE.md; docs/pgpool-hooks.md, "Who runs what, where": no
    // terminal): no prompts, no TOFU.
    const o = inv.options;
    const missing = [
      o.BatchMode === 'yes' ? undefined : 'BatchMode=yes',
      o.StrictHostKeyChecking === 'yes' ? undefined : 'StrictHostKeyChecking=yes',
      o.UserKnownHostsFile === this.config.ssh.known_hosts_file ? undefined : `UserKnownHostsFile=${this.config.ssh.known_hosts_file}`,
      o.ConnectTimeout ? undefined : 'ConnectTimeout',
      // Every external command has a timeout on the remote side too (lib/adapters/ssh.ts remoteBounded); a master
      // connection runs no command, but must not outlive its last session by more than a few seconds.
      inv.master ? (/^\d+$/.test(o.ControlPersist ?? '') ? undefined : 'ControlPersist=SECONDS') : inv.remoteBoundS ? undefined : 'a bound for the remote side (timeout -k K S ...)',
      inv.master && !('-f' in inv.flags) ? '-f (a master in the background)' : undefined,
    ].filter(Boolean);
    if (missing.length) return { stderr: `fake ssh: refused, the hook did not pass ${missing.join(', ')}\n`, exitCode: 255 };
    if (d.node === undefined) return { stderr: `ssh: Could not resolve hostname ${inv.host}: Name or service not known\n`, exitCode: 255 };
    const node = this.node(d.node);
    if (node.ssh === 'unreachable') return { stderr: `ssh: connect to host ${inv.host} port ${this.config.ssh.port}: No route to host\n`, exitCode: 255 };
    if (node.ssh === 'hang') return { hang: true };
    // The master logged in and went to the background; the sessions that follow are answered as commands of their own.
    if (inv.master) return { exitCode: 0 };
    const running = node.reach !== 'down';
    switch (d.kind) {
      case 'stop': {
        // lib/pgctl.ts STOP_SCRIPT prints one word; a fast stop of a running server is a clean shutdown. As a
        // fence (its 4th argument, the data directory) it also leaves standby.signal and says so on the line before.
        const fenceDir = inv.remoteArgv?.[7] ?? '';
        const signal = fenceDir === this.nodeConfig(node.id).data_directory ? 'standby-signal-written\n' : '';
        if (fenceDir) node.standbySignal = true;
        if (!running) return { stdout: `${signal}not-running\n` };
        if (node.role === 'primary') {
          // A clean shutdown writes a shutdown checkpoint and waits until the wal senders have sent everything,
          // so every standby streaming from it ends up with the same last position (docs/lab.md, "A clean stop").
          node.lsn += SHUTDOWN_CHECKPOINT_BYTES;
          for (const n of this.cluster.nodes) {
            if (n.upstream() !== node || n.walReceiver()?.status !== 'streaming') continue;
            n.receive = node.lsn;
            n.replay = node.lsn;
          }
        }
        await node.down(node.role === 'standby' ? 'shut down in recovery' : 'shut down');
        return { stdout: `${signal}stopped-fast\n` };
      }
      case 'controldata': {
        const state = running ? (node.role === 'standby' ? 'in archive recovery' : 'in production') : node.stoppedState;
        return { stdout: `pg_control version number:            1300\nDatabase cluster state:               ${state}\nLatest checkpoint's TimeLineID:       ${node.timeline}\n` };
      }
      case 'promote':
        if (!running) return { stderr: 'pg_ctl: PID file does not exist\nIs server running?\n', exitCode: 1 };
        if (node.role === 'primary') return { stderr: 'pg_ctl: cannot promote server; server is not in standby mode\n', exitCode: 1 };
        node.promote();
        return { stdout: 'waiting for server to promote.... done\nserver promoted\n' };
      case 'start-standby':
      case 'start':
        // lib/pgctl.ts START_STANDBY_SCRIPT: the start runs only when standby.signal is there.
        if (d.kind === 'start-standby' && !node.standbySignal) {
          return { stderr: `refusing to start ${this.nodeConfig(node.id).data_directory}: no standby.signal (maas-ha only starts standbys; a former primary must be rewound or rebuilt as a standby first)\n`, exitCode: 3 };
        }
        if (running) return { stderr: 'pg_ctl: another server might be running; trying to start server anyway\n', exitCode: 1 };
        await node.up();
        return { stdout: 'waiting for server to start.... done\nserver started\n' };
      default:
        return { stderr: `fake ssh ${inv.host}: no script for the remote command: ${inv.command}\n`, exitCode: 127 };
    }
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.world.stop(), this.cluster.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Size of a shutdown checkpoint WAL record in PostgreSQL 15 (what a clean stop adds after the last commit). */
const SHUTDOWN_CHECKPOINT_BYTES = 0x70n;

export type SshKind = 'master' | 'stop' | 'controldata' | 'promote' | 'start' | 'start-standby' | 'other' | 'unknown-host' | 'invalid';
export type SshCommand = (Partial<SshInvocation> & { node: number | undefined; kind: SshKind; error?: string });

/** What a remote command of lib/pgctl.ts does on `node`. */
export function classifyRemote(argv: string[], node: NodeConfig): SshKind {
  // `env PGPASSFILE=... cmd ...` runs cmd.
  const words = argv[0] === 'env' ? argv.slice(1 + argv.slice(1).findIndex((w) => !w.includes('='))) : argv;
  const [cmd, ...rest] = words;
  if (cmd === 'sh' && rest[0] === '-c' && rest[3] === `${node.data_directory}/postmaster.pid`) return 'stop';
  // The start guard: `sh -c <script checking $1/standby.signal> maas-ha <data dir> <control argv>`.
  if (cmd === 'sh' && rest[0] === '-c' && rest[3] === node.data_directory && /standby\.signal/.test(rest[1] ?? '') && classifyRemote(rest.slice(4), node) === 'start') {
    return 'start-standby';
  }
  if (cmd === `${node.bin_dir}/pg_controldata`) return 'controldata';
  const action = cmd === `${node.bin_dir}/pg_ctl` ? rest.find((a) => ['start', 'stop', 'promote', 'status'].includes(a)) : cmd === 'pg_ctlcluster' ? rest[2] : undefined;
  if (action === 'promote' || action === 'start') return action;
  return 'other';
}

/** Starts an environment and stops it when the test ends. */
export async function pgpoolEnv(t: { teardown(fn: () => Promise<void> | void): void }, o: EnvOptions): Promise<PgpoolEnv> {
  const env = await PgpoolEnv.start(o);
  t.teardown(() => env.stop());
  return env;
}
