import { Option, type Command } from 'commander';
import type { DevFlags } from '../../internal/cli/dev.js';
import { DEFAULT_SEED } from '../../internal/cli/flag-defaults.js';
import type { CliIO } from '../../internal/cli/io.js';
import { toJson } from '../../internal/cli/output.js';
import type { SimulateFlags } from '../../internal/cli/simulate.js';
import { SAMPLE_NODES_HELP } from '../../internal/scheduler/node-scan.js';
import { DEFAULT_POLICY, POLICY_NAMES } from '../../internal/scheduler/policy-names.js';
import { REFERENCE_POLICY_NAMES } from '../../internal/simulate/reference-names.js';
import { collect, configOf } from './action-kit.js';

/** `titan dev` and `titan simulate`: a cluster, or the placement code, run on this machine. */
export function addLocalCommands(program: Command, io: CliIO): void {
  program
    .command('dev')
    .description('run a local cluster (etcd, master, worker) in the foreground')
    .option('--data-dir <dir>', 'keep etcd data here (default: a temporary dir, removed on exit)')
    .option('--port <port>', 'etcd client port (default 2379; a free one if busy)')
    .option('--cpu <amount>', 'CPU the worker offers (default: all cores)')
    .option('--memory <size>', 'memory the worker offers (default: all)')
    .addOption(new Option('--gpus <n>', 'GPUs the worker offers: none, a count, or indexes (default: detected)'))
    .option('--secure', 'etcd with TLS and client certificates (scripts/pki.sh), auth on, each component its own etcd user')
    .option('--api-port <port>', 'HTTP API and dashboard port on 127.0.0.1 (default 4646; a free one if busy; off: none)')
    .action(async (opts: DevFlags, command: Command) => {
      const config = await configOf(command, io);
      // The only command that loads the master, the worker and the Docker client.
      const { runDev } = await import('../../internal/cli/dev.js');
      await runDev(opts, config, io);
    });

  program
    .command('simulate')
    .description("replay a cluster trace (openb CSV) through the master's placement code, in-process")
    .option('--nodes <csv>', 'node list: sn,cpu_milli,memory_mib,gpu,model')
    .option('--jobs <csv>', 'task list: name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,...')
    .option('--policy <name>', `placement policy: ${POLICY_NAMES.join(', ')} (default ${DEFAULT_POLICY}), or a reference: ${REFERENCE_POLICY_NAMES.join(', ')}`)
    .option('--seed <n>', `first shuffle seed (default ${DEFAULT_SEED})`)
    .option('--seeds <k>', 'runs, with seeds seed..seed+k-1; medians reported (default 1)')
    .option('--tune <x>', "arrivals stop when requested GPU reaches x times the cluster's (default 1.3)")
    .option('--sample-nodes <n|all>', `${SAMPLE_NODES_HELP}; the master's --sample-nodes (Titan's policies only)`)
    .option('--threads <k>', 'worker threads the seeds run on (default: one per seed, at most one per core; 1: in-process); the same figures either way')
    .option('--compare <policy>', '--policy minus this policy (e.g. fgd-paper), per seed on the same arrivals, with a bootstrap 95% interval')
    .option('--bound', 'also an upper bound on the GPU any policy that never moves a task could allocate (an LP relaxation solved by HiGHS), and each policy\'s gap to it')
    .option('--time', 'replay in time instead (creation_time, deletion_time), with queues: waits and shares over time')
    .option('--queue-column <column>', 'with --time: the jobs column naming each job\'s queue (e.g. qos)')
    .option('--queue <name=gpus[:weight]>', 'with --time: a queue with a GPU quota (repeatable); others go to default', collect)
    .option('--compress <k>', 'with --time: arrivals k times faster, durations unchanged (default 1)')
    .action(async (opts: SimulateFlags, command: Command) => {
      const config = await configOf(command, io);
      if (opts.bound) {
        // Its own module: only --bound loads the solver.
        const { renderBoundedSimulation, simulateWithBound } = await import('../../internal/cli/simulate-bound.js');
        const report = await simulateWithBound(opts);
        io.out(config.output === 'json' ? toJson(report) : renderBoundedSimulation(report));
        return;
      }
      const { compareSimulation, renderComparison, renderSimulation, renderTimeline, simulate, simulateInTime } = await import('../../internal/cli/simulate.js');
      if (opts.compare !== undefined && !opts.time) {
        const report = await compareSimulation(opts);
        io.out(config.output === 'json' ? toJson(report) : renderComparison(report));
        return;
      }
      if (opts.time) {
        const report = await simulateInTime(opts);
        io.out(config.output === 'json' ? toJson(report) : renderTimeline(report));
        return;
      }
      const report = await simulate(opts);
      io.out(config.output === 'json' ? toJson(report) : renderSimulation(report));
    });
}
