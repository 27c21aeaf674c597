import { Command, Option } from 'commander';
import { invalidInput, MAX_ARRAY_TASKS, parseCpu, parseDuration, parseMemory, parseNonNegativeInteger, parsePositiveInteger } from '../../pkg/model/index.js';

export type OutputFormat = 'table' | 'json';

export interface BenchOptions {
  nodes: number;
  jobs: number;
  /** Submits per second in the dispatch-latency phase. */
  rate: number;
  latencyJobs: number;
  /** Submits at --rate before the measured ones, uncounted (ms of the schedule). */
  warmupMs: number;
  /** Millicores and bytes per simulated node. */
  nodeCpu: number;
  nodeMemory: number;
  /** Request of every bench job. */
  jobCpu: number;
  jobMemory: number;
  output: OutputFormat;
  /** An existing etcd (the bench uses a random prefix in it); none: the bench starts its own. */
  endpoints?: string;
  /** Own etcd with TLS, client certificates and auth (scripts/pki.sh). With --endpoints, TITAN_ETCD_* say how to connect. */
  tls: boolean;
  keepJobs: boolean;
  /** Nodes report Succeeded after Running (false: --no-complete). */
  complete: boolean;
  runMs: number;
  ackConcurrency: number;
  nodesPerLease: number;
  leaseTtlSeconds: number;
  /** Let the simulated nodes write while placements are being measured. */
  ackDuringPlacement: boolean;
  etcdKeys: number;
  etcdSequentialPuts: number;
  etcdTxnPuts: number;
  etcdInFlight: number;
  /** Hard limit of the whole run, and of each waiting phase. */
  timeoutSeconds: number;
  phaseTimeoutSeconds: number;
  /** Directory for a V8 CPU profile of the master (node --cpu-prof for the master only). */
  masterCpuProf?: string;
  /** NODE_OPTIONS for the master child, verbatim. */
  masterNodeOptions?: string;
  /**
   * The master's --retain-jobs (TITAN_MASTER_RETAIN_JOBS). Unset: above the
   * run's job count, so every job stays in etcd; set: the run ends by waiting
   * for retention and compaction, and measures etcd's database again.
   */
  retainJobs?: number;
  /** The master's retention sweep interval (TITAN_MASTER_RETENTION_INTERVAL), in ms; 10 s by default with --retain-jobs. */
  retentionIntervalMs?: number;
  /**
   * --api: the master serves its HTTP API, and the placement burst and the
   * dispatch phase each run twice, the second time with `apiClients`
   * dashboard clients and one log follower on the API (docs/benchmarks.md).
   */
  api: boolean;
  apiClients: number;
  /** Tasks of the arrays phase's array (and single jobs of its control burst); 0 skips the phase. */
  arrayTasks: number;
}

