// Fake executables for the fake pgpool environment: the ssh client and the pcp tools that maas-ha's config names
// (ssh.binary, pcp.bin_dir), plus probes. A hook is a separate process running as postgres, so its fakes must be
// real executables; each one is a few lines of node that sends what it was called with (argv, cwd, uid/gid,
// groups, environment, umask, what stdin is) over a loopback socket to the test process and prints what the
// test process answers (stdout, stderr, exit status, after a delay — or never, to stand for a hung ssh). So the
// answers are JavaScript functions with the whole scripted world at hand (a fake ssh that stops a fake
// PostgreSQL node really makes its port refuse connections), and every call is recorded in order in the test
// process: no files to poll, no races between the recorder and the assertion.
//
// FakePcp models the part of pgpool the pcp tools talk to: node status per backend and the 4.3 output formats,
// including the trap the hooks must not fall into — the real tools exit 0 when pgpool answers with an ERROR
// (docs/pgpool-hooks.md, "PCP"; pcp_frontend_client.c: the error goes to stderr, then `return 0`).

import { chmodSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/** One call of a fake executable, as the process itself saw it. */
export interface ExecCall {
  /** Order of arrival across the whole world. */
  seq: number;
  tool: string;
  /** argv[1..] */
  argv: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  env: Record<string, string>;
  umask: number;
  /** readlink /proc/self/fd/0: "/dev/null" when nothing could be read from stdin. */
  stdin: string | null;
  at: number;
}

export interface ExecAnswer {
  stdout?: string;
  stderr?: string;
  exitCode?: number;
  delayMs?: number;
  /** Never answer: the process waits until its caller's timeout kills it. */
  hang?: boolean;
}

export type ExecHandler = (call: ExecCall) => ExecAnswer | Promise<ExecAnswer>;

interface Rule {
  tool: string;
  match: (call: ExecCall) => boolean;
  answer: ExecAnswer | ExecHandler;
  times: number;
}

/** The program every fake executable runs (CommonJS, no dependencies); {{PORT}} and {{TOOL}} are filled in. */
const CLIENT = `
const fs = require('node:fs');
const net = require('node:net');
let stdin = null;
try { stdin = fs.readlinkSync('/proc/self/fd/0'); } catch {}
const call = {
  tool: {{TOOL}}, argv: process.argv.slice(2), cwd: process.cwd(), uid: process.getuid(), gid: process.getgid(),
  groups: process.getgroups(), env: process.env, umask: process.umask(), stdin,
};
let data = '';
const s = net.connect({{PORT}}, '127.0.0.1');
s.setEncoding('utf8');
s.on('connect', () => s.end(JSON.stringify(call) + '\\n'));
s.on('data', (d) => (data += d));
s.on('error', (e) => { fs.writeSync(2, 'fake ' + call.tool + ': the test world is gone: ' + e.message + '\\n'); process.exit(255); });
s.on('close', () => {
  if (!data) { fs.writeSync(2, 'fake ' + call.tool + ': no answer from the test world\\n'); process.exit(255); }
  const a = JSON.parse(data);
  if (a.stdout) fs.writeSync(1, a.stdout);
  if (a.stderr) fs.writeSync(2, a.stderr);
  process.exit(a.exitCode ?? 0);
});
`;

export class FakeWorld {
  readonly calls: ExecCall[] = [];
  private readonly handlers = new Map<string, ExecHandler>();
  private rules: Rule[] = [];
  private readonly sockets = new Set<Socket>();
  private seq = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly binDir: string,
  ) {}

  /** Listens on 127.0.0.1 for the fake executables that `install` writes into binDir (which must exist). */
  static async start(binDir: string): Promise<FakeWorld> {
    let world: FakeWorld | undefined;
    // Half-open: the client ends its side after the request and still reads the answer.
    const server = createServer({ allowHalfOpen: true }, (socket) => world!.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    world = new FakeWorld(server, (server.address() as { port: number }).port, binDir);
    // Extensionless scripts are CommonJS only when no package.json above them says otherwise.
    writeFileSync(join(binDir, 'package.json'), '{"type":"commonjs"}\n');
    return world;
  }

  /** Writes the executable binDir/<tool> (mode 0755) answered by `handler`; returns its path. */
  install(tool: string, handler: ExecHandler): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(tool)) throw new Error(`fake tool name "${tool}"`);
    const path = join(this.binDir, tool);
    const body = CLIENT.replace('{{PORT}}', String(this.port)).replace('{{TOOL}}', JSON.stringify(tool));
    writeFileSync(path, `#!${process.execPath}\n${body}`);
    chmodSync(path, 0o755);
    this.handlers.set(tool, handler);
    return path;
  }

  /** Overrides the tool's handler for calls matching `match`, `times` times (default: always); newest rule first. */
  script(tool: string, match: (call: ExecCall) => boolean, answer: ExecAnswer | ExecHandler, times = Infinity): this {
    this.rules.unshift({ tool, match, answer, times });
    return this;
  }

  /** The calls of one tool (all tools when omitted), optionally only those from `since` (a seq) on. */
  callsOf(tool?: string, since = 0): ExecCall[] {
    return this.calls.filter((c) => c.seq >= since && (tool === undefined || c.tool === tool));
  }

  get nextSeq(): number {
    return this.seq;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private serve(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('end', async () => {
      let answer: ExecAnswer;
      try {
        const call = { ...(JSON.parse(data) as Omit<ExecCall, 'seq' | 'at'>), seq: this.seq++, at: Date.now() };
        this.calls.push(call);
        answer = await this.answer(call);
      } catch (err) {
        answer = { stderr: `fake world: ${(err as Error).message}\n`, exitCode: 70 };
      }
      if (answer.hang) return; // the socket stays open; the caller's timeout kills the process
      if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
      if (!socket.destroyed) socket.end(JSON.stringify({ stdout: answer.stdout ?? '', stderr: answer.stderr ?? '', exitCode: answer.exitCode ?? 0 }));
    });
  }

  private async answer(call: ExecCall): Promise<ExecAnswer> {
    const rule = this.rules.find((r) => r.tool === call.tool && r.times > 0 && r.match(call));
    if (rule) {
      rule.times -= 1;
      return typeof rule.answer === 'function' ? rule.answer(call) : rule.answer;
    }
    const handler = this.handlers.get(call.tool);
    if (!handler) return { stderr: `fake ${call.tool}: no handler\n`, exitCode: 127 };
    return handler(call);
  }
}

