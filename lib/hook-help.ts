// The usage texts of the executables pgpool runs (`maas-ha-<hook> --help`). Help is answered before anything else
// on the line is looked at (lib/hook.ts runHook), and only then is this file loaded, so a hook's normal start does
// not pay for it. Pure: no I/O. The CLI's texts are lib/cli/help.ts.

import type { HookName } from './config/types.ts';
import { EVENT_FLAGS, type EventKind, type Placeholder } from './pgpool/args.ts';

interface HookHelp {
  /** The command line, as pgpool's setting (or the wrapper) writes it; later lines carry their own indent. */
  usage: string[];
  /** Who runs it, from which setting, and what a non-zero exit makes pgpool do. */
  about: string[];
}

const EVENT_SETTING: Record<EventKind, { exe: string; setting: string; runs: string }> = {
  failover: {
    exe: 'maas-ha-failover',
    setting: 'failover_command',
    runs: "the leader pgpool's main process, once per detached node",
  },
  follow_primary: {
    exe: 'maas-ha-follow-primary',
    setting: 'follow_primary_command (follow_master_command before pgpool 4.2)',
    runs: 'a child of the leader pgpool after a new primary was found, once per node that is down',
  },
  failback: { exe: 'maas-ha-failback', setting: 'failback_command', runs: "the leader pgpool's main process after a node is attached" },
};

function eventHelp(kind: EventKind): HookHelp {
  const { exe, setting, runs } = EVENT_SETTING[kind];
  const flags = (ps: string) => [...ps].map((p) => `--${EVENT_FLAGS[kind][p as Placeholder]} "%${p}"`).join(' ');
  // In the order of pgpool/hooks.conf: the node, the new main (or primary), the old ones, then 4.1+'s %N %S.
  return {
    usage: [
      `${exe} ${flags('dhpD')}`,
      `           ${flags('mHrR')}`,
      `           ${flags('MP')} [${flags('NS')}]`,
      `   or: ${exe} %d %h %p %D %m %H %M %P %r %R [%N %S]   (the positional form of pgpool's sample scripts)`,
    ],
    about: [
      `pgpool's ${setting} runs it: ${runs};`,
      "as pgpool's OS user, through /bin/sh -c. pgpool ignores its exit code: the log line and the notification",
      'tell what happened. Each flag carries the pgpool placeholder shown; "" or -1 means no such node.',
      'The line, every placeholder quoted: pgpool/hooks.conf (`maas-ha config render-pgpool` fills in the directory).',
    ],
  };
}

const HOOKS: Record<HookName, () => HookHelp> = {
  failover: () => eventHelp('failover'),
  follow_primary: () => eventHelp('follow_primary'),
  failback: () => eventHelp('failback'),
  recovery_1st_stage: () => ({
    usage: ['maas-ha-recovery-1st-stage PRIMARY_DATADIR TARGET_HOST TARGET_DATADIR PRIMARY_PORT [TARGET_NODE_ID [TARGET_PORT [PRIMARY_HOST]]]'],
    about: [
      "pgpool's online recovery (recovery_1st_stage_command = 'recovery_1st_stage'): pcp_recovery_node makes the",
      "primary's pgpool_recovery extension run $PGDATA/recovery_1st_stage, a wrapper that execs this (written by",
      '`maas-ha recover install-scripts DATADIR`), as the PostgreSQL user, with 4 to 7 arguments by pgpool version.',
      'It rebuilds the target node as a standby. A non-zero exit makes pgpool abort the recovery.',
    ],
  }),
  remote_start: () => ({
    usage: ['maas-ha-remote-start TARGET_HOST TARGET_DATADIR'],
    about: [
      "pgpool's online recovery, after the first stage: the primary's pgpool_recovery extension runs",
      '$PGDATA/pgpool_remote_start, a wrapper that execs this (written by `maas-ha recover install-scripts`), as the',
      'PostgreSQL user. It starts the rebuilt node and returns once it streams. A non-zero exit aborts the recovery.',
    ],
  }),
  escalation: () => ({
    usage: ['maas-ha-escalation   (no arguments)'],
    about: [
      "pgpool's wd_escalation_command: the watchdog of the pgpool becoming leader runs it, as pgpool's OS user,",
      'before if_up_cmd adds the VIP: remove the VIP from peers, lift the fence, restart the region services.',
      'pgpool only logs a warning on a non-zero exit; the VIP comes up anyway.',
    ],
  }),
  de_escalation: () => ({
    usage: ['maas-ha-de-escalation   (no arguments)'],
    about: [
      "pgpool's wd_de_escalation_command: the watchdog of the pgpool giving up the VIP runs it, as pgpool's OS",
      'user, before if_down_cmd: fence this region controller or stop its services.',
      'pgpool only logs a warning on a non-zero exit.',
    ],
  }),
  ip_up: () => ({ usage: ['maas-ha ip up VIP'], about: ["pgpool's if_up_cmd = '.../maas-ha ip up $_IP_$' (pgpool/watchdog.conf): add the VIP."] }),
  ip_down: () => ({ usage: ['maas-ha ip down VIP'], about: ["pgpool's if_down_cmd = '.../maas-ha ip down $_IP_$' (pgpool/watchdog.conf): remove the VIP."] }),
  arping: () => ({
    usage: ['maas-ha arping VIP'],
    about: ["pgpool's arping_cmd = '.../maas-ha arping $_IP_$' (pgpool/watchdog.conf): gratuitous ARP, services, checks."],
  }),
};

/** What `maas-ha-<hook> --help` prints. */
export function hookHelp(hook: HookName): string {
  const h = HOOKS[hook]();
  const [first, ...more] = h.usage;
  return [
    `usage: ${first}`,
    ...more,
    '',
    ...h.about.map((l) => `  ${l}`),
    '',
    '  configuration: $MAAS_HA_CONFIG, else /etc/maas-ha/maas-ha.yaml; logs: JSON lines on stderr',
    '  exit: 0 done, 1 failed, 2 usage or configuration error',
    '  --help, -h: this text; nothing is read, locked or changed',
  ].join('\n');
}
