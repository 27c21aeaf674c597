import { describe, expect, it } from 'vitest';
import { hashSecret } from '../../pkg/model/token.js';
import { etcdSuite } from '../harness/etcd-suite.js';
import { runCli } from './run-cli.js';

const ctx = etcdSuite('cli-tokens');
const cli = (...args: string[]) => runCli(args, { endpoints: ctx.etcd.endpoints, prefix: ctx.prefix });

describe('titan token create|list|revoke', () => {
  it('prints the secret once, stores only its hash, lists without secrets and revokes', async () => {
    const created = await cli('token', 'create', '--role', 'submitter', '--queue', 'team-a', '--ttl', '30d', '--name', 'ci', '-o', 'json');
    expect(created.code, created.stderr).toBe(0);
    const { id, secret, role, queues, expiresAt } = JSON.parse(created.stdout) as { id: string; secret: string; role: string; queues: string[]; expiresAt: number };
    expect({ role, queues }).toEqual({ role: 'submitter', queues: ['team-a'] });
    expect(expiresAt - Date.now()).toBeGreaterThan(29 * 86_400_000);
    const stored = (await ctx.store.getToken(id))?.value;
    expect(stored?.hash).toBe(hashSecret(secret));
    expect(JSON.stringify(stored)).not.toContain(secret);

    const table = await cli('token', 'create', '--role', 'reader');
    expect(table.stdout).toMatch(/^titan_[a-z0-9]{12}_\S+\n$/);
    expect(table.stderr).toMatch(/shown only now/);

    const listed = await cli('token', 'list', '-o', 'json');
    expect(listed.stdout).not.toContain(secret);
    expect(listed.stdout).not.toContain('hash');
    expect((JSON.parse(listed.stdout) as unknown[]).length).toBe(2);

    expect((await cli('token', 'revoke', id)).stdout).toBe(`token ${id} revoked\n`);
    expect(await ctx.store.getToken(id)).toBeUndefined();
    expect((await cli('token', 'revoke', id)).code).toBe(1);
  });

  it('refuses bad input with exit 2 and writes nothing', async () => {
    for (const args of [['--role', 'root'], [], ['--role', 'admin', '--queue', 'a'], ['--role', 'reader', '--ttl', 'soon'], ['--role', 'reader', '--queue', 'bad/name']]) {
      const res = await cli('token', 'create', ...args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toMatch(/^error: /);
    }
    expect((await cli('token', 'revoke', 'NOT-AN-ID')).code).toBe(2);
    expect((await ctx.store.listTokens()).items).toHaveLength(0);
  });
});