// ---- pcp -----------------------------------------------------------------------------------------------------

/** The pcp tools maas-ha may call (lib/adapters/pcp.ts). */
export const PCP_TOOLS = ['pcp_node_info', 'pcp_node_count', 'pcp_attach_node', 'pcp_detach_node', 'pcp_promote_node', 'pcp_recovery_node'] as const;
export type PcpTool = (typeof PCP_TOOLS)[number];

export interface PcpBackend {
  host: string;
  port: number;
  /** 0 init, 1 up (no connections), 2 up (pooled), 3 down. */
  status: number;
  /** What PostgreSQL says right now (PQping and pg_is_in_recovery()). */
  actual: () => { up: boolean; role: 'primary' | 'standby' };
  /** pgpool's own idea of the role. */
  role: 'primary' | 'standby';
}

export interface PcpExpect {
  host: string;
  port: number;
  user: string;
  pcppassFile: string;
}

const STATUS_NAME = ['waiting', 'up', 'up', 'down'];

/** pgpool as the pcp tools see it. */
export class FakePcp {
  constructor(
    readonly backends: PcpBackend[],
    private readonly expect: PcpExpect,
  ) {}

  /** Installs every pcp tool into the world. */
  install(world: FakeWorld): void {
    for (const tool of PCP_TOOLS) world.install(tool, (call) => this.handle(tool, call));
  }

  /** The 4.3 `pcp_node_info -n N` line: 12 fields, the last a date and a time. */
  nodeInfoLine(id: number): string {
    const b = this.backends[id]!;
    const actual = b.actual();
    return `${b.host} ${b.port} ${b.status} ${(1 / this.backends.length).toFixed(6)} ${STATUS_NAME[b.status]} ${actual.up ? 'up' : 'down'} ${b.role} ${actual.up ? actual.role : 'unknown'} 0 none none 2026-11-24 21:17:17`;
  }

  handle(tool: PcpTool, call: ExecCall): ExecAnswer {
    const opts = parsePcpArgv(call.argv);
    if ('error' in opts) return { stderr: `${tool}: ${opts.error}\n`, exitCode: 1 };
    // Without -w the 4.3 tools prompt on the terminal a hook does not have (docs/pgpool-hooks.md, "PCP").
    if (!opts.noPassword) return { stderr: 'Password: \nERROR: authentication failed for user "' + opts.user + '"\n', exitCode: 1 };
    if (opts.host !== this.expect.host || opts.port !== this.expect.port) {
      return { stderr: `ERROR: connection to host "${opts.host}" failed with error "Connection refused"\n`, exitCode: 1 };
    }
    if (opts.user !== this.expect.user || call.env.PCPPASSFILE !== this.expect.pcppassFile) {
      return { stderr: `FATAL:  authentication failed for user "${opts.user}"\nDETAIL:  username and/or password does not match\n`, exitCode: 1 };
    }
    const id = opts.node;
    const needsNode = tool !== 'pcp_node_count';
    // The server's errors: printed on stderr, exit status 0 (pcp_frontend_client.c).
    if (needsNode && (id === undefined || !this.backends[id])) return { stderr: 'ERROR: invalid node ID\n', exitCode: 0 };
    const ok = { stdout: `${tool} -- Command Successful\n` };
    switch (tool) {
      case 'pcp_node_count':
        return { stdout: `${this.backends.length}\n` };
      case 'pcp_node_info':
        return { stdout: `${this.nodeInfoLine(id!)}\n` };
      case 'pcp_attach_node':
        // pgpool queues a failback and returns; it does not check that the node is a healthy standby
        // (docs/pgpool-hooks.md, "PCP").
        this.backends[id!]!.status = 1;
        return ok;
      case 'pcp_detach_node':
        this.backends[id!]!.status = 3;
        return ok;
      case 'pcp_promote_node':
        if (this.backends[id!]!.role === 'primary') return { stderr: `ERROR: specified node is already primary node, can't promote node id ${id}\n`, exitCode: 0 };
        for (const b of this.backends) b.role = 'standby';
        this.backends[id!]!.role = 'primary';
        return ok;
      case 'pcp_recovery_node':
        if (this.backends[id!]!.status !== 3) return { stderr: `ERROR: node recovery failed, node id: ${id} is alive\n`, exitCode: 0 };
        return { stderr: 'ERROR: recovery is not modelled by the fake pcp; script it with world.script()\n', exitCode: 0 };
    }
  }
}

