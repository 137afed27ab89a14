// Stand-ins for what MAAS itself would run, for the VIP lab only (MAAS is not installable here): an HTTP service
// answering the region API's version endpoint in place of regiond, a webhook sink in the client namespace that
// records maas-ha's notifications as JSON lines, and the lab's "service manager": start/stop/restart of the
// stand-in regiond, squid (maas-proxy) and the two bind9 instances, with pid files, run as root through the
// sudoers drop-in exactly like `systemctl restart maas-regiond` would be in production.

import { spawn } from 'node:child_process';
import { appendFileSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { createShell } from '../adapters/exec.ts';
import { createNet } from '../adapters/net.ts';
import { OperationError } from '../errors.ts';
import { readPid, waitFor } from './lab.ts';
import {
  API_PORT,
  FENCED_USER,
  MASTER_RNDC_PORT,
  PROXY_PORT,
  SLAVE_RNDC_PORT,
  addr,
  hostPaths,
  vipPaths,
  type LabService,
  type RcName,
  type VipLabOptions,
} from './vip-layout.ts';

/** The MAAS API version endpoint, answered with which region controller served it (the tests read that). */
export function serveApi(host: string, port: number): void {
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.split('?')[0] === '/MAAS/api/2.0/version/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ capabilities: ['networks-management', 'static-ipaddresses'], version: '3.4.0', subversion: `lab stand-in on ${host}` }));
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

async function stop(o: VipLabOptions, h: RcName, s: LabService): Promise<void> {
  const file = pidFile(o, h, s);
  const pid = readPid(file);
  if (!pid) return;
  process.kill(pid, 'SIGTERM');
  try {
    await waitFor(`${s} on ${h} to stop`, 10_000, async () => (readPid(file) === pid ? undefined : true), 50);
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  rmSync(file, { force: true });
}

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
