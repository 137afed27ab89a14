// PostgreSQL write-ahead log positions ("16/B374D848") as comparable numbers.

export type Lsn = bigint;

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  const m = LSN.exec(text.trim());
  if (!m) throw new Error(`not a WAL position: "${text}"`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function parseLsnOrUndefined(text: unknown): Lsn | undefined {
  return typeof text === 'string' && LSN.test(text.trim()) ? parseLsn(text) : undefined;
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function formatBytes(n: bigint | number): string {
  const v = Number(n);
  if (v < 1024) return `${v} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let x = v / 1024;
  let i = 0;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x.toFixed(x < 10 ? 1 : 0)} ${units[i]}`;
}
