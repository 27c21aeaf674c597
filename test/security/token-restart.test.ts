import { Etcd3, type Watcher } from 'etcd3';
import { afterAll, expect, it } from 'vitest';
import { connectEtcd } from '../../pkg/store/client.js';
import { cancelWatcher } from '../../pkg/store/watch.js';
import { startEtcd, type EtcdServer } from '../harness/etcd.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let etcd: EtcdServer;
afterAll(async () => {
  await etcd?.stop();
});

function follow(c: Etcd3, prefix: string, seen: Set<string>, log: string[]): void {
  const loop = async (): Promise<void> => {
    for (;;) {
      let w: Watcher;
      try { w = await c.watch().prefix(prefix).create(); } catch (err) { log.push(`${prefix} create failed ${(err as Error).message}`); await sleep(100); continue; }
      w.on('put', (kv) => seen.add(kv.key.toString()));
      const err = await new Promise<Error>((r) => w.once('error', r));
      log.push(`${Date.now()} ${prefix} watch error ${err.message}`);
      await cancelWatcher(w);
    }
  };
  void loop();
}

// After an etcd restart every simple token is gone; the first call through the reopened circuit
// breaker then fails on its token, and etcd3's retry of it must not wait on that call itself
// (pkg/store/client.ts): a client that did stopped every later call and watch, silently.
it('every watch of a busy client sees new keys after each of three etcd restarts with simple tokens', async () => {
  etcd = await startEtcd({ name: 'ttl-repro', args: ['--auth-token', 'simple', '--auth-token-ttl', '2'] });
  const admin = new Etcd3({ hosts: etcd.endpoints });
  await admin.role('root').create();
  await admin.user('root').create('pw');
  await admin.user('root').addRole('root');
  await admin.auth.authEnable();
  admin.close();
  const log: string[] = [];
  const master = connectEtcd({ endpoints: [etcd.endpoints].flat() as string[], auth: { user: 'root', password: 'pw' } });
  const worker = connectEtcd({ endpoints: [etcd.endpoints].flat() as string[], auth: { user: 'root', password: 'pw' } });
  const seen = new Set<string>();
  const prefixes = ['m/a/', 'm/b/', 'm/c/', 'm/d/', 'm/e/'];
  for (const p of prefixes) follow(master, p, seen, log);
  follow(worker, 'w/a/', seen, log);
  const ticker = setInterval(() => { master.get('tick').catch(() => undefined); }, 300);
  const writer = () => connectEtcd({ endpoints: [etcd.endpoints].flat() as string[], auth: { user: 'root', password: 'pw' } });
  try {
    for (let round = 0; round < 3; round++) {
      await etcd.kill();
      await sleep(2500);
      await etcd.restart();
      await sleep(3000 + Math.random() * 4000);
      const wc = writer();
      const keys = [...prefixes, 'w/a/'].map((p) => `${p}k${round}`);
      for (const k of keys) await wc.put(k).value('v');
      wc.close();
      const deadline = Date.now() + 15000;
      while (Date.now() < deadline && !keys.every((k) => seen.has(k))) await sleep(100);
      const missing = keys.filter((k) => !seen.has(k));
      const st = (c: Etcd3) => { const m = (c as unknown as { watchManager: { state: number; watchers: { id: unknown }[]; queue?: { state: number; queue: unknown[] } } }).watchManager; return `state=${m.state} ids=${m.watchers.map((w) => String(w.id)).join(',')} q=${m.queue?.state}/${m.queue?.queue.length}`; };
      expect(missing, `round ${round}\nmaster ${st(master)}\nworker ${st(worker)}\n${log.join('\n')}`).toEqual([]);
    }
  } finally {
    clearInterval(ticker);
    master.close();
    worker.close();
  }
}, 400_000);
