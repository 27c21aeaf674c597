import { describe, expect, it } from 'vitest';
import { Keys } from '../../pkg/store/keys.js';
import fs from 'node:fs';
import { clusterRoles, describeGrant, masterRole, nodeRole, readerRole, operatorRole, rolesTable } from '../../pkg/store/roles.js';
import { prefixEnd } from '../../pkg/store/txn.js';

const keys = new Keys('/titan');

/** Whether a grant covers a key, as etcd decides it: [key, range_end), or the key alone. */
function covers(grant: { key: string; prefix: boolean }, key: string): boolean {
  if (!grant.prefix) return key === grant.key;
  return Buffer.compare(Buffer.from(key), Buffer.from(grant.key)) >= 0 && Buffer.compare(Buffer.from(key), prefixEnd(grant.key)) < 0;
}

describe('roles', () => {
  it('grant every prefix with its trailing separator', () => {
    for (const role of [...clusterRoles(keys), nodeRole(keys, 'n1')]) {
      for (const grant of role.grants) if (grant.prefix) expect(grant.key.endsWith('/'), describeGrant(grant)).toBe(true);
    }
  });

  it("give node n1 its own keys and not n10's", () => {
    const grants = nodeRole(keys, 'n1').grants;
    const allowed = (key: string, write: boolean): boolean =>
      grants.some((g) => covers(g, key) && (g.access === 'Readwrite' || (!write && g.access === 'Read')));
    expect(allowed(keys.node('n1'), true)).toBe(true);
    expect(allowed(keys.report('n1', 'j1'), true)).toBe(true);
    expect(allowed(keys.logChunk('n1', 'j1', 1, 0), true)).toBe(true);
    expect(allowed(keys.assignment('n1', 'j1'), false)).toBe(true);
    expect(allowed(keys.assignment('n1', 'j1'), true)).toBe(false);
    expect(allowed(keys.layout(), false)).toBe(true);
    // Nothing of another node (n10 shares n1's first letters), of the jobs, the queues or the leader.
    for (const key of [keys.node('n10'), keys.assignment('n10', 'j1'), keys.report('n10', 'j1'), keys.logChunk('n10', 'j1', 1, 0), keys.job('j1'), keys.queue('q'), keys.leader()]) {
      expect(allowed(key, false), key).toBe(false);
    }
  });

  it('keep to the prefix: /titan does not cover /titan2', () => {
    for (const role of [masterRole(keys), operatorRole(keys), readerRole(keys)]) {
      expect(role.grants.some((g) => covers(g, '/titan2/jobs/x'))).toBe(false);
      expect(role.grants.some((g) => covers(g, keys.job('x')))).toBe(true);
    }
    expect(readerRole(keys).grants.every((g) => g.access === 'Read')).toBe(true);
  });

  it('are the table docs/etcd-layout.md shows', () => {
    const doc = fs.readFileSync(new URL('../../docs/etcd-layout.md', import.meta.url), 'utf8');
    expect(doc).toContain(rolesTable(keys));
  });
});
