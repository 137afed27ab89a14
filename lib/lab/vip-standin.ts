// Stand-ins for what MAAS itself would run, for the VIP lab only (MAAS is not installable here): an HTTP service
// answering the region API's version endpoint (and /MAAS/rpc/, what a rack asks first) in place of regiond, a
// rack controller stand-in in the client namespace (runRackd), a webhook sink in the client namespace that
// records maas-ha's notifications as JSON lines, and the lab's "service manager": start/stop/restart of the
// stand-in regiond, squid (maas-proxy) and the two bind9 instances, with pid files, run as root through the
// sudoers drop-in exactly like `systemctl restart maas-regiond` would be in production.

import { spawn } from 'node:child_process';
import { appendFileSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { createShell } from '../adapters/exec.ts';
import { createNet } from '../adapters/net.ts';
import { OperationError, messageOf } from '../errors.ts';
import { defaultMaas, rackLayout } from '../maas/layout.ts';
import { judgeRpcAnswer, parseIdentity, rpcUrl, type IdentityTexts } from '../maas/rack.ts';
import { readPid, stopByPidFile } from '../adapters/pid-file.ts';
import { waitFor } from './lab.ts';
import {
  API_PORT,
  CLUSTER_FLAVOUR,
  FENCED_USER,
  MASTER_RNDC_PORT,
  PROXY_PORT,
  SLAVE_RNDC_PORT,
  addr,
  clusterPaths,
  hostPaths,
  vipPaths,
  type LabService,
  type RcName,
  type VipLabOptions,
} from './vip-layout.ts';

/** The MAAS API version endpoint, answered with which region controller served it (the tests read that). */
export function serveApi(host: string, port: number): void {
  const server = createServer((req, res) => {
    const path = req.url?.split('?')[0];
    if (req.method === 'GET' && path === '/MAAS/api/2.0/version/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ capabilities: ['networks-management', 'static-ipaddresses'], version: '3.4.0', subversion: `lab stand-in on ${host}` }));
    } else if (req.method === 'GET' && path === '/MAAS/rpc/') {
      // What a rack controller asks first: the region's event loops and where they listen (one, on the address
      // the question arrived on).
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ eventloops: { [`${host}:pid=${process.pid}`]: [[req.socket.localAddress, 5250]] } }));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  });
  server.listen(port, '0.0.0.0');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

/** Records each POSTed JSON body as one line. */
export function serveSink(port: number, out: string): void {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        appendFileSync(out, `${JSON.stringify(JSON.parse(Buffer.concat(chunks).toString('utf8')))}\n`);
        res.writeHead(204);
      } catch {
        res.writeHead(400);
      }
      res.end();
    });
  });
  server.listen(port, '0.0.0.0');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

const shell = createShell();

function pidFile(o: VipLabOptions, h: RcName, s: LabService): string {
  return join(hostPaths(o.dir, h).svc(s), 'service.pid');
}

/** Starts a daemon in its own session, output to a log file: the caller (a hook's sudo) never waits on its pipes. */
function daemon(argv: string[], log: string, pidPath: string): void {
  const fd = openSync(log, 'a');
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ['ignore', fd, fd], cwd: '/' });
  closeSync(fd);
  if (child.pid === undefined) throw new OperationError(`${argv[0]} did not start`);
  writeFileSync(pidPath, `${child.pid}\n`);
  child.unref();
}

/** SIGTERM, SIGKILL after 10 s; the stand-ins leave their pid file behind, so it is removed here. */
const stopDaemon = (file: string) => stopByPidFile(file, { signal: 'SIGTERM', graceMs: 10_000, everyMs: 50, removeFile: true });
const stop = (o: VipLabOptions, h: RcName, s: LabService) => stopDaemon(pidFile(o, h, s));

async function start(o: VipLabOptions, h: RcName, s: LabService): Promise<void> {
  const p = vipPaths(o.dir);
  const d = hostPaths(o.dir, h).svc(s);
  mkdirSync(d, { recursive: true });
  const net = createNet();
  switch (s) {
    case 'maas-regiond': {
      // As the fenced user: the fence is about what the region services can reach.
      daemon(['setpriv', `--reuid=${FENCED_USER}`, '--regid=nogroup', '--clear-groups', join(p.bin, 'maas-ha'), 'lab', 'vip', 'serve-api', '--host', h, '--port', String(API_PORT)], join(d, 'api.log'), pidFile(o, h, s));
      await waitFor(`stand-in regiond on ${h}`, 10_000, async () => (await net.httpGet(`http://127.0.0.1:${API_PORT}/MAAS/api/2.0/version/`, 1000)).status === 200, 50);
      return;
    }
    case 'maas-proxy': {
      const proxyUid = Number(readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('proxy:'))?.split(':')[2]);
      if (Number.isInteger(proxyUid)) chownSync(d, proxyUid, proxyUid);
      daemon(['/usr/sbin/squid', '-N', '-f', join(d, 'squid.conf')], join(d, 'squid.out'), pidFile(o, h, s));
      await waitFor(`squid on ${h}`, 15_000, async () => (await net.tcpConnect('127.0.0.1', PROXY_PORT, 1000), true), 100);
      return;
    }
    case 'bind9':
    case 'dns-slave': {
      daemon(['/usr/sbin/named', '-f', '-n', '1', '-c', join(d, 'named.conf')], join(d, 'named.out'), pidFile(o, h, s));
      const [server, port] = s === 'bind9' ? ['127.0.0.1', MASTER_RNDC_PORT] : [addr(o, h), SLAVE_RNDC_PORT];
      await waitFor(`named (${s}) on ${h}`, 15_000, async () => {
        const r = await shell.run(['/usr/sbin/rndc', '-s', server, '-p', String(port), '-k', p.rndcKey, 'status'], { timeoutMs: 3000 });
        return r.exitCode === 0 ? true : undefined;
      }, 100);
      return;
    }
  }
}

