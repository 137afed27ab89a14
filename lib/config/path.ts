// Where the configuration file is, without loading anything that reads it (the YAML library is loaded only when
// a file must really be parsed: see ./checked.ts).

export const DEFAULT_CONFIG_PATH = '/etc/maas-ha/maas-ha.yaml';

/** `--config` beats `MAAS_HA_CONFIG` beats /etc/maas-ha/maas-ha.yaml (an empty value counts as unset). */
export function configPath(argvConfig?: string, env: NodeJS.ProcessEnv = process.env): string {
  return argvConfig || env.MAAS_HA_CONFIG || DEFAULT_CONFIG_PATH;
}

/**
 * `--config PATH` or `--config=PATH` anywhere in a hook's argv, taken out before the hook's own flags are parsed:
 * `config render-pgpool` writes it into the hook lines when the configuration is not at the default path, so
 * pgpool's hooks find it without an environment variable pgpool would have to be started with.
 */
export function takeConfigFlag(argv: readonly string[]): { config?: string; rest: string[] } {
  const rest: string[] = [];
  let config: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a === '--config' && i + 1 < argv.length) config = argv[++i];
    else if (a.startsWith('--config=')) config = a.slice('--config='.length);
    else rest.push(a);
  }
  return { config, rest };
}
