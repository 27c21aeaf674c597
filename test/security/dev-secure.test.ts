import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../harness/ports.js';
import { runCli, startCli, type RunningCli } from '../cli/run-cli.js';

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

describe('titan dev --secure', () => {
  it('runs etcd with TLS and auth, prints the env for the CLI, and jobs run with it', async () => {
    const port = await freePort();
    const dev = startCli(['dev', '--secure', '--port', String(port), '--cpu', '2', '--memory', '2Gi'], { timeoutMs: 90_000 });
    running.push(dev);
    await dev.waitFor(({ stdout }) => stdout.includes('Press Ctrl-C to stop'), 60_000);
    const out = dev.stdout();
    expect(out).toMatch(/TLS with client certificates .*etcd auth on/);
    const exported = /^ {2}export (.+)$/m.exec(out);
    expect(exported, out).not.toBeNull();
    const env = Object.fromEntries((exported?.[1] ?? '').split(' ').map((kv) => kv.split('=') as [string, string]));
    expect(env).toMatchObject({ TITAN_ENDPOINTS: `https://127.0.0.1:${port}` });
    for (const file of [env.TITAN_ETCD_CA, env.TITAN_ETCD_CERT, env.TITAN_ETCD_KEY]) expect(fs.existsSync(file)).toBe(true);

    const submit = await runCli(['submit', '--shell', 'echo hello secure dev', '--wait'], { env, timeoutMs: 30_000 });
    expect(submit.code, submit.stderr).toBe(0);
    const logs = await runCli(['logs', submit.stdout.trim()], { env });
    expect(logs.stdout).toBe('hello secure dev\n');

    // Without a certificate etcd turns the CLI away, and says how to fix it.
    const anonymous = await runCli(['list'], { env: { TITAN_ENDPOINTS: env.TITAN_ENDPOINTS, TITAN_ETCD_CA: env.TITAN_ETCD_CA } });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(/requires a client certificate/);
  }, 120_000);
});
