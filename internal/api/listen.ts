import { TitanError } from '../../pkg/model/errors.js';

/** `127.0.0.1:4646` → host and port; a bare port means loopback. */
export function parseListen(text: string, field = 'listen'): { host: string; port: number } {
  const match = /^(?:(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || port > 65535) throw new TitanError('InvalidInput', `${field}: "${text}" is not host:port (e.g. 127.0.0.1:4646)`, { field });
  return { host: (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
}
