import net from 'node:net';
import { parseRunEvent, type RunEvent } from './ledger.js';

/** A loopback TCP server jobs report their runs to (`echo "start ..." | busybox nc 127.0.0.1 PORT`). */
export interface Collector {
  port: number;
  events: RunEvent[];
  close(): Promise<void>;
}

export function startCollector(): Promise<Collector> {
  const events: RunEvent[] = [];
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.on('data', (d) => {
      buffer += d.toString();
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const event = parseRunEvent(buffer.slice(0, newline), Date.now());
        if (event) events.push(event);
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
      // One line per connection: closing lets `nc` exit at once.
      socket.end();
    });
    socket.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : 0,
        events,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
