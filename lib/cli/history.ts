// `maas-ha history [ID] [--since WHEN] [--json]`: the failovers, online recoveries and VIP moves this host's state_dir
// journals record (lib/history.ts), one line each, or the timeline of one. It reads the journals as the hooks do,
// through the state store (a state_dir others may write is refused, entries of another cluster are left out and
// said so on stderr), and changes nothing. Loaded by lib/cli/main.ts only when the command runs.

import { createLog, newRunId } from '../adapters/log.ts';
import { journalNames } from '../adapters/state.ts';
import { configPath, loadConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { createDeps } from '../wiring.ts';
import { buildHistory, findEvent, historyJson, historySince, parseSince, renderHistory, renderTimeline } from '../history.ts';
import type { StateStore } from '../model/ports.ts';
import { parseFlags } from '../flags.ts';
import type { CliIo } from './main.ts';

/** Every event this host's journals hold, read through the state store's checks. */
export const readHistory = (config: Config, state: Pick<StateStore, 'readJournal'>) =>
  buildHistory(journalNames(config.state_dir).map((name) => ({ name, entries: state.readJournal(name) })));

export async function historyCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseFlags(argv, { config: { type: 'string' }, json: { type: 'bool' }, since: { type: 'string' } }, { positionals: 1 });
  // Both judged before the configuration is read: a typo is named as such, not hidden behind a config error.
  const since = values.since === undefined ? undefined : parseSince(values.since, Date.now());
  const id = positionals[0];
  const config = loadConfig(configPath(values.config, process.env));
  const deps = createDeps(config, createLog('cli', newRunId(), 'warn'));
  const events = readHistory(config, deps.state);
  if (id !== undefined) {
    const e = findEvent(events, id, config.state_dir);
    io.out(values.json ? JSON.stringify(historyJson([e], true)[0], null, 2) : renderTimeline(e));
    return 0;
  }
  const shown = historySince(events, since);
  io.out(values.json ? JSON.stringify(historyJson(shown, false), null, 2) : renderHistory(shown, config.state_dir));
  return 0;
}
