import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { EtcdConnectionFlags } from '../../pkg/config/etcd-connection.js';
import { TitanError } from '../../pkg/model/errors.js';
import type { EtcdServerTls } from './etcd-process.js';

/** scripts/pki.sh of this checkout: `titan dev --secure` runs from the repository. */
const PKI_SCRIPT = path.resolve(import.meta.dirname, '../../../scripts/pki.sh');

/** The certificates of a secure local cluster (scripts/pki.sh) and who uses which. */
export interface DevPki {
  dir: string;
  etcd: EtcdServerTls;
  /** --etcd-ca/--etcd-cert/--etcd-key of one certificate: root, titan-master, titan-node-<id>, titan-operator. */
  flags(name: string): Required<Pick<EtcdConnectionFlags, 'etcdCa' | 'etcdCert' | 'etcdKey'>>;
  /** The same as TITAN_ETCD_* variables, to print for the user. */
  env(name: string): Record<string, string>;
}

/** Makes (or keeps) a CA and the certificates of etcd, root, the master, the nodes and an operator in `dir`. */
export function makeDevPki(dir: string, nodeIds: string[]): DevPki {
  if (!fs.existsSync(PKI_SCRIPT)) {
    throw new TitanError('Unavailable', `titan dev --secure needs ${PKI_SCRIPT} (run it from a Titan checkout)`);
  }
  try {
    execFileSync('bash', [PKI_SCRIPT, dir, ...nodeIds], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new TitanError('Unavailable', `making certificates with ${PKI_SCRIPT} failed${stderr ? `: ${stderr}` : ''}`, { cause: err });
  }
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    etcd: { certFile: file('server.pem'), keyFile: file('server-key.pem'), caFile: file('ca.pem') },
    flags: (name) => ({ etcdCa: file('ca.pem'), etcdCert: file(`${name}.pem`), etcdKey: file(`${name}-key.pem`) }),
    env: (name) => ({ TITAN_ETCD_CA: file('ca.pem'), TITAN_ETCD_CERT: file(`${name}.pem`), TITAN_ETCD_KEY: file(`${name}-key.pem`) }),
  };
}
