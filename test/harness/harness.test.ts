import { afterAll, describe, expect, it } from 'vitest';
import { Etcd3 } from 'etcd3';
import { startEtcd, type EtcdServer } from './etcd.js';
import { TEST_IMAGE, demuxLogs, removeContainersByLabel, requireDocker } from './docker.js';

describe('etcd harness', () => {
  let etcd: EtcdServer | undefined;
  afterAll(async () => {
    await etcd?.stop();
  });

  it('keeps data across kill -9 and restart', async () => {
    etcd = await startEtcd({ name: 'harness' });
    expect(etcd.endpoints).toMatch(/^127\.0\.0\.1:\d+$/);

    const c1 = new Etcd3({ hosts: `http://${etcd.endpoints}` });
    await c1.put('/titan/harness').value('v1');
    expect(await c1.get('/titan/harness').string()).toBe('v1');
    c1.close();

    const oldPid = etcd.pid;
    await etcd.kill('SIGKILL');
    await etcd.restart();
    expect(etcd.pid).not.toBe(oldPid);

    // Fresh client: the point here is the server's durability, not client retry.
    const c2 = new Etcd3({ hosts: `http://${etcd.endpoints}` });
    expect(await c2.get('/titan/harness').string()).toBe('v1');
    c2.close();
  });
});

describe('docker harness', () => {
  const label = `titan.test=harness-${process.pid}`;

  it('runs a container from the test image and reads its logs', async () => {
    const docker = await requireDocker();
    try {
      const ctr = await docker.createContainer({
        Image: TEST_IMAGE,
        Cmd: ['sh', '-c', 'echo ok'],
        Labels: { 'titan.test': `harness-${process.pid}` },
        HostConfig: { NetworkMode: 'none' },
      });
      await ctr.start();
      const res = (await ctr.wait()) as { StatusCode: number };
      expect(res.StatusCode).toBe(0);
      const logs = await ctr.logs({ stdout: true, stderr: true, follow: false });
      expect(demuxLogs(logs).stdout.trim()).toBe('ok');
      await ctr.remove({ force: true });
    } finally {
      await removeContainersByLabel(docker, label);
    }
    const left = await docker.listContainers({ all: true, filters: { label: [label] } });
    expect(left).toHaveLength(0);
  });
});
