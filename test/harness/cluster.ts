import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store } from '../../pkg/store/index.js';
import { dockerClient, removeContainersByLabel } from './docker.js';
import { runCli, type CliResult } from '../cli/run-cli.js';
import { BIN, startProcess, type TitanProcess } from './processes.js';
import type { EtcdServer } from './etcd.js';
import { randomPrefix } from './wait.js';

/**
 * A Titan cluster of real processes on one etcd, under a random key prefix:
 * masters and workers are started and killed like in production.
 */
export class ProcessCluster {
  readonly prefix = randomPrefix();
  readonly store: Store;
  readonly processes: TitanProcess[] = [];
  private readonly workerIds = new Set<string>();
  private readonly stateRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-cluster-'));

  constructor(readonly etcd: EtcdServer) {
    this.store = new Store({ endpoints: [etcd.endpoints], prefix: this.prefix });
  }

  get env(): NodeJS.ProcessEnv {
    return { TITAN_ENDPOINTS: this.etcd.endpoints, TITAN_PREFIX: this.prefix };
  }

  startMaster(args: string[] = []): TitanProcess {
    const p = startProcess('master', BIN.master, args, this.env);
    this.processes.push(p);
    return p;
  }

  /** A worker with Docker and shell jobs, containers on network "none", its state under the cluster's temp dir; extra flags (e.g. --cpu 2, --executors docker) override. */
  startWorker(nodeId: string, args: string[] = []): TitanProcess {
    const stateDir = path.join(this.stateRoot, nodeId);
    const defaults = ['--node-id', nodeId, '--network', 'none', '--ttl', '3', '--state-dir', stateDir, '--executors', 'docker,shell'];
    const p = startProcess(`worker ${nodeId}`, BIN.worker, [...defaults, ...args], this.env);
    this.processes.push(p);
    this.workerIds.add(nodeId);
    return p;
  }

  cli(...args: string[]): Promise<CliResult> {
    return runCli(args, { endpoints: this.etcd.endpoints, prefix: this.prefix, timeoutMs: 60_000 });
  }

  /** Output of every process, for failure messages. */
  logs(): string {
    return this.processes.map((p) => `--- ${p.name}\n${p.output().slice(-5000)}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.kill('SIGTERM')));
    const docker = dockerClient();
    for (const id of this.workerIds) await removeContainersByLabel(docker, `titan.node=${id}`);
    fs.rmSync(this.stateRoot, { recursive: true, force: true });
    this.store.close();
  }
}
