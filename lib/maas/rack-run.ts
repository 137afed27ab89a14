// The rack (cluster) controller's identity, backed up and restored: the effects around ./rack.ts's decisions.
// The archive is a plain tar made by GNU tar (owners and modes recorded numerically, so a restore on a rebuilt
// host gives the files to the same uid/gid), created 0600 beside its final name and renamed into place. Secrets
// travel only through files and pipes: never in argv, never printed. docs/maas.md, "The rack controller's identity".

import { basename, dirname, join } from 'node:path';
import type { HostFiles } from '../adapters/host-files.ts';
import type { MaasConfig } from '../config/types.ts';
import type { Clock, Net, Shell } from '../model/ports.ts';
import { OperationError, messageOf } from '../errors.ts';
import { failure } from '../vip/host.ts';
import type { IdentityFile, RackLayout } from './layout.ts';
import { judgeRpcAnswer, listingOf, octal, parseIdentity, planRestore, rackRestartArgv, rpcUrl, type Identity, type IdentityTexts, type Member, type OnDisk, type RestoreStep } from './rack.ts';

export interface RackDeps {
  shell: Shell;
  files: HostFiles;
  net: Net;
  clock: Clock;
}

const TAR_TIMEOUT_MS = 30_000;

/** The identity files as they are on this host. */
export function readIdentity(deps: Pick<RackDeps, 'files'>, layout: RackLayout): { identity: Identity; present: IdentityFile[] } {
  const texts: IdentityTexts = {};
  const present: IdentityFile[] = [];
  for (const f of layout.files) {
    const r = deps.files.read(f.path);
    texts[f.kind] = r?.text;
    if (r) present.push(f);
  }
  return { identity: parseIdentity(texts), present };
}

export interface BackupResult {
  out: string;
  members: Member[];
  missing: string[];
}

/** Writes the archive of every identity file present to `out` (0600, atomically). */
export async function backupRack(deps: RackDeps, maas: MaasConfig, layout: RackLayout, out: string): Promise<BackupResult> {
  const present = layout.files.filter((f) => deps.files.read(f.path) !== undefined);
  const missing = layout.files.filter((f) => !present.includes(f)).map((f) => f.path);
  if (present.length === 0) throw new OperationError(`none of the identity files of ${layout.flavour} exists under ${maas.root} (${layout.files.map((f) => f.path).join(', ')}): nothing to back up`);
  const tmp = join(dirname(out), `.${basename(out)}.maas-ha-${process.pid}`);
  deps.files.createPrivate(tmp);
  try {
    const r = await deps.shell.run([maas.binaries.tar, '--create', '--file', tmp, '--numeric-owner', '--directory', maas.root, '--', ...present.map((f) => f.name)], { timeoutMs: TAR_TIMEOUT_MS });
    if (r.exitCode !== 0) throw new OperationError(`the archive was not written: ${failure(r)}`);
    const members = await listArchive(deps, maas, tmp);
    deps.files.commit(tmp, out);
    return { out, members, missing };
  } catch (err) {
    try {
      deps.files.remove(tmp);
    } catch {
      // already renamed or never created
    }
    throw err;
  }
}

export async function listArchive(deps: Pick<RackDeps, 'shell'>, maas: MaasConfig, file: string): Promise<Member[]> {
  const r = await deps.shell.run([maas.binaries.tar, '--list', '--verbose', '--numeric-owner', '--file', file], { timeoutMs: TAR_TIMEOUT_MS, env: { LC_ALL: 'C', TZ: 'UTC' } });
  if (r.exitCode !== 0) throw new OperationError(`${file} is not a readable tar archive: ${failure(r)}`);
  try {
    return listingOf(r.stdout);
  } catch (err) {
    throw new OperationError(`${file}: ${messageOf(err)}`);
  }
}

