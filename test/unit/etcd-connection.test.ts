import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkNodeIdentity, resolveEtcdConnection } from '../../pkg/config/etcd-connection.js';
import { normalizeEndpoints } from '../../pkg/store/client.js';

// resolveEtcdConnection reads real files: certificates made by scripts/pki.sh (openssl).
let dir: string;
const file = (name: string): string => path.join(dir, name);

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-conn-'));
  execFileSync('bash', [path.resolve(import.meta.dirname, '../../scripts/pki.sh'), dir, 'n1'], { stdio: 'ignore' });
  fs.writeFileSync(file('password'), 'secret\n');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('resolveEtcdConnection', () => {
  it('is plain endpoints without TLS flags', () => {
    expect(resolveEtcdConnection({}, {})).toEqual({ endpoints: ['127.0.0.1:2379'] });
    expect(resolveEtcdConnection({ endpoints: 'a:1,b:2' }, {})).toEqual({ endpoints: ['a:1', 'b:2'] });
  });

  it('reads the CA, certificate and key from flags or env, flags first', () => {
    const c = resolveEtcdConnection({ etcdCa: file('ca.pem'), etcdCert: file('titan-node-n1.pem'), etcdKey: file('titan-node-n1-key.pem') }, {});
    expect(c.tls?.ca?.toString()).toContain('BEGIN CERTIFICATE');
    expect(c.tls?.commonName).toBe('titan-node-n1');
    const env = { TITAN_ETCD_CA: file('ca.pem'), TITAN_ETCD_CERT: file('root.pem'), TITAN_ETCD_KEY: file('root-key.pem') };
    expect(resolveEtcdConnection({}, env).tls?.commonName).toBe('root');
    expect(resolveEtcdConnection({ etcdCert: file('titan-master.pem'), etcdKey: file('titan-master-key.pem') }, env).tls?.commonName).toBe('titan-master');
  });

  it('turns TLS on for https:// endpoints, and refuses http:// with TLS flags', () => {
    expect(resolveEtcdConnection({ endpoints: 'https://e:1' }, {}).tls).toEqual({});
    expect(() => resolveEtcdConnection({ endpoints: 'http://e:1', etcdCa: file('ca.pem') }, {})).toThrowError(/^--endpoints: http:\/\/e:1 is plain http but TLS is configured/);
    expect(() => resolveEtcdConnection({ etcdCa: file('ca.pem') }, { TITAN_ENDPOINTS: 'http://e:1' })).toThrowError(/^TITAN_ENDPOINTS: /);
  });

  it('takes the password from TITAN_ETCD_PASSWORD or a file, never alone', () => {
    expect(resolveEtcdConnection({ etcdUser: 'alice' }, { TITAN_ETCD_PASSWORD: 'pw' }).auth).toEqual({ user: 'alice', password: 'pw' });
    expect(resolveEtcdConnection({ etcdPasswordFile: file('password') }, { TITAN_ETCD_USER: 'bob' }).auth).toEqual({ user: 'bob', password: 'secret' });
    expect(() => resolveEtcdConnection({ etcdUser: 'alice' }, {})).toThrowError(/^--etcd-user: needs a password/);
    expect(() => resolveEtcdConnection({ etcdPasswordFile: file('password') }, {})).toThrowError(/^--etcd-password-file: needs --etcd-user/);
  });

  it('names the flag of a bad file', () => {
    expect(() => resolveEtcdConnection({ etcdCa: file('missing.pem') }, {})).toThrowError(/^--etcd-ca: cannot read .*missing\.pem \(no such file\)/);
    expect(() => resolveEtcdConnection({ etcdCa: file('password') }, {})).toThrowError(/^--etcd-ca: .* is not a PEM certificate/);
    expect(() => resolveEtcdConnection({ etcdCert: file('root.pem') }, {})).toThrowError(/^--etcd-key: is needed with --etcd-cert/);
    expect(() => resolveEtcdConnection({ etcdCert: file('root.pem'), etcdKey: file('ca.pem') }, {})).toThrowError(/^--etcd-key: .* is not a PEM private key/);
    expect(() => resolveEtcdConnection({ etcdCert: file('root.pem'), etcdKey: file('titan-master-key.pem') }, {})).toThrowError(/^--etcd-key: does not belong/);
  });
});

describe('checkNodeIdentity', () => {
  const withCert = (name: string) =>
    resolveEtcdConnection({ etcdCa: file('ca.pem'), etcdCert: file(`${name}.pem`), etcdKey: file(`${name}-key.pem`) }, {});

  it("accepts the node's own certificate and refuses another Titan identity", () => {
    expect(() => checkNodeIdentity(withCert('titan-node-n1'), 'n1')).not.toThrow();
    expect(() => checkNodeIdentity(withCert('titan-node-n1'), 'n10')).toThrowError(/certificate is for "titan-node-n1" but this worker is --node-id n10/);
    expect(() => checkNodeIdentity(withCert('titan-master'), 'n1')).toThrowError(/expected CN titan-node-n1/);
  });

  it('leaves alone a password login and certificates of another PKI', () => {
    expect(() => checkNodeIdentity(withCert('root'), 'n1')).not.toThrow();
    expect(() => checkNodeIdentity({ ...withCert('titan-master'), auth: { user: 'titan-node-n1', password: 'x' } }, 'n1')).not.toThrow();
  });
});

describe('normalizeEndpoints', () => {
  it('adds http://, or https:// with TLS, and keeps explicit schemes', () => {
    expect(normalizeEndpoints(['a:1', 'http://b:2'])).toEqual(['http://a:1', 'http://b:2']);
    expect(normalizeEndpoints(['a:1,https://b:2'], true)).toEqual(['https://a:1', 'https://b:2']);
  });
});