interface PcpOptions {
  host?: string;
  port?: number;
  user?: string;
  noPassword: boolean;
  node?: number;
}

/** The pcp tools' getopt_long options that maas-ha uses: -h -p -U -w -n (or the node id as the positional argument). */
export function parsePcpArgv(argv: string[]): PcpOptions | { error: string } {
  const o: PcpOptions = { noPassword: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`option requires an argument -- '${a.slice(1)}'`);
      return v;
    };
    try {
      if (a === '-h' || a === '--host') o.host = value();
      else if (a === '-p' || a === '--port') o.port = Number(value());
      else if (a === '-U' || a === '--username') o.user = value();
      else if (a === '-w' || a === '--no-password') o.noPassword = true;
      else if (a === '-n' || a === '--node-id') o.node = Number(value());
      else if (a === '-g' || a === '--gracefully' || a === '-s' || a === '--switchover' || a === '-v' || a === '-d') continue;
      else if (/^\d+$/.test(a)) o.node = Number(a);
      else return { error: `invalid option -- '${a}'` };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }
  return o;
}

// ---- ssh ---------------------------------------------------------------------------------------------------------

/** The parts of an OpenSSH client argv maas-ha builds (lib/adapters/ssh.ts): options, destination, remote command. */
export interface SshInvocation {
  options: Record<string, string>;
  flags: Record<string, string>;
  host: string;
  /** The remote command string, as the remote login shell would receive it. */
  command: string;
  /** That command split into words the way the remote sh would (for the quoting lib/shquote.ts produces), without
   *  the remote bound in front of it. */
  remoteArgv: string[];
  /** The remote side's own bound (`timeout -k K S …`, lib/adapters/ssh.ts remoteBounded) in seconds, if any. */
  remoteBoundS?: number;
  /** A master connection (ControlMaster=yes, -N: no command), which later commands reuse through its ControlPath. */
  master: boolean;
}

/** OpenSSH client flags that take no value (the ones maas-ha may pass). */
const SSH_BOOLEAN_FLAGS = new Set(['-N', '-f', '-n', '-q', '-T']);

export function parseSshArgv(argv: string[]): SshInvocation | { error: string } {
  const options: Record<string, string> = {};
  const flags: Record<string, string> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      i++;
      break;
    }
    if (!a.startsWith('-')) break;
    if (SSH_BOOLEAN_FLAGS.has(a)) {
      flags[a] = '';
      continue;
    }
    const v = argv[++i];
    if (v === undefined) return { error: `option requires an argument -- ${a.slice(1)}` };
    if (a === '-o') {
      const m = /^(\w+)[= ](.*)$/.exec(v);
      if (!m) return { error: `bad option ${v}` };
      options[m[1]!] = m[2]!;
    } else flags[a] = v;
  }
  const host = argv[i];
  if (host === undefined) return { error: 'no destination' };
  const command = argv.slice(i + 1).join(' ');
  const master = options.ControlMaster === 'yes' && '-N' in flags;
  if (master && command) return { error: 'a master connection (-N) with a command' };
  const words = splitShWords(command);
  if (!Array.isArray(words)) return words;
  const bounded = words[0] === 'timeout' && words[1] === '-k' && /^\d+$/.test(words[2] ?? '') && /^\d+$/.test(words[3] ?? '');
  if (!bounded) return { options, flags, host, command, remoteArgv: words, master };
  return { options, flags, host, command, remoteArgv: words.slice(4), remoteBoundS: Number(words[3]), master };
}

/** POSIX sh word splitting for plain words and '…' quoting (with '\'' for a quote): what lib/shquote.ts emits. */
export function splitShWords(s: string): string[] | { error: string } {
  const words: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) return { error: `unterminated quote in: ${s}` };
      cur = (cur ?? '') + s.slice(i + 1, end);
      i = end;
    } else if (c === '\\' && i + 1 < s.length) {
      cur = (cur ?? '') + s[++i];
    } else if (/[$`"|&;<>()*?[#~]/.test(c)) {
      return { error: `fake ssh: unquoted shell metacharacter ${JSON.stringify(c)} in the remote command: ${s}` };
    } else cur = (cur ?? '') + c;
  }
  if (cur !== undefined) words.push(cur);
  return words;
}
