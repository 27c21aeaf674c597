import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { dockerWorkerSuite, readLogs, submitAndPlace, waitForState } from './helpers.js';

/** A "registry" on loopback that accepts connections and never answers a byte. */
async function silentRegistry(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('worker: Docker call deadlines', () => {
  const suite = dockerWorkerSuite('worker-docker-deadlines');
  let registry: { port: number; close: () => Promise<void> } | undefined;

  afterEach(async () => {
    await registry?.close();
    registry = undefined;
  });

  it('a pull from a registry that never answers fails the run with ImagePullTimeout', async () => {
    registry = await silentRegistry();
    const { store, worker } = await suite.start({ pullTimeoutMs: 2000 });
    const image = `127.0.0.1:${registry.port}/titan-hang/x:y`;
    const began = Date.now();
    const id = await submitAndPlace(store, worker.nodeId, { image, cmd: 'true' });
    const job = await waitForState(store, id, ['Failed', 'Succeeded', 'Cancelled'], 30_000);
    expect(job.state).toBe('Failed');
    expect(job.reason).toMatch(/^ImagePullTimeout: image 127\.0\.0\.1:\d+\/titan-hang\/x:y was not pulled within 2s/);
    // The deadline, not the engine's own registry timeouts, ended it.
    expect(Date.now() - began).toBeLessThan(15_000);
    expect((await readLogs(store, id)).stderr).toContain('ImagePullTimeout');
  }, 40_000);
});