/** The archive's members and their contents (read through a pipe, never extracted to disk). */
export async function readArchive(deps: Pick<RackDeps, 'shell'>, maas: MaasConfig, layout: RackLayout, file: string): Promise<{ members: Member[]; contents: Record<string, string>; identity: Identity }> {
  const members = await listArchive(deps, maas, file);
  const known = new Set(layout.files.map((f) => f.name));
  const contents: Record<string, string> = {};
  for (const m of members) {
    if (!known.has(m.name)) continue; // planRestore refuses it with the whole story
    const r = await deps.shell.run([maas.binaries.tar, '--extract', '--to-stdout', '--file', file, '--', m.name], { timeoutMs: TAR_TIMEOUT_MS });
    if (r.exitCode !== 0) throw new OperationError(`${file}: cannot read ${m.name}: ${failure(r)}`);
    contents[m.name] = r.stdout;
  }
  const texts: IdentityTexts = {};
  for (const f of layout.files) texts[f.kind] = contents[f.name];
  return { members, contents, identity: parseIdentity(texts) };
}

export interface RestorePlan {
  steps: RestoreStep[];
  identity: Identity;
  contents: Record<string, string>;
}

export async function planRackRestore(deps: RackDeps, maas: MaasConfig, layout: RackLayout, file: string): Promise<RestorePlan> {
  const a = await readArchive(deps, maas, layout, file);
  const disk: Record<string, OnDisk | undefined> = {};
  for (const f of layout.files) disk[f.name] = deps.files.read(f.path);
  return { steps: planRestore(layout.files, a.members, a.contents, disk), identity: a.identity, contents: a.contents };
}

export interface RestoreResult {
  written: string[];
  restart: string;
  reconnect: { ok: boolean; detail: string };
}

/** Writes every changed file (each atomically, with its owner and mode), restarts the rack, waits for its region. */
export async function restoreRack(deps: RackDeps, maas: MaasConfig, layout: RackLayout, plan: RestorePlan, say: (line: string) => void): Promise<RestoreResult> {
  const written: string[] = [];
  // The secret and the id before the configuration that names the region: a rack restarted half-way finds its
  // identity before it finds where to present it.
  const order = [...plan.steps].sort((a, b) => Number(a.file.kind === 'rackd-conf' || a.file.kind === 'cluster-conf') - Number(b.file.kind === 'rackd-conf' || b.file.kind === 'cluster-conf'));
  for (const s of order) {
    if (s.action === 'unchanged') continue;
    deps.files.ensureDir(dirname(s.file.path));
    deps.files.write(s.file.path, plan.contents[s.member.name] ?? '', { mode: s.member.mode, owner: { uid: s.member.uid, gid: s.member.gid } });
    written.push(s.file.path);
    say(`wrote ${s.file.path} (${octal(s.member.mode)} ${s.member.uid}:${s.member.gid}; ${s.changes.join(', ')})`);
  }
  const argv = rackRestartArgv(layout.service, maas.binaries);
  const r = await deps.shell.run(argv, { timeoutMs: 120_000 });
  if (r.exitCode !== 0) throw new OperationError(`the files are restored, but the rack service did not restart: ${failure(r)}`);
  say(`restarted the rack service (${layout.service.manager} ${layout.service.unit})`);
  const url = plan.identity.maasUrls?.[0];
  if (!url) return { written, restart: 'ok', reconnect: { ok: false, detail: 'no maas_url in the backup: cannot tell whether the rack reaches its region' } };
  return { written, restart: 'ok', reconnect: await waitForRegion(deps, url, maas.rack.reconnect_timeout_ms) };
}

/**
 * The reconnection check: the region the restored rack names answers `<maas_url>/rpc/` with its event loops, which
 * is the first thing rackd asks before it connects to them (docs/maas.md). Polled once a second until the deadline.
 */
export async function waitForRegion(deps: Pick<RackDeps, 'net' | 'clock'>, maasUrl: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
  const url = rpcUrl(maasUrl);
  const started = deps.clock.now();
  let last = 'not asked';
  for (;;) {
    const left = timeoutMs - (deps.clock.now() - started);
    try {
      const r = await deps.net.httpGet(url, Math.max(200, Math.min(3000, left)));
      const j = judgeRpcAnswer(r.status, r.body);
      if (j.ok) return { ok: true, detail: `GET ${url}: ${j.detail}` };
      last = j.detail;
    } catch (err) {
      last = messageOf(err);
    }
    if (deps.clock.now() - started + 1000 >= timeoutMs) return { ok: false, detail: `GET ${url}: ${last} (gave up after ${deps.clock.now() - started} ms)` };
    await deps.clock.sleep(1000);
  }
}
