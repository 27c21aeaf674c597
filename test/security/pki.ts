import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { track } from '../harness/watchdog.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const PKI_SCRIPT = path.join(ROOT, 'scripts/pki.sh');

/** A CA and certificates made by scripts/pki.sh (openssl) in a temporary dir. */
export interface Pki {
  dir: string;
  ca: string;
  /** --etcd-ca/--etcd-cert/--etcd-key for the certificate `name` (root, titan-master, titan-node-<id>, titan-operator). */
  flags(name: string): string[];
  /** The same as TITAN_ETCD_* variables. */
  env(name: string): Record<string, string>;
  remove(): void;
}

/** Fails (never skips) without openssl: the script needs it. */
export function makePki(nodeIds: string[] = []): Pki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-pki-'));
  track('dir', true, dir);
  execFileSync('bash', [PKI_SCRIPT, dir, ...nodeIds], { stdio: ['ignore', 'ignore', 'pipe'] });
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    ca: file('ca.pem'),
    flags: (name) => ['--etcd-ca', file('ca.pem'), '--etcd-cert', file(`${name}.pem`), '--etcd-key', file(`${name}-key.pem`)],
    env: (name) => ({ TITAN_ETCD_CA: file('ca.pem'), TITAN_ETCD_CERT: file(`${name}.pem`), TITAN_ETCD_KEY: file(`${name}-key.pem`) }),
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
      track('dir', false, dir);
    },
  };
}
