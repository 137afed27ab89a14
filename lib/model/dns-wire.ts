// A minimal DNS message codec (RFC 1035): one question out, the header and answer types back. Enough to ask the
// VIP "is the MAAS zone's SOA there, authoritatively?" without dig on every pgpool host. Pure; the UDP exchange
// is in lib/adapters/net.ts.

import type { DnsResponse } from './ports.ts';

export const QTYPE = { A: 1, NS: 2, SOA: 6 } as const;
export type QType = keyof typeof QTYPE;

export function encodeQuery(id: number, name: string, type: QType): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter(Boolean);
  const parts: Buffer[] = [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0000, 2); // a plain query: no recursion wanted, we ask the authority itself
  header.writeUInt16BE(1, 4); // one question
  parts.push(header);
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    if (b.length === 0 || b.length > 63) throw new Error(`DNS label "${l}" must be 1 to 63 characters`);
    parts.push(Buffer.from([b.length]), b);
  }
  const tail = Buffer.alloc(5);
  tail.writeUInt8(0, 0);
  tail.writeUInt16BE(QTYPE[type], 1);
  tail.writeUInt16BE(1, 3); // class IN
  parts.push(tail);
  return Buffer.concat(parts);
}


export const RCODES: Record<number, string> = { 0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED' };

/** Skips a (possibly compressed) name starting at `off`; returns the offset after it. */
function skipName(buf: Buffer, off: number): number {
  for (let guard = 0; guard < 128; guard++) {
    if (off >= buf.length) throw new Error('DNS response truncated inside a name');
    const len = buf[off]!;
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += 1 + len;
  }
  throw new Error('DNS name too long');
}

export function decodeResponse(buf: Buffer): DnsResponse {
  if (buf.length < 12) throw new Error(`DNS response of ${buf.length} bytes is shorter than its header`);
  const flags = buf.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new Error('DNS message is a query, not a response');
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const answerTypes: number[] = [];
  let soaSerial: number | undefined;
  for (let i = 0; i < an; i++) {
    off = skipName(buf, off);
    if (off + 10 > buf.length) throw new Error('DNS response truncated inside an answer');
    const type = buf.readUInt16BE(off);
    const rdlength = buf.readUInt16BE(off + 8);
    answerTypes.push(type);
    if (type === QTYPE.SOA && soaSerial === undefined) {
      // SOA RDATA (RFC 1035 3.3.13): MNAME, RNAME, then SERIAL as an unsigned 32-bit number.
      // A record too short to hold them leaves the serial unknown; the answer's type still counts.
      try {
        const at = skipName(buf, skipName(buf, off + 10));
        if (at + 4 <= off + 10 + rdlength && at + 4 <= buf.length) soaSerial = buf.readUInt32BE(at);
      } catch {
        // malformed RDATA: no serial
      }
    }
    off += 10 + rdlength;
  }
  return {
    id: buf.readUInt16BE(0),
    rcode: flags & 0x000f,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    answerTypes,
    ...(soaSerial !== undefined ? { soaSerial } : {}),
  };
}