/** `maas-ha lab vip service ACTION NAME --dir D --host rcN` (as root, in rcN's namespace). */
export async function labService(o: VipLabOptions, h: RcName, s: LabService, action: 'start' | 'stop' | 'restart' | 'status'): Promise<string> {
  // A test breaks a service on purpose by leaving a marker: its restart then fails like a unit that will not start.
  if (action === 'restart' && existsSync(join(hostPaths(o.dir, h).broken, s))) throw new OperationError(`${s} on ${h} is broken on purpose (lab marker)`);
  if (action === 'status') return readPid(pidFile(o, h, s)) ? 'running' : 'stopped';
  if (action === 'stop' || action === 'restart') await stop(o, h, s);
  if (action === 'start' || action === 'restart') await start(o, h, s);
  return `${s} on ${h}: ${action} done`;
}

// ---- the cluster (rack) controller stand-in, in the client namespace

/** What the rack stand-in saw last: whether the region its maas_url names answered with event loops. */
export interface RackdStatus {
  pid: number;
  at: string;
  url: string | null;
  connected: boolean;
  detail: string;
  /** false on its last record: it gave up (no identity) and exits. */
  running: boolean;
}

export function readRackdStatus(o: Pick<VipLabOptions, 'dir' | 'net'>): RackdStatus | undefined {
  const f = clusterPaths(o).rackdStatus;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as RackdStatus;
  } catch {
    return undefined;
  }
}

/**
 * The rack stand-in (`maas-ha lab vip rackd run`): reads its identity files as rackd does at start (maas_url from
 * rackd.conf, the shared secret) and asks `<maas_url>/rpc/` for the region's event loops every 200 ms, recording
 * each answer in its status file. Without a maas_url or a secret it records why and exits 1, as rackd will not
 * run without them.
 */
export async function runRackd(o: Pick<VipLabOptions, 'dir' | 'net'>): Promise<number> {
  const c = clusterPaths(o);
  const texts: IdentityTexts = {};
  for (const f of rackLayout(defaultMaas({ flavour: CLUSTER_FLAVOUR, root: c.root })).files) texts[f.kind] = existsSync(f.path) ? readFileSync(f.path, 'utf8') : undefined;
  const id = parseIdentity(texts);
  const url = id.maasUrls?.[0] ?? null;
  const record = (connected: boolean, detail: string, running = true) => {
    const tmp = `${c.rackdStatus}.${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify({ pid: process.pid, at: new Date().toISOString(), url, connected, detail, running } satisfies RackdStatus)}\n`);
    renameSync(tmp, c.rackdStatus);
  };
  if (!url || id.secret !== 'present') {
    record(false, !url ? 'no maas_url in rackd.conf' : `the shared secret is ${id.secret}`, false);
    return 1;
  }
  let stopping = false;
  process.on('SIGTERM', () => {
    stopping = true;
  });
  const net = createNet();
  while (!stopping) {
    try {
      const r = await net.httpGet(rpcUrl(url), 1000);
      const j = judgeRpcAnswer(r.status, r.body);
      record(j.ok, j.detail);
    } catch (err) {
      record(false, messageOf(err));
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return 0;
}

/**
 * What `systemctl restart maas-rackd` is in the lab (`maas-ha lab vip rackd start|stop|restart`): the stand-in
 * (re)started in the background; done once it recorded its first answer, failed when it exited (no identity).
 */
export async function labRackd(o: VipLabOptions, action: 'start' | 'stop' | 'restart'): Promise<string> {
  const c = clusterPaths(o);
  if (action === 'stop' || action === 'restart') await stopDaemon(c.rackdPid);
  if (action === 'stop') return 'rack stand-in stopped';
  mkdirSync(dirname(c.rackdPid), { recursive: true });
  daemon([join(vipPaths(o.dir).bin, 'maas-ha'), 'lab', 'vip', 'rackd', 'run', '--dir', o.dir], c.rackdLog, c.rackdPid);
  const pid = readPid(c.rackdPid);
  const s = await waitFor('the rack stand-in to record its first answer', 10_000, async () => {
    const st = readRackdStatus(o);
    if (st?.pid === pid) return st;
    return readPid(c.rackdPid) === pid ? undefined : { pid: pid ?? 0, at: '', url: null, connected: false, detail: 'exited before it recorded anything', running: false };
  }, 50);
  if (!s.running || readPid(c.rackdPid) !== pid) {
    rmSync(c.rackdPid, { force: true });
    throw new OperationError(`the rack stand-in did not start: ${s.detail}`);
  }
  return `rack stand-in running (pid ${pid}): ${s.connected ? 'connected' : 'not connected'} to ${s.url}: ${s.detail}`;
}
