#!/usr/bin/env node
import { Command, Option } from 'commander';
import { Master, resolveMasterConfig, type MasterFlags } from '../../internal/master/index.js';
import { policyNames, SAMPLE_NODES_HELP } from '../../internal/scheduler/index.js';
import { addEtcdConnectionOptions } from '../../pkg/config/etcd-connection.js';
import { checkEtcdAccess } from '../../pkg/store/preflight.js';
import { runDaemon } from '../../pkg/process/daemon.js';
import { withApi } from '../../internal/api/master-api.js';

const program = addEtcdConnectionOptions(new Command('titan-master')
  .description('Titan master: watches jobs and nodes in etcd and places jobs on nodes'))
  .option('--prefix <prefix>', 'etcd key prefix (env TITAN_PREFIX)')
  .addOption(new Option('--policy <name>', `placement policy (env TITAN_MASTER_POLICY): ${policyNames().join(', ')}`))
  .option('--sample-nodes <n|all>', `${SAMPLE_NODES_HELP} (env TITAN_MASTER_SAMPLE_NODES)`)
  .option('--id <id>', 'name of this master in the leader key (env TITAN_MASTER_ID; default host-pid)')
  .option('--lease-ttl <seconds>', 'leadership lease TTL: a dead leader is replaced within about this long (default 5)')
  .option('--node-lost-retries <n>', 'how often an attempt lost with its node is retried (default 3)')
  .option('--retain <duration>', 'remove ended jobs and their logs this long after they end (env TITAN_MASTER_RETAIN; default 24h)')
  .option('--evict-grace <duration>', 'an evicted job gets SIGTERM, then SIGKILL after this long (env TITAN_MASTER_EVICT_GRACE; default 10s)')
  .option('--min-runtime <duration>', 'jobs run at least this long before they may be evicted, unless they set their own (env TITAN_MASTER_MIN_RUNTIME; default 0)')
  .option('--retain-jobs <n>', 'keep at most this many ended jobs, oldest removed first (env TITAN_MASTER_RETAIN_JOBS; default 10000)')
  .option('--retention-interval <duration>', 'how often the leader removes ended jobs (env TITAN_MASTER_RETENTION_INTERVAL; default 60s)')
  .option('--compact-history <duration|off>', "etcd history kept: the leader compacts (all of etcd) to the revision it saw this long ago, or never with off; a watcher further behind re-lists (env TITAN_MASTER_COMPACT_HISTORY; default 5m)")
  .option('--start-deadline <duration>', 'an attempt its node has not started this long after placement goes back to Pending (env TITAN_MASTER_START_DEADLINE; default 5m)')
  .option('--etcd-quota-bytes <size>', "etcd's --quota-backend-bytes: past 80% of it new submits are refused and ended jobs go sooner (env TITAN_MASTER_ETCD_QUOTA_BYTES; default 2Gi)")
  .option('--commit-batch <n>', 'placements per etcd transaction, at most 63')
  .option('--commit-concurrency <n>', 'placement transactions in flight')
  .option('--listen <host:port>', 'serve the HTTP API, metrics and dashboard here, e.g. 127.0.0.1:4646 (env TITAN_MASTER_LISTEN; default: none)')
  .option('--tls-cert <file>', 'PEM certificate of the API listener: HTTPS only (env TITAN_MASTER_TLS_CERT)')
  .option('--tls-key <file>', 'PEM key of --tls-cert (env TITAN_MASTER_TLS_KEY)')
  .option('-v, --verbose', 'debug logging (or LOG_LEVEL=debug)');

void runDaemon<MasterFlags & { verbose?: boolean }>(program, async (flags, logger) => {
  const config = resolveMasterConfig(flags);
  await checkEtcdAccess(config.etcd, config.prefix, logger);
  const master = new Master(config, logger);
  return config.api ? withApi(master, config.api, logger) : master;
});
