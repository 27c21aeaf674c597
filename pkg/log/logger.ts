import { pino, type Logger } from 'pino';

export type { Logger };

/** `-v` beats LOG_LEVEL beats the default. Logs go to stderr so stdout stays for output. */
export function createLogger(name: string, options: { verbose?: boolean; level?: string } = {}): Logger {
  const level = options.verbose ? 'debug' : (options.level ?? process.env.LOG_LEVEL ?? 'info');
  return pino({ name, level }, pino.destination({ fd: 2, sync: false }));
}
