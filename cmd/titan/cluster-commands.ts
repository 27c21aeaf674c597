import type { Command } from 'commander';
import type { CliIO } from '../../internal/cli/io.js';
import { toJson } from '../../internal/cli/output.js';
import type { QueueFlags } from '../../internal/cli/queues.js';
import { configOf, throwIfSkipped } from './action-kit.js';

const clusterClient = () => import('../../internal/cli/cluster-client.js');

/** `titan nodes|doctor|migrate`: the cluster's nodes, and its records in etcd. */
export function addClusterCommands(program: Command, io: CliIO): void {
  program
    .command('nodes')
    .description('list worker nodes with their capacity and allocation, and the placement policy in force')
    .action(async (_opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describePlacement, nodesJsonView, renderNodeTable }] = await Promise.all([
        clusterClient(),
        import('../../internal/cli/nodes.js'),
      ]);
      const { nodes, placement, skipped } = await withCluster(config, (cluster) => cluster.nodes());
      if (config.output === 'json') {
        io.out(toJson(nodesJsonView(nodes, placement)));
      } else {
        io.out(`${describePlacement(placement)}\n`);
        if (nodes.length === 0) io.err('no worker nodes registered (start titan-worker, or try titan dev)\n');
        else io.out(renderNodeTable(nodes));
      }
      throwIfSkipped(skipped);
    });

  program
    .command('doctor')
    .description('check every record Titan keeps in etcd; lists corrupt ones and what to do (exit 1 when any)')
    .action(async (_opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { withStore }, { doctorFailure, renderDoctorReport, runDoctor }] = await Promise.all([
        clusterClient(),
        import('../../internal/cli/context.js'),
        import('../../internal/cli/doctor.js'),
      ]);
      const report = await etcdOnly(config, 'doctor', () => withStore(config, (store) => runDoctor(store)));
      io.out(config.output === 'json' ? toJson(report) : renderDoctorReport(report));
      const failure = doctorFailure(report);
      if (failure) throw failure;
    });

  program
    .command('migrate')
    .description("bring the data under the prefix to this titan's key layout version (run with an operator or root etcd user)")
    .action(async (_opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { withStore }, { migrateLayout }, { titanVersion }] = await Promise.all([
        clusterClient(),
        import('../../internal/cli/context.js'),
        import('../../pkg/store/layout.js'),
        import('../../internal/worker/version.js'),
      ]);
      const done = await etcdOnly(config, 'migrate', () => withStore(config, (store) => migrateLayout(store, `titan ${titanVersion()}`)));
      io.out(config.output === 'json' ? toJson({ result: done }) : `${done}\n`);
    });
}

const AMOUNTS = 'CPU (8, 500m), memory (32Gi) and GPUs (4, 0.5); 0 allowed';

function queueFlagOptions(command: Command, update: boolean): Command {
  const none = update ? '; none removes it' : '';
  return command
    .option('--parent <queue>', `a top-level queue this one belongs to (two levels at most)${update ? '; none makes it top-level' : ''}`)
    .option('--quota-cpu <cores>', 'guaranteed CPU (default 0)')
    .option('--quota-mem <size>', 'guaranteed memory (default 0)')
    .option('--quota-gpu <n>', 'guaranteed GPUs (default 0)')
    .option('--limit-cpu <cores>', `hard cap on CPU (default none${none})`)
    .option('--limit-mem <size>', `hard cap on memory (default none${none})`)
    .option('--limit-gpu <n>', `hard cap on GPUs (default none${none})`)
    .option('--weight <w>', 'share of idle capacity lent beyond quotas, relative to other queues (default 1)');
}

/** `titan queue create|update|delete|list`. */
export function addQueueCommands(program: Command, io: CliIO): void {
  const queue = program
    .command('queue')
    .description('manage the queues that share the cluster: quotas, limits, weights (see docs/queues.md)');

  queueFlagOptions(queue.command('create').description(`create a queue; amounts: ${AMOUNTS}`), false)
    .argument('<name>', 'queue name')
    .action(async (name: string, opts: QueueFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeQueue }] = await Promise.all([clusterClient(), import('../../internal/cli/queues.js')]);
      const created = await withCluster(config, (cluster) => cluster.createQueue(name, opts));
      io.out(config.output === 'json' ? toJson(created) : `${describeQueue('created', created)}\n`);
    });

  queueFlagOptions(queue.command('update').description(`change a queue: only the given flags; amounts: ${AMOUNTS}`), true)
    .argument('<name>', 'queue name')
    .action(async (name: string, opts: QueueFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeQueue }] = await Promise.all([clusterClient(), import('../../internal/cli/queues.js')]);
      const updated = await withCluster(config, (cluster) => cluster.updateQueue(name, opts));
      io.out(config.output === 'json' ? toJson(updated) : `${describeQueue('updated', updated)}\n`);
    });

  queue
    .command('delete')
    .description('delete a queue without child queues or unfinished jobs (the default queue cannot be deleted)')
    .argument('<name>', 'queue name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const { withCluster } = await clusterClient();
      await withCluster(config, (cluster) => cluster.deleteQueue(name));
      io.out(config.output === 'json' ? toJson({ deleted: name }) : `queue ${name} deleted\n`);
    });

  queue
    .command('list')
    .description('list queues: quota, limit, weight, allocated, pending jobs and fair share now (amounts: cpu/memory/gpu)')
    .action(async (_opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { renderQueueTable }] = await Promise.all([clusterClient(), import('../../internal/cli/queues.js')]);
      const queues = await withCluster(config, (cluster) => cluster.queues());
      io.out(config.output === 'json' ? toJson(queues) : renderQueueTable(queues));
    });
}
