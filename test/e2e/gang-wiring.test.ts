import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Master } from '../../internal/master/index.js';
import { buildJobSpec } from '../../pkg/model/index.js';
import { removeContainersByLabel, requireDocker, TEST_IMAGE } from '../harness/docker.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';
import { randomPrefix, readLogs, startMaster, startTestWorker, submitGang, waitFor, type TestWorker } from '../worker/helpers.js';

/**
 * Distributed-training wiring through etcd, a master and two workers
 * (docs/gangs.md, "What a replica sees"): each replica gets a port of its
 * node's --port-range, TITAN_PEERS at the advertised address, and the
 * variables frameworks read; the replicas find each other over the loopback
 * address. As shell jobs, and as containers on workers started with
 * --network host: both listen on the host's ports.
 */

/** Whether nothing listens on a port of 127.0.0.1 now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** `count` consecutive ports free now, below the ephemeral range (as --port-range ranges should be). */
async function freeRange(count: number): Promise<{ first: number; last: number }> {
  for (let tries = 0; tries < 50; tries++) {
    const first = 20_000 + Math.floor(Math.random() * 9_000);
    const checks = await Promise.all(Array.from({ length: count }, (_, i) => portFree(first + i)));
    if (checks.every(Boolean)) return { first, last: first + count - 1 };
  }
  throw new Error(`no ${count} free consecutive ports found`);
}

/**
 * Each replica prints its variables, listens on its own TITAN_PORT until
 * each other rank has said hello (and got `ok` back), and says hello to
 * every peer (rank 0 at MASTER_ADDR:MASTER_PORT, the others from
 * TITAN_PEERS), again until it hears `ok`: a peer not listening yet, or a
 * hello left in the backlog of a listener that is serving another, is tried
 * again. It exits 0 only when it reached every peer and every peer reached
 * it. $HOLD keeps it (and its port) a little longer.
 */
const RENDEZVOUS = `
set -u
echo "env RANK=$RANK WORLD_SIZE=$WORLD_SIZE LOCAL_RANK=$LOCAL_RANK MASTER=$MASTER_ADDR:$MASTER_PORT PORT=$TITAN_PORT PEERS=$TITAN_PEERS"
got=$(mktemp); export got
heard() { sort -u "$got" | wc -l; }
( while [ $(heard) -lt $((WORLD_SIZE-1)) ]; do
    busybox nc -l -p "$TITAN_PORT" -e sh -c 'read line; echo "$line" >> "$got"; echo ok' || exit 1
  done ) &
listener=$!
r=0
for peer in $(echo "$TITAN_PEERS" | tr , ' '); do
  if [ $r -ne $RANK ]; then
    if [ $r -eq 0 ]; then host=$MASTER_ADDR; port=$MASTER_PORT; else host=\${peer%:*}; port=\${peer##*:}; fi
    n=0
    until [ "$( (echo "rank $RANK"; sleep 0.3) | busybox nc "$host" "$port" 2>/dev/null)" = ok ]; do
      n=$((n+1)); if [ $n -gt 200 ]; then echo "rank $RANK never reached rank $r at $host:$port"; exit 3; fi; sleep 0.1
    done
  fi
  r=$((r+1))
done
wait $listener || exit 4
echo "heard $(sort -u "$got" | tr '\\n' ' ')"
lines=$(heard); rm -f "$got"
sleep "\${HOLD:-0}"
[ "$lines" -eq $((WORLD_SIZE-1)) ]
`;

