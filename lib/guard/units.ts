// The systemd units that run the guard on a production database host, rendered here (pure, unit-tested in
// test/unit/guard/units.test.ts) and written by `install.sh --database-host DATADIR` when the host runs systemd.
//
// Two pieces:
//   - a drop-in for this node's postgresql@<version>-<cluster>.service with ExecStartPre=`maas-ha-guard
//     start-check`: before PostgreSQL starts (a reboot, `systemctl start`), a node without standby.signal is made a
//     standby when its peers show that the cluster has a primary at least as new. The drop-in goes into the
//     instance's directory, not postgresql@.service.d: a template drop-in would also run for every other cluster on
//     the host, each time judging this node's data directory.
//   - maas-ha-guard.service, a long-running `maas-ha-guard watch`: a primary that sees a peer on a newer timeline
//     demotes itself. A long-running watch rather than a .timer: a stale primary accepts writes until the next
//     check, and a watch checks every second from one idle process, where a timer would start node, load the
//     configuration and connect afresh on every tick (and systemd timers are not meant for 1 s periods).
// One maas-ha node per host (the MAAS layout: one PostgreSQL per region controller), so one guard service.

import type { NodeConfig } from '../config/types.ts';
import { OperationError } from '../errors.ts';

export interface GuardUnitOptions {
  node: NodeConfig;
  /** The installed maas-ha-guard executable (a bundled ES module). */
  guardBin: string;
  /** The node binary (>= 20): named explicitly, systemd's PATH may not reach it. */
  nodejs: string;
  /** The maas-ha configuration file the guard reads. */
  configPath: string;
  /** The OS user PostgreSQL runs as (the guard stops it with pg_ctl, which refuses root). */
  user: string;
  /** `watch` period. */
  intervalMs: number;
  /** util-linux runuser: postgresql@.service runs its commands as root. */
  runuser?: string;
  /** Where unit files go. */
  unitDir?: string;
}

export interface UnitFile {
  path: string;
  text: string;
}

export const GUARD_SERVICE = 'maas-ha-guard.service';
export const GUARD_DROPIN = 'maas-ha-guard.conf';

// systemd expands % specifiers and $VARIABLES and splits on spaces in Exec lines; values with none of that need
// no quoting, and anything else is refused rather than escaped.
const SAFE = /^[A-Za-z0-9/._@:+=,-]+$/;
function safe(what: string, value: string): string {
  if (!SAFE.test(value)) throw new OperationError(`${what} "${value}" has characters a systemd unit line would interpret (allowed: letters, digits, / . _ @ : + = , -)`);
  return value;
}
const abs = (what: string, value: string) => {
  if (!value.startsWith('/')) throw new OperationError(`${what} must be an absolute path, got "${value}"`);
  return safe(what, value);
};

/** The argv, as a systemd Exec line, of one guard command for this node. */
function guardCommand(o: GuardUnitOptions, command: 'start-check' | 'watch'): string {
  return [
    abs('the node binary', o.nodejs),
    abs('the guard executable', o.guardBin),
    command,
    // The node is resolved once, when the unit is rendered on its host (by data directory and address); the unit
    // names it by id, so the guard never has to guess again.
    '--node',
    String(o.node.id),
    ...(command === 'watch' ? ['--interval-ms', String(o.intervalMs)] : []),
    '--config',
    abs('the configuration file', o.configPath),
  ].join(' ');
}

/** The postgresql@ instance that runs this node, or a refusal saying what to do instead. */
export function postgresqlInstance(node: NodeConfig): string {
  if (node.control.method !== 'pg_ctlcluster') {
    throw new OperationError(
      `node ${node.id} is started with pg_ctl (control.method), not by postgresql@.service: run "maas-ha-guard start-check --node ${node.id}" before your own start command instead`,
    );
  }
  return safe('the cluster', `${node.control.version}-${node.control.name}`);
}

export function startCheckDropIn(o: GuardUnitOptions): UnitFile {
  const instance = postgresqlInstance(o.node);
  const dir = o.unitDir ?? '/etc/systemd/system';
  return {
    path: `${dir}/postgresql@${instance}.service.d/${GUARD_DROPIN}`,
    text: [
      `# Written by maas-ha's install.sh --database-host (maas-ha-guard unit start-check); rerun it rather than editing.`,
      `# Before PostgreSQL node ${o.node.id} (${instance}) starts, maas-ha-guard asks its peers whether the cluster has a`,
      `# primary at least as new as this node, or has moved to a newer timeline. If so, and this data directory has no`,
      `# standby.signal, it writes one: the node starts as a standby, never as a second primary (a reboot after a`,
      `# failover). With no primary among the peers the start goes ahead (a whole-cluster cold start must come up).`,
      `# postgresql@.service runs its commands as root; the check runs as ${o.user}. It exits non-zero, which stops`,
      `# the start, only when it could not read its configuration or could not write standby.signal it decided on.`,
      `[Service]`,
      `ExecStartPre=${abs('runuser', o.runuser ?? '/usr/sbin/runuser')} -u ${safe('the user', o.user)} -- ${guardCommand(o, 'start-check')}`,
      '',
    ].join('\n'),
  };
}

export function watchService(o: GuardUnitOptions): UnitFile {
  const dir = o.unitDir ?? '/etc/systemd/system';
  const user = safe('the user', o.user);
  return {
    path: `${dir}/${GUARD_SERVICE}`,
    text: [
      `# Written by maas-ha's install.sh --database-host (maas-ha-guard unit watch); rerun it rather than editing.`,
      `# Every ${o.intervalMs} ms: if PostgreSQL node ${o.node.id} is a primary and a peer is on a newer timeline (the cluster`,
      `# promoted another node while this one was cut off), write standby.signal and stop it within 5 s. Two primaries`,
      `# on one timeline, or no peer answering, are only logged: the guard never demotes on missing information.`,
      `# Logs (JSON lines) go to the journal: journalctl -u ${GUARD_SERVICE}.`,
      `[Unit]`,
      `Description=maas-ha guard of PostgreSQL node ${o.node.id} (demotes a primary the cluster has moved on from)`,
      `Wants=network-online.target`,
      `After=network-online.target`,
      ``,
      `[Service]`,
      `Type=simple`,
      `User=${user}`,
      `Group=${user}`,
      `ExecStart=${guardCommand(o, 'watch')}`,
      `Restart=always`,
      `RestartSec=2`,
      ``,
      `[Install]`,
      `WantedBy=multi-user.target`,
      '',
    ].join('\n'),
  };
}
