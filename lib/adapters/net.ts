// Network probes for the health checks through the VIP: an HTTP GET (got), one DNS question over UDP
// (node:dgram, the codec in lib/model/dns-wire.ts), a TCP connect (node:net). Each is bounded by its own timeout and
// reports failure by rejecting with a message a person can act on; retrying is the caller's decision.

import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { randomInt } from 'node:crypto';
import type { DnsResponse, Net } from '../model/ports.ts';
import { decodeResponse, encodeQuery } from '../model/dns-wire.ts';

export function createNet(): Net {
  return {
    async httpGet(url, timeoutMs) {
      const { got } = await import('got');
      // No retries here: the check loop retries with its own interval and deadline.
      const r = await got(url, { timeout: { request: timeoutMs }, retry: { limit: 0 }, throwHttpErrors: false, followRedirect: false });
      return { status: r.statusCode, body: r.body };
    },
    dnsQuery(server, port, name, type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const id = randomInt(0, 0xffff);
        const sock = createSocket(server.includes(':') ? 'udp6' : 'udp4');
        const done = (err?: Error, res?: DnsResponse) => {
          clearTimeout(timer);
          sock.close();
          if (err) reject(err);
          else resolve(res!);
        };
        const timer = setTimeout(() => done(new Error(`no DNS answer from ${server}:${port} within ${timeoutMs} ms`)), timeoutMs);
        sock.on('error', (err) => done(err));
        sock.on('message', (msg) => {
          try {
            const res = decodeResponse(msg);
            if (res.id === id) done(undefined, res);
          } catch (err) {
            done(err as Error);
          }
        });
        sock.send(encodeQuery(id, name, type), port, server);
      });
    },
    tcpConnect(host, port, timeoutMs) {
      return new Promise((resolve, reject) => {
        const s = connect({ host, port });
        const timer = setTimeout(() => {
          s.destroy();
          reject(new Error(`${host}:${port}: no TCP connection within ${timeoutMs} ms`));
        }, timeoutMs);
        s.once('connect', () => {
          clearTimeout(timer);
          s.end();
          s.destroy();
          resolve();
        });
        s.once('error', (err) => {
          clearTimeout(timer);
          // The cause keeps err.code: ECONNREFUSED (nothing listens) means something else than a timeout.
          reject(new Error(`${host}:${port}: ${err.message}`, { cause: err }));
        });
      });
    },
  };
}