describe('gang wiring: replicas find each other', () => {
  let etcd: EtcdServer | undefined;
  let workers: TestWorker[] = [];
  let master: Master | undefined;
  beforeAll(async () => {
    etcd = await startEtcd({ name: 'gang-wiring' });
  });
  afterEach(async () => {
    await master?.stop();
    for (const w of workers) {
      await w.stop();
      if (w.config.executors.includes('docker')) await removeContainersByLabel(await requireDocker(), `titan.node=${w.worker.nodeId}`);
    }
    master = undefined;
    workers = [];
  });
  afterAll(async () => {
    await etcd?.stop();
  });

  const runtimes = {
    shell: { workerFlags: { docker: 'off', executors: 'shell' }, job: { shell: RENDEZVOUS } },
    'docker, host network': { workerFlags: { docker: 'on', executors: 'docker', network: 'host' }, job: { image: TEST_IMAGE, cmd: RENDEZVOUS } },
  } as const;

  it.each(Object.keys(runtimes) as (keyof typeof runtimes)[])('%s: 3 replicas on two workers (--advertise-addr 127.0.0.1) connect to each other with MASTER_ADDR, MASTER_PORT and TITAN_PEERS; the ports are held, and free again when the attempts end', async (runtime) => {
    if (!etcd) throw new Error('etcd is not started');
    const { workerFlags, job } = runtimes[runtime];
    if (workerFlags.docker === 'on') await requireDocker();
    // A holds two ports and B one, so one gang at a time fits by ports (CPU would take two).
    const rangeA = await freeRange(2);
    let rangeB = await freeRange(1);
    while (rangeB.first <= rangeA.last && rangeB.first >= rangeA.first) rangeB = await freeRange(1);
    const prefix = randomPrefix();
    const flags = { prefix, ...workerFlags, advertiseAddr: '127.0.0.1' };
    const a = await startTestWorker(etcd.endpoints, { ...flags, cpu: '4', portRange: `${rangeA.first}-${rangeA.last}` });
    workers.push(a);
    const b = await startTestWorker(etcd.endpoints, { ...flags, cpu: '2', portRange: `${rangeB.first}-${rangeB.last}` });
    workers.push(b);
    const store = a.store;
    const node = await store.listNodes();
    expect(node.items.map((n) => n.value.advertiseAddr)).toEqual(['127.0.0.1', '127.0.0.1']);
    master = await startMaster(etcd.endpoints, prefix);

    const first = await submitGang(store, buildJobSpec({ ...job, cpu: '1', memory: '64Mi', env: ['HOLD=3'], timeout: '60s' }), 3);
    await waitFor('the first gang to run', async () => {
      const all = await Promise.all(first.map(async (j) => (await store.requireJob(j.id)).value));
      return all.every((j) => j.state === 'Running') ? all : undefined;
    });
    // A second gang fits by CPU but not by ports while the first holds them: it waits, and says why.
    const second = await submitGang(store, buildJobSpec({ ...job, cpu: '1', memory: '64Mi', timeout: '60s' }), 3);
    const waiting = await waitFor('the second gang to wait for ports', async () => {
      const j = (await store.requireJob(second[0].id)).value;
      return j.state === 'Pending' && j.reason?.includes('but for ports') ? j : undefined;
    });
    expect(waiting.reason).toBe("gang waits: 0 of 3 replicas fit now (needs 3); 3 more would fit but for ports: every port of their nodes' --port-range is held");

    const peers = `127.0.0.1:${rangeA.first},127.0.0.1:${rangeA.first + 1},127.0.0.1:${rangeB.first}`;
    for (const gang of [first, second]) {
      const done = await waitFor(
        'the gang to succeed',
        async () => {
          const all = await Promise.all(gang.map(async (j) => (await store.requireJob(j.id)).value));
          if (all.some((j) => j.state === 'Failed' || j.state === 'Cancelled')) {
            const logs = await Promise.all(gang.map(async (j) => (await readLogs(store, j.id)).stdout));
            throw new Error(`a replica did not succeed: ${JSON.stringify(all.map((j) => [j.state, j.exitCode, j.reason]))}\n${logs.join('\n')}`);
          }
          return all.every((j) => j.state === 'Succeeded') ? all : undefined;
        },
        60_000,
      );
      expect(done.map((j) => j.node)).toEqual([a.config.nodeId, a.config.nodeId, b.config.nodeId]);
      const outputs = await Promise.all(gang.map(async (j) => (await readLogs(store, j.id)).stdout.trim().split('\n')));
      const ports = [rangeA.first, rangeA.first + 1, rangeB.first];
      outputs.forEach((lines, rank) => {
        expect(lines[0]).toBe(
          `env RANK=${rank} WORLD_SIZE=3 LOCAL_RANK=${[0, 1, 0][rank]} MASTER=127.0.0.1:${rangeA.first} PORT=${ports[rank]} PEERS=${peers}`,
        );
        const others = [0, 1, 2].filter((r) => r !== rank).map((r) => `rank ${r}`);
        expect(lines[1].trim()).toBe(`heard ${others.join(' ')}`);
      });
    }
    // The second gang ran on the very ports the first held: they were free again once its attempts ended.
    expect((await store.listAssignments()).items).toEqual([]);
  }, 150_000);
});
