import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { runCli, startCli, type RunningCli } from './run-cli.js';

const running: RunningCli[] = [];

afterEach(async () => {
  for (const run of running.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill('SIGINT');
      const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
      await run.result;
      clearTimeout(timer);
    }
  }
});

async function etcdAnswers(endpoint: string): Promise<boolean> {
  try {
    await fetch(`http://${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    return true;
  } catch {
    return false;
  }
}

describe('titan dev', () => {
  it('runs etcd, a master and a worker; jobs run; Ctrl-C stops everything and removes the data', async () => {
    // Hold the requested port so dev must pick another one and say so.
    const blocker = net.createServer();
    const busy = await freePort();
    await new Promise<void>((resolve) => blocker.listen(busy, '127.0.0.1', resolve));
    try {
      const apiPort = await freePort();
      const dev = startCli(['dev', '--port', String(busy), '--api-port', String(apiPort), '--cpu', '2', '--memory', '2Gi'], { timeoutMs: 90_000 });
      running.push(dev);
      await dev.waitFor(({ stdout }) => stdout.includes('Press Ctrl-C to stop'), 45_000);
      const out = dev.stdout();
      expect(out).toMatch(new RegExp(`port ${busy} is busy; using \\d+ instead`));
      expect(out).toMatch(/Docker executor (ON|OFF)/);
      const endpoint = /etcd is up on (127\.0\.0\.1:\d+) \(data in (\S+), removed on exit\)/.exec(out);
      expect(endpoint).not.toBeNull();
      const [, endpoints, dataDir] = endpoint ?? [];
      expect(out).toContain(`TITAN_ENDPOINTS=${endpoints} titan submit --shell 'echo hello'`);
      expect(out).toContain(`TITAN_ENDPOINTS=${endpoints} titan submit --image busybox --cmd 'echo hi'`);
      expect(fs.existsSync(dataDir)).toBe(true);

      const submit = await runCli(['submit', '--shell', 'echo hello from dev', '--wait'], { endpoints, timeoutMs: 30_000 });
      expect(submit.code, submit.stderr).toBe(0);
      const id = submit.stdout.trim();
      expect(submit.stderr).toMatch(new RegExp(`job ${id} Succeeded \\(exit 0\\)`));
      const logs = await runCli(['logs', id], { endpoints });
      expect(logs.stdout).toBe('hello from dev\n');

      const nodes = await runCli(['nodes', '-o', 'json'], { endpoints });
      const list = JSON.parse(nodes.stdout) as { capacity: { cpu: number; memory: number }; executors: string[] }[];
      expect(list).toHaveLength(1);
      expect(list[0].capacity).toMatchObject({ cpu: 2000, memory: 2 * 2 ** 30 });
      expect(list[0].executors).toContain('shell');

      // The API serves on the port asked for, with the admin token printed for this run.
      const api = /export TITAN_ADDR=(\S+) TITAN_TOKEN=(\S+)/.exec(out);
      expect(api?.[1]).toBe(`http://127.0.0.1:${apiPort}`);
      const viaApi = await fetch(`${api?.[1]}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${api?.[2]}` } });
      expect(((await viaApi.json()) as { state: string }).state).toBe('Succeeded');
      // The master's metrics, on the same listener, without a token.
      const metrics = await (await fetch(`${api?.[1]}/metrics`)).text();
      expect(metrics).toMatch(/^titan_master_leader 1$/m);

      const sleeper = await runCli(['submit', '--shell', 'sleep 60'], { endpoints });
      expect(sleeper.code).toBe(0);

      const stopping = Date.now();
      dev.child.kill('SIGINT');
      const res = await dev.result;
      expect(res.code, res.stderr).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(20_000);
      expect(res.stdout).toMatch(/titan dev: stopped/);
      expect(fs.existsSync(dataDir)).toBe(false);
      expect(await etcdAnswers(endpoints)).toBe(false);
    } finally {
      blocker.close();
    }
  });

  it('keeps a --data-dir', async () => {
    const dir = fs.mkdtempSync('/tmp/titan-dev-keep-');
    try {
      const port = await freePort();
      const dev = startCli(['dev', '--port', String(port), '--data-dir', dir], { timeoutMs: 90_000 });
      running.push(dev);
      await dev.waitFor(({ stdout }) => stdout.includes('Press Ctrl-C to stop'), 45_000);
      expect(dev.stdout()).toContain(`etcd is up on 127.0.0.1:${port} (data in ${dir})`);
      dev.child.kill('SIGTERM');
      const res = await dev.result;
      expect(res.code, `${res.signal} ${res.stderr.slice(-1500)}`).toBe(0);
      expect(fs.existsSync(`${dir}/etcd/member`)).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says how to install etcd when it is missing', async () => {
    const res = await runCli(['dev'], { env: { ETCD_BIN: '/nonexistent/etcd' } });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^error: .*apt-get install etcd-server/);
    const noPath = await runCli(['dev'], { env: { PATH: '/nonexistent' } });
    expect(noPath.code).toBe(1);
    expect(noPath.stderr).toMatch(/etcd binary not found on PATH; install it with `apt-get install etcd-server`/);
  });

  it('rejects a bad --port with exit 2', async () => {
    const res = await runCli(['dev', '--port', '70000']);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: port: /);
  });
});
