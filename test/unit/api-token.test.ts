import { describe, expect, it } from 'vitest';
import { planToken } from '../../internal/cli/tokens.js';
import { hashSecret, roleAllows, secretMatches, tokenIdOf, tokenRefusal } from '../../pkg/model/token.js';
import { records } from '../../pkg/store/codec.js';
import { encode } from '../../pkg/store/codec.js';

describe('API tokens', () => {
  it('are stored as a hash; the secret names its id and matches only itself', () => {
    const { token, secret } = planToken({ role: 'submitter', queue: ['team-a', 'team-a'] }, 1000);
    expect(token.hash).toBe(hashSecret(secret));
    expect(JSON.stringify(token)).not.toContain(secret.slice(20));
    expect(tokenIdOf(secret)).toBe(token.id);
    expect(token.queues).toEqual(['team-a']);
    expect(secretMatches(token, secret)).toBe(true);
    expect(secretMatches(token, `${secret}x`)).toBe(false);
    expect(tokenIdOf('Bearer nonsense')).toBeUndefined();
    expect(records.token.decode(encode(token), 'k')).toEqual(token);
  });

  it('give each role the permissions of the roles before it', () => {
    expect(roleAllows('reader', 'read')).toBe(true);
    expect(roleAllows('reader', 'submit')).toBe(false);
    expect(roleAllows('submitter', 'manage-queues')).toBe(false);
    expect(roleAllows('operator', 'manage-queues')).toBe(true);
    expect(roleAllows('operator', 'manage-tokens')).toBe(false);
    expect(roleAllows('admin', 'manage-tokens')).toBe(true);
  });

  it('expire, and refuse bad flags before anything is written', () => {
    const { token, secret } = planToken({ role: 'reader', ttl: '1h' }, 0);
    expect(tokenRefusal(token, secret, 3_599_999)).toBeUndefined();
    expect(tokenRefusal(token, secret, 3_600_000)?.message).toMatch(/expired/);
    expect(() => planToken({})).toThrow(/--role/);
    expect(() => planToken({ role: 'root' })).toThrow(/not a role/);
    expect(() => planToken({ role: 'admin', queue: ['a'] })).toThrow(/queue/);
    expect(() => planToken({ role: 'reader', ttl: 'soon' })).toThrow(/ttl/);
  });
});
