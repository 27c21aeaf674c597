import { CommanderError, type Command } from 'commander';
import type { Logger } from 'pino';
import { createLogger } from '../log/logger.js';
import { isTitanError } from '../model/errors.js';
import { onShutdown } from './shutdown.js';

export interface Daemon {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The shared life of titan-master and titan-worker: parse flags (bad ones
 * exit 2), build the daemon from them, stop it gracefully on the first
 * signal, and turn a start-up failure into one line and an exit code
 * (2 for bad configuration, 1 otherwise).
 */
export async function runDaemon<F extends { verbose?: boolean }>(
  program: Command,
  create: (flags: F, logger: Logger) => Daemon | Promise<Daemon>,
): Promise<void> {
  program.exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse();
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    throw err;
  }
  const flags = program.opts<F>();
  const logger = createLogger(program.name(), { verbose: flags.verbose });
  try {
    const daemon = await create(flags, logger);
    onShutdown(logger, () => daemon.stop());
    await daemon.start();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`error: ${message}\n`);
    process.exit(isTitanError(err, 'InvalidInput') ? 2 : 1);
  }
}
