#!/usr/bin/env node
import { Command, Option } from 'commander';
import { resolveWorkerConfig, Worker, type WorkerFlags } from '../../internal/worker/index.js';
import { addEtcdConnectionOptions } from '../../pkg/config/etcd-connection.js';
import { checkEtcdAccess } from '../../pkg/store/preflight.js';
import { runDaemon } from '../../pkg/process/daemon.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

const program = addEtcdConnectionOptions(new Command('titan-worker')
  .description('Titan worker: registers this node in etcd and runs the jobs the master assigns to it'))
  .option('--prefix <prefix>', 'etcd key prefix (env TITAN_PREFIX)')
  .option('--node-id <id>', 'node name in the cluster (env TITAN_NODE_ID; default: hostname)')
  .option('--cpu <amount>', 'CPU offered, e.g. 4 or 3500m (env TITAN_WORKER_CPU; default: all cores)')
  .option('--memory <size>', 'memory offered, e.g. 16Gi (env TITAN_WORKER_MEMORY; default: all RAM)')
  .option('--gpus <spec>', 'GPUs offered: none, a count (4) or indexes (0,2) (env TITAN_WORKER_GPUS; default: nvidia-smi)')
  .option('--label <k=v>', 'node label, repeatable (env TITAN_WORKER_LABELS as k=v,k=v)', collect)
  .option('--ttl <seconds>', 'registration lease TTL (env TITAN_WORKER_TTL; default 10)')
  .option('--max-log <size>', 'output kept per job attempt (env TITAN_WORKER_MAX_LOG; default 8Mi)')
  .option('--job-log-budget <size>', 'output kept per job across all its attempts; an attempt gets what is left (env TITAN_WORKER_JOB_LOG_BUDGET; default 16Mi)')
  .option('--advertise-addr <addr>', 'IP or hostname gang peers reach this node\'s jobs at, in TITAN_PEERS and MASTER_ADDR (env TITAN_WORKER_ADVERTISE_ADDR; default: hostname)')
  .option('--port-range <first-last>', 'ports gang replicas get here, one each while it runs (env TITAN_WORKER_PORT_RANGE; default 29500-29999)')
  .option('--network <mode>', 'Docker network mode of job containers, e.g. none or host (env TITAN_WORKER_NETWORK)')
  .addOption(new Option('--docker <mode>', 'use Docker: auto, on or off (env TITAN_WORKER_DOCKER; default auto)'))
  .option('--stop-grace <duration>', 'SIGTERM to SIGKILL grace for timed-out jobs (env TITAN_WORKER_STOP_GRACE; default 10s)')
  .option('--state-dir <dir>', 'private (0700) run journal kept across restarts (env TITAN_WORKER_STATE_DIR; default /var/lib/titan/worker-<node-id> as root, else $XDG_STATE_HOME/titan/worker-<node-id>)')
  .option('--node-lost-retries <n>', 'retries of attempts lost with the node; match the masters (env TITAN_NODE_LOST_RETRIES; default 3)')
  .option('--parallel-starts <n>', 'container creates and starts sent to Docker at once; more queue (env TITAN_WORKER_PARALLEL_STARTS; default 8)')
  .option('--pull-timeout <duration>', 'an image pull slower than this fails the run with ImagePullTimeout (env TITAN_WORKER_PULL_TIMEOUT; default 5m)')
  .option('--executors <list>', 'kinds of jobs run here: docker, shell or docker,shell; shell jobs run on the host (env TITAN_WORKER_EXECUTORS; default docker)')
  .option('--cap-allowlist <caps>', "capabilities job containers keep after dropping all, or none (env TITAN_WORKER_CAP_ALLOWLIST; default Docker's without NET_RAW)")
  .option('--pids-limit <n>', 'most processes per job container (env TITAN_WORKER_PIDS_LIMIT; default 4096)')
  .option('--job-user <uid[:gid]>', "user job containers run as (env TITAN_WORKER_JOB_USER; default the image's)")
  .option('--readonly-rootfs', 'read-only root filesystem in job containers, with a writable /tmp (env TITAN_WORKER_READONLY_ROOTFS)')
  .option('--shell-user <uid[:gid]>', "user shell jobs run as; the worker must be root (env TITAN_WORKER_SHELL_USER; default the worker's)")
  .option('--metrics-listen <host:port>', 'serve Prometheus metrics at GET /metrics (and /healthz) on host:port, e.g. 127.0.0.1:9100; a bare port is loopback (env TITAN_WORKER_METRICS_LISTEN; default off)')
  .option('-v, --verbose', 'debug logging (or LOG_LEVEL=debug)');

void runDaemon<WorkerFlags & { verbose?: boolean }>(program, async (flags, logger) => {
  const config = await resolveWorkerConfig(flags);
  await checkEtcdAccess(config.etcd, config.prefix, logger);
  return new Worker(config, logger);
});
