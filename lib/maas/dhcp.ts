// Every machine and rack (cluster) controller is pointed at every secondary DNS server, so name resolution
// survives the loss of a region controller. MAAS hands the DNS servers out through DHCP:
//   MAAS 1.x     the cluster controller renders /etc/maas/templates/dhcp/dhcpd.conf.template; its
//                `option domain-name-servers ...;` line names the region's DNS only. maas-ha rewrites that line to list
//                every region controller's secondary, shown as a patch against the packaged template.
//   MAAS 2.x/3.x the region keeps dns_servers per subnet: `maas <profile> subnet update <subnet> dns_servers=a,b`.
// docs/maas.md, "DNS servers for DHCP". Pure: text in, text out.

export interface DhcpPatch {
  /** The template with the DNS servers line(s) replaced. */
  text: string;
  /** A unified diff from the old text to the new one; empty when nothing changes. */
  diff: string;
  /** How many domain-name-servers lines were found. */
  lines: number;
}

const DNS_LINE = /^(\s*option\s+domain-name-servers\s+)([^;]*)(;.*)$/;

/** Thrown when the template has no line to change (not the MAAS 1.x template, or edited beyond recognition). */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Pure: the MAAS 1.x DHCP template with every `option domain-name-servers` line listing `servers`. */
export function patchDhcpTemplate(text: string, servers: readonly string[], path = 'dhcpd.conf.template'): DhcpPatch {
  if (servers.length === 0) throw new TemplateError('no DNS servers to write');
  const lines = text.split('\n');
  let found = 0;
  const out = lines.map((l) => {
    const m = DNS_LINE.exec(l);
    if (!m) return l;
    found++;
    return `${m[1]}${servers.join(', ')}${m[3]}`;
  });
  if (found === 0) throw new TemplateError(`${path}: no "option domain-name-servers ...;" line (is this the MAAS 1.x DHCP template?)`);
  const next = out.join('\n');
  return { text: next, diff: unifiedDiff(path, lines, out), lines: found };
}

/** A unified diff of two texts with the same number of lines (a line-for-line replacement), 3 lines of context. */
export function unifiedDiff(path: string, a: readonly string[], b: readonly string[]): string {
  const changed = a.map((l, i) => l !== b[i]);
  if (!changed.includes(true)) return '';
  const out = [`--- ${path}`, `+++ ${path} (maas-ha)`];
  let i = 0;
  while (i < a.length) {
    if (!changed[i]) {
      i++;
      continue;
    }
    // A hunk: from 3 lines before the first change to 3 lines after the last change within reach.
    const start = Math.max(0, i - 3);
    let end = i;
    for (let j = i; j < a.length && j <= end + 6; j++) if (changed[j]) end = j;
    const stop = Math.min(a.length, end + 4);
    const body: string[] = [];
    for (let j = start; j < stop; j++) {
      if (changed[j]) body.push(`-${a[j]}`, `+${b[j]}`);
      else body.push(` ${a[j]}`);
    }
    out.push(`@@ -${start + 1},${stop - start} +${start + 1},${stop - start} @@`, ...body);
    i = stop;
  }
  return `${out.join('\n')}\n`;
}

/** Pure: the maas CLI lines that set every subnet's DNS servers (MAAS 2.x/3.x). */
export function subnetCommands(profile: string, subnets: readonly string[], servers: readonly string[]): string[] {
  return subnets.map((s) => `maas ${profile} subnet update ${s} dns_servers=${servers.join(',')}`);
}