/** Parses the bench's flags (argv without node and script); throws InvalidInput naming the flag. */
export function parseBenchOptions(argv: readonly string[]): BenchOptions {
  const program = new Command('bench')
    .description('Titan performance benchmark: its own etcd, a real master process, simulated nodes')
    .option('--nodes <n>', 'simulated nodes', '1000')
    .option('--jobs <n>', 'jobs queued at once for the submit and placement phases (0: skip them)', '20000')
    .option('--rate <n>', 'submits per second in the dispatch-latency phase', '500')
    .option('--latency-jobs <n>', 'jobs submitted one by one at --rate (0: skip the phase)', '5000')
    .option('--warmup <duration>', 'submits at --rate for this long before the measured ones, uncounted', '1s')
    .option('--node-cpu <cpu>', 'CPU of each simulated node', '64')
    .option('--node-mem <bytes>', 'memory of each simulated node', '256Gi')
    .option('--job-cpu <cpu>', 'CPU request of every bench job', '100m')
    .option('--job-mem <bytes>', 'memory request of every bench job', '64Mi')
    .addOption(new Option('--output <format>', 'table (humans) or json (the result object only, on stdout)').choices(['table', 'json']).default('table'))
    .option('--endpoints <list>', 'use this etcd (host:port,...) under a random prefix instead of starting one')
    .option('--tls', 'start etcd with TLS, client certificates (scripts/pki.sh) and auth: the master is titan-master, the bench root')
    .option('--keep-jobs', 'leave the bench prefix in etcd (--endpoints) or keep the temp dir with etcd data and master log')
    .option('--no-complete', 'nodes only acknowledge Running and keep their assignments')
    .option('--run-ms <ms>', 'simulated run time between Running and Succeeded', '0')
    .option('--ack-concurrency <n>', 'acknowledgement writes in flight over all simulated nodes', '64')
    .option('--nodes-per-lease <n>', 'simulated nodes sharing one lease', '100')
    .option('--lease-ttl <seconds>', 'TTL of the simulated nodes leases', '30')
    .option('--ack-during-placement', 'let nodes acknowledge while placements are measured (default: they wait until the burst is placed)')
    .option('--etcd-keys <n>', 'keys of the batched etcd reference', '20000')
    .option('--etcd-sequential <n>', 'puts of the sequential etcd reference', '2000')
    .option('--etcd-txn-puts <n>', 'puts per transaction in the etcd reference', '64')
    .option('--etcd-in-flight <n>', 'transactions in flight in the etcd reference', '8')
    .option('--timeout <duration>', 'hard limit of the whole run', '30m')
    .option('--phase-timeout <duration>', 'longest wait of one phase (placement, drain, dispatch)', '10m')
    .option('--master-cpu-prof <dir>', 'write a V8 CPU profile of the master into this directory (at its graceful stop)')
    .option('--master-node-options <opts>', 'NODE_OPTIONS for the master process')
    .option('--retain-jobs <n>', "the master's --retain-jobs; the run then ends by waiting for retention and compaction (default: every job of the run is kept)")
    .option('--retention-interval <duration>', "the master's retention sweep interval (default with --retain-jobs: 10s, else the master's own)")
    .option('--api', 'the master serves its HTTP API; placement and dispatch are measured without and with API clients, and the API itself')
    .option('--api-clients <n>', 'dashboard clients of --api (implies it)', '50')
    .option('--array-tasks <n>', 'last: an array of n tasks against n single jobs, submit and placement timed alike (0: skip)', '10000')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .parse([...argv], { from: 'user' });
  const o = program.opts<Record<string, string | boolean | undefined>>();
  const text = (name: string): string => String(o[name]);
  const options: BenchOptions = {
    nodes: parsePositiveInteger(text('nodes'), '--nodes'),
    jobs: parseNonNegativeInteger(text('jobs'), '--jobs'),
    rate: parsePositiveInteger(text('rate'), '--rate'),
    latencyJobs: parseNonNegativeInteger(text('latencyJobs'), '--latency-jobs'),
    warmupMs: parseDuration(text('warmup'), '--warmup'),
    nodeCpu: parseCpu(text('nodeCpu'), '--node-cpu'),
    nodeMemory: parseMemory(text('nodeMem'), '--node-mem'),
    jobCpu: parseCpu(text('jobCpu'), '--job-cpu'),
    jobMemory: parseMemory(text('jobMem'), '--job-mem'),
    output: text('output') === 'json' ? 'json' : 'table',
    ...(typeof o.endpoints === 'string' ? { endpoints: o.endpoints } : {}),
    tls: o.tls === true,
    keepJobs: o.keepJobs === true,
    complete: o.complete !== false,
    runMs: parseNonNegativeInteger(text('runMs'), '--run-ms'),
    ackConcurrency: parsePositiveInteger(text('ackConcurrency'), '--ack-concurrency'),
    nodesPerLease: parsePositiveInteger(text('nodesPerLease'), '--nodes-per-lease'),
    leaseTtlSeconds: parsePositiveInteger(text('leaseTtl'), '--lease-ttl'),
    ackDuringPlacement: o.ackDuringPlacement === true,
    etcdKeys: parseNonNegativeInteger(text('etcdKeys'), '--etcd-keys'),
    etcdSequentialPuts: parseNonNegativeInteger(text('etcdSequential'), '--etcd-sequential'),
    etcdTxnPuts: parsePositiveInteger(text('etcdTxnPuts'), '--etcd-txn-puts'),
    etcdInFlight: parsePositiveInteger(text('etcdInFlight'), '--etcd-in-flight'),
    timeoutSeconds: parseDuration(text('timeout'), '--timeout') / 1000,
    phaseTimeoutSeconds: parseDuration(text('phaseTimeout'), '--phase-timeout') / 1000,
    ...(typeof o.masterCpuProf === 'string' ? { masterCpuProf: o.masterCpuProf } : {}),
    ...(typeof o.masterNodeOptions === 'string' ? { masterNodeOptions: o.masterNodeOptions } : {}),
    ...(typeof o.retainJobs === 'string' ? { retainJobs: parseNonNegativeInteger(o.retainJobs, '--retain-jobs') } : {}),
    api: o.api === true || program.getOptionValueSource('apiClients') === 'cli',
    apiClients: parsePositiveInteger(text('apiClients'), '--api-clients'),
    arrayTasks: parseNonNegativeInteger(text('arrayTasks'), '--array-tasks'),
  };
  if (options.arrayTasks > MAX_ARRAY_TASKS) throw invalidInput('--array-tasks', `at most ${MAX_ARRAY_TASKS} (an array's limit)`);
  if (typeof o.retentionInterval === 'string') {
    options.retentionIntervalMs = parseDuration(o.retentionInterval, '--retention-interval');
    if (options.retentionIntervalMs <= 0) throw invalidInput('--retention-interval', 'must be more than zero');
  } else if (options.retainJobs !== undefined) {
    options.retentionIntervalMs = 10_000;
  }
  if (options.tls && options.endpoints !== undefined) {
    throw invalidInput('--tls', 'makes its own etcd; for an etcd of yours (--endpoints) set TITAN_ETCD_CA, TITAN_ETCD_CERT and TITAN_ETCD_KEY');
  }
  if (options.api && options.jobs === 0) throw invalidInput('--api', 'compares two placement bursts: give --jobs more than 0');
  if (options.etcdTxnPuts > 128) throw invalidInput('--etcd-txn-puts', "at most 128 (etcd's default --max-txn-ops)");
  return options;
}
