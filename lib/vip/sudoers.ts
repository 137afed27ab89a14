// The sudoers drop-in that lets pgpool's user (postgres) run exactly the root-only commands of the VIP hooks and
// nothing more: each line is one complete argv, so sudo refuses any other argument (sudoers(5): a command with
// arguments matches only those arguments; one with the single argument "" only none). pgpool's hooks have no terminal, hence NOPASSWD and `sudo -n`.
// `install.sh --sudoers` writes it after `visudo -cf` accepts it; the lab installs the very same text.

import type { VipConfig } from '../config/types.ts';
import { fenceOffArgv, fenceOnArgv, fenceStatusArgv } from './fence.ts';
import { ipAddArgv, ipDelArgv } from './host.ts';
import { restartedOnMove, serviceArgv } from './services.ts';

/**
 * One argument (or the command) as sudoers text that matches exactly that string. Two levels read it (sudoers(5),
 * "Wildcards" and "Other special characters"): sudoers' own parser, where `,` `:` `=` `\` need a backslash and an
 * unescaped `#` starts a comment (so `systemctl #restart x` would allow systemctl with ANY arguments); then
 * fnmatch(3), where `*` `?` `[` `]` are wildcards, `\` escapes, and `!` and a leading `^` (a regular expression)
 * are special. A literal backslash therefore takes four. sudo joins the user's arguments with spaces before
 * matching, so an argument with whitespace cannot be told from two; an empty one from none; quotes and control
 * characters break the line: all refused.
 */
export function sudoersWord(a: string): string {
  const shown = JSON.stringify(a);
  if (a === '' || /\s/.test(a)) {
    throw new Error(`${shown}: sudoers cannot express an argument that is empty or contains whitespace (sudo would read "" as no arguments, and accept one with a space split in two)`);
  }
  if (/["\u0000-\u001f\u007f]/.test(a)) throw new Error(`${shown}: quotes and control characters have no place in a sudoers command`);
  return a.replace(/[\\,:=#*?[\]!^]/g, (c) => (c === '\\' ? '\\\\\\\\' : `\\${c}`));
}

/** One complete command line: with no arguments, `""` pins it to none (a bare command would allow any arguments). */
export function sudoersCommand(argv: readonly string[]): string {
  const [cmd, ...args] = argv;
  if (!cmd?.startsWith('/')) throw new Error(`${JSON.stringify(cmd ?? '')}: a sudoers command must be an absolute path`);
  return [cmd, ...args].map(sudoersWord).join(' ') + (args.length === 0 ? ' ""' : '');
}

/** The root-only argv of this config, without the sudo prefix. */
export function privilegedCommands(vip: VipConfig): string[][] {
  const strip = (argv: string[]) => (vip.privilege === 'sudo' && argv[0] === vip.binaries.sudo ? argv.slice(2) : argv);
  const cmds: string[][] = [ipAddArgv(vip), ipDelArgv(vip)];
  if (vip.fence.method === 'nftables') cmds.push(strip(fenceOnArgv(vip)), strip(fenceOffArgv(vip)), strip(fenceStatusArgv(vip)));
  for (const svc of restartedOnMove(vip)) cmds.push(strip(serviceArgv(vip, svc, 'restart')));
  if (vip.fence.method === 'stop-services') for (const svc of vip.services.list) cmds.push(strip(serviceArgv(vip, svc, 'stop')));
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
    ...privilegedCommands(vip).map((argv) => `${user} ALL=(root) NOPASSWD: ${sudoersCommand(argv)}`),
    '',
  ].join('\n');
}
