// pcp adapter. The pcp_* tools exit 0 even when the server answers with an ERROR (docs/pgpool-hooks.md, "PCP"), so
// an exit status proves nothing: success is read from stdout ("-- Command Successful" or the data line), anything
// on stderr or any "ERROR" is a failure. Without -w the 4.3 tools prompt for a password on a terminal that a hook
// does not have, so -w is always given and the password comes from PCPPASSFILE.
//
// pgpool restarts its PCP process about a second after every failover and failback (docs/pgpool-hooks.md, "PCP"),
// which is exactly when follow_primary attaches nodes: a refused connection is retried for a few seconds (the
// command never reached pgpool, so sending it again cannot do anything twice). A connection the restart cut
// ("unable to read data from socket") is retried only for what is harmless to repeat: reading node info and
// counts, and attaching (pgpool ignores a failback request for a node that is already up, and the hooks confirm
// every attach with pcp_node_info). Detach, promote and recovery are never sent twice here; `maas-ha recover`
// decides itself whether a cut recovery is sent again (lib/recovery/recover.ts, sendRecovery).

import type { PcpConfig } from '../config/types.ts';
import { OperationError } from '../errors.ts';
import type { Pcp, PcpNodeInfo, Shell } from '../model/ports.ts';
import { parseNodeInfoLine, PCP_CUT } from '../pgpool/pcp-output.ts';

/** What the pcp client prints when it could not connect at all (exit 1): nothing reached pgpool. */
const NOT_CONNECTED = /connection to (host|socket) .*failed|Connection refused|could not connect/i;
const RECONNECT_FOR_MS = 4000;

export function createPcp(cfg: PcpConfig, shell: Shell): Pcp {
  const call = async (tool: string, args: string[], timeoutMs = cfg.timeout_ms, repeatable = false): Promise<string> => {
    const argv = [`${cfg.bin_dir}/${tool}`, '-h', cfg.host, '-p', String(cfg.port), '-U', cfg.user, '-w', ...args];
    const env = { PCPPASSFILE: cfg.pcppass_file, HOME: process.env.HOME ?? '/', LANG: 'C' };
    const started = Date.now();
    let r = await shell.run(argv, { timeoutMs, env });
    const retry = (x: typeof r) => x.exitCode !== 0 && (NOT_CONNECTED.test(x.stderr) || (repeatable && PCP_CUT.test(`${x.stdout}\n${x.stderr}`)));
    while (retry(r) && Date.now() - started < Math.min(RECONNECT_FOR_MS, timeoutMs / 2)) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      r = await shell.run(argv, { timeoutMs: Math.max(1000, timeoutMs - (Date.now() - started)), env });
    }
    const text = `${r.stdout}\n${r.stderr}`;
    if (r.timedOut) throw new OperationError(`${tool} ${args.join(' ')}: no answer from pgpool within ${timeoutMs} ms`);
    if (r.exitCode !== 0 || /\bERROR\b|FATAL/.test(text) || r.stderr.trim() !== '') {
      const why = (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n').slice(-2).join(' | ');
      throw new OperationError(`${tool} ${args.join(' ')}: ${why}`);
    }
    return r.stdout;
  };
  const command = async (tool: string, args: string[], timeoutMs?: number, repeatable = false) => {
    const out = await call(tool, args, timeoutMs, repeatable);
    if (!/Command Successful/.test(out)) throw new OperationError(`${tool} ${args.join(' ')}: no "Command Successful" in: ${out.trim()}`);
  };
  return {
    async nodeInfo(id: number): Promise<PcpNodeInfo> {
      const out = await call('pcp_node_info', ['-n', String(id)], undefined, true);
      return parseNodeInfoLine(id, out.trim().split('\n')[0] ?? '');
    },
    async nodeCount(): Promise<number> {
      const out = (await call('pcp_node_count', [], undefined, true)).trim();
      if (!/^\d+$/.test(out)) throw new OperationError(`pcp_node_count: unexpected output "${out}"`);
      return Number(out);
    },
    attach: (id) => command('pcp_attach_node', ['-n', String(id)], undefined, true),
    detach: (id, opts) => command('pcp_detach_node', ['-n', String(id), ...(opts?.gracefully ? ['-g'] : [])]),
    promote: (id, opts) => command('pcp_promote_node', ['-n', String(id), ...(opts?.switchover ? ['-s'] : [])]),
    recover: (id, opts) => command('pcp_recovery_node', ['-n', String(id)], opts?.timeoutMs),
  };
}
