// Writes the checked copy of the configuration (lib/config/checked.ts says what it is and when a hook trusts it).
// The one effect of that mechanism, so lib/config stays below the adapters: reading and judging the copy is there.

import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { checkedPath, configBuild, type CheckedCopy } from '../config/checked.ts';
import type { Config } from '../config/types.ts';
import { writeFileSafely } from './safe-write.ts';

/**
 * Writes the checked copy next to the configuration file; returns why it could not, or undefined. The copy holds the
 * whole YAML text (a webhook `url` included), so it is never more readable than the YAML and never by others: mode
 * 0600, plus read for the YAML's group when that group (not root's) may read the YAML, so the hooks' user can read
 * both (root:postgres 0640). Root writes it (install.sh, `maas-ha config check`) through
 * lib/adapters/safe-write.ts: as root, owned by root, in a directory only root can change; as the directory's owner
 * in one someone else owns. No link planted next to the YAML is followed, and an existing copy with other
 * permissions is replaced, not reused.
 */
export function writeChecked(configFile: string, text: string, config: Config): string | undefined {
  const file = resolve(checkedPath(configFile));
  const content = `${JSON.stringify({ build: configBuild(), text, config } satisfies CheckedCopy)}\n`;
  try {
    const yaml = statSync(configFile);
    const groupRead = yaml.gid !== 0 ? yaml.mode & 0o040 : 0;
    const rootDir = process.geteuid?.() === 0 && statSync(dirname(file)).uid === 0;
    // An identical copy (content, mode, owner) is left alone: running the installer twice changes nothing.
    writeFileSafely(file, content, { mode: 0o600 | groupRead, ...(rootDir ? { owner: { uid: 0, gid: yaml.gid } } : {}) });
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
