import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const composeFile = path.join(root, 'docker-compose.yml');

/** First compose CLI that works: the docker plugin, then standalone docker-compose. */
function composeCli(): string[] | undefined {
  for (const cmd of [['docker', 'compose'], ['docker-compose']]) {
    try {
      execFileSync(cmd[0], [...cmd.slice(1), 'version'], { stdio: 'ignore', timeout: 15_000 });
      return cmd;
    } catch {}
  }
  return undefined;
}

describe('docker-compose.yml', () => {
  const text = fs.readFileSync(composeFile, 'utf8');

  it('declares etcd, master and two workers with the docker socket', () => {
    for (const svc of ['etcd', 'master', 'worker1', 'worker2']) {
      expect(text).toMatch(new RegExp(`^  ${svc}:`, 'm'));
    }
    expect(text).toContain('/var/run/docker.sock:/var/run/docker.sock');
    expect(text).toContain('etcd:2379');
  });

  it('is accepted by compose (when a compose CLI is installed)', () => {
    const cli = composeCli();
    if (!cli) return; // text checks above are the fallback
    execFileSync(cli[0], [...cli.slice(1), '-f', composeFile, 'config', '-q'], {
      cwd: root,
      stdio: 'pipe',
      timeout: 30_000,
    });
  });

  it('has a Dockerfile with overridable base image', () => {
    const dockerfile = fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node"\]/m);
  });
});
