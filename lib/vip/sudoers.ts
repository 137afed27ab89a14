// The sudoers drop-in that lets pgpool's user (postgres) run exactly the root-only commands of the VIP hooks and
// nothing more: each line is one complete argv, so sudo refuses any other argument (sudoers(5): a command with
// arguments matches only those arguments). pgpool's hooks have no terminal, hence NOPASSWD and `sudo -n`.
// `install.sh --sudoers` writes it after `visudo -cf` accepts it; the lab installs the very same text.

import type { VipConfig } from '../config/types.ts';
import { fenceOffArgv, fenceOnArgv, fenceStatusArgv } from './fence.ts';
import { ipAddArgv, ipDelArgv } from './host.ts';
import { serviceArgv } from './services.ts';

/** sudoers(5): these characters must be backslash-escaped inside a command's arguments; wildcards too, to stay literal. */
function escapeArg(a: string): string {
  if (/\s/.test(a) || a === '') throw new Error(`"${a}": sudoers cannot express an argument that is empty or contains whitespace`);
  if (/["\u0000-\u001f]/.test(a)) throw new Error(`"${a}": quotes and control characters have no place in a sudoers command`);
  return a.replace(/[\\,:=*?[\]!]/g, (c) => `\\${c}`);
}

/** The root-only argv of this config, without the sudo prefix. */
export function privilegedCommands(vip: VipConfig): string[][] {
  const strip = (argv: string[]) => (vip.privilege === 'sudo' && argv[0] === vip.binaries.sudo ? argv.slice(2) : argv);
  const cmds: string[][] = [ipAddArgv(vip), ipDelArgv(vip)];
  if (vip.fence.method === 'nftables') cmds.push(strip(fenceOnArgv(vip)), strip(fenceOffArgv(vip)), strip(fenceStatusArgv(vip)));
  for (const svc of vip.services.list) {
    cmds.push(strip(serviceArgv(vip, svc, 'restart')));
    if (vip.fence.method === 'stop-services') cmds.push(strip(serviceArgv(vip, svc, 'stop')));
  }
  const seen = new Set<string>();
  return cmds.filter((c) => {
    const k = JSON.stringify(c);
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

export function renderSudoers(vip: VipConfig, user: string, source: string): string {
  if (!/^[a-z_][a-z0-9_-]*$/.test(user)) throw new Error(`"${user}" is not a plain user name`);
  return [
    `# maas-ha: root-only commands of the region controller VIP hooks (pgpool runs them as ${user}).`,
    `# Rendered from ${source} by \`maas-ha vip sudoers\`; every line is one exact command line.`,
    `Defaults:${user} !requiretty`,
    ...privilegedCommands(vip).map((argv) => `${user} ALL=(root) NOPASSWD: ${argv.map(escapeArg).join(' ')}`),
    '',
  ].join('\n');
}
