import type { Command } from 'commander';
import type { CliConfig, GlobalFlags } from '../../internal/cli/context.js';
import type { CliIO } from '../../internal/cli/io.js';
import { skippedRecordsError } from '../../internal/cli/skipped.js';

// What every command's action uses. Commands are registered without loading
// the code they run (`titan --help` stays close to a bare node start): each
// action imports its internal/cli module when it runs.

/** A repeatable flag's values, in order. */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Global flags of the command plus its ancestors, resolved (env, defaults, context) and validated. */
export async function configOf(command: Command, io: CliIO): Promise<CliConfig> {
  const { resolveCliConfig } = await import('../../internal/cli/context.js');
  return resolveCliConfig(command.optsWithGlobals<GlobalFlags>(), io.env);
}

/** After printing what could be read: corrupt records that were skipped make the command fail (exit 1). */
export function throwIfSkipped(reads: Parameters<typeof skippedRecordsError>[0]): void {
  const err = skippedRecordsError(reads);
  if (err) throw err;
}
