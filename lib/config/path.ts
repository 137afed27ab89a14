// Where the configuration file is, without loading anything that reads it (the YAML library is loaded only when
// a file must really be parsed: see ./checked.ts).

export const DEFAULT_CONFIG_PATH = '/etc/maas-ha/maas-ha.yaml';

/** `--config` beats `MAAS_HA_CONFIG` beats /etc/maas-ha/maas-ha.yaml (an empty value counts as unset). */
export function configPath(argvConfig?: string, env: NodeJS.ProcessEnv = process.env): string {
  return argvConfig || env.MAAS_HA_CONFIG || DEFAULT_CONFIG_PATH;
}
