import net from 'node:net';

/**
 * A TCP relay on 127.0.0.1 between a process and etcd, so a test can cut one
 * worker off the network (every connection dropped, new ones refused) and
 * later reconnect it, while everything else keeps talking to etcd directly.
 */
export interface TcpProxy {
  /** host:port to give the process instead of etcd's. */
  endpoint: string;
  cut(): Promise<void>;
  restore(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = target.replace(/^https?:\/\//, '').split(':');
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let listenPort = 0;

  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const s = net.createServer((client) => {
        const upstream = net.connect(Number(port), host);
        track(client);
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      s.once('error', reject);
      s.listen(listenPort, '127.0.0.1', () => {
        listenPort = (s.address() as net.AddressInfo).port;
        server = s;
        resolve();
      });
    });

  await listen();
  return {
    endpoint: `127.0.0.1:${listenPort}`,
    async cut() {
      const s = server;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    restore: listen,
  };
}
