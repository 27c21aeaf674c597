import { Argument, Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import type { LogEntry } from '../../pkg/model/logs.js';
import { etcdOnly, withCluster, type BulkSubmission } from '../../internal/cli/cluster-client.js';
import { addEtcdConnectionOptions } from '../../pkg/config/etcd-connection.js';
import { resolveCliConfig, withStore, type CliConfig, type GlobalFlags } from '../../internal/cli/context.js';
import type { NewUserFlags } from '../../internal/cli/auth.js';
import type { DevFlags } from '../../internal/cli/dev.js';
import { parseAttempt } from '../../internal/cli/follow-logs.js';
import { formatDuration, trimNumber } from '../../internal/cli/format.js';
import { processIO, type CliIO } from '../../internal/cli/io.js';
import { skippedRecordsError } from '../../internal/cli/skipped.js';
import { doctorFailure, renderDoctorReport, runDoctor } from '../../internal/cli/doctor.js';
import { migrateLayout } from '../../pkg/store/layout.js';
import { createToken, renderTokenTable, revokeToken, tokenView, type TokenFlags } from '../../internal/cli/tokens.js';
import { titanVersion } from '../../internal/worker/version.js';
import {
  describeCancel,
  jobOfStatusView,
  parseGrace,
  parseListFlags,
  renderJobStatus,
  renderJobTable,
  DEFAULT_GRACE,
  type ListFlags,
} from '../../internal/cli/jobs.js';
import { describePlacement, nodesJsonView, renderNodeTable } from '../../internal/cli/nodes.js';
import { describeQueue, renderQueueTable, type QueueFlags } from '../../internal/cli/queues.js';
import { DEFAULT_SEED, renderSimulation, renderTimeline, simulate, simulateInTime, type SimulateFlags } from '../../internal/cli/simulate.js';
import { DEFAULT_POLICY, policyNames } from '../../internal/scheduler/index.js';
import { exitCodeFor, formatError, OUTPUT_FORMATS, parseOutputFormat, sniffOutputFormat, toJson } from '../../internal/cli/output.js';
import { commandTree, COMPLETION_SHELLS, parseCompletionShell, renderCompletion } from '../../internal/cli/completion.js';
import {
  addContext,
  currentContext,
  listContexts,
  overridingEnv,
  readStdin,
  removeContext,
  renderContextTable,
  useContext,
  type ContextAddFlags,
} from '../../internal/cli/context-commands.js';
import { describeGangSubmission, describeOutcome, jobExitCode, planSubmission, type SubmitFlags } from '../../internal/cli/submit.js';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** After printing what could be read: corrupt records that were skipped make the command fail (exit 1). */
function throwIfSkipped(reads: Parameters<typeof skippedRecordsError>[0]): void {
  const err = skippedRecordsError(reads);
  if (err) throw err;
}

/** Above this many jobs, `submit -n --output json` leaves the id list out. */
export const MAX_IDS_IN_JSON = 1000;

/** Global flags of the command plus its ancestors, resolved (env, defaults) and validated. */
function configOf(command: Command, io: CliIO): CliConfig {
  return resolveCliConfig(command.optsWithGlobals<GlobalFlags>(), io.env);
}

/** commander → internal/cli: parsing and printing here, the work in internal/cli. */
export function buildProgram(io: CliIO, setExitCode: (code: number) => void): Command {
  const program = addEtcdConnectionOptions(
    new Command('titan')
      .description('Titan: submit and inspect container jobs on an etcd-backed cluster')
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: () => undefined }),
  )
    .option('--prefix <prefix>', 'etcd key prefix of the cluster (env TITAN_PREFIX; default /titan)')
    .option('-o, --output <format>', 'output format: table or json (default table)')
    .option('-v, --verbose', 'more detail on stderr')
    .option('--context <name>', 'use this context of the CLI config file instead of its current one (env TITAN_CONTEXT; see titan context)')
    .option('--addr <url>', "a master's HTTP API, http(s)://host:port; its token comes from TITAN_TOKEN or TITAN_TOKEN_FILE (env TITAN_ADDR)")
    .option('--api-cacert <file>', "CA certificate (PEM) that signed the API's certificate (env TITAN_API_CACERT)");

  program
    .command('submit')
    .description('submit a job (or many, with -n)')
    .option('--image <image>', 'container image: a Docker job')
    .option('--cmd <command>', 'command line run with /bin/sh -c in the container')
    .option('--shell <script>', 'script run with /bin/sh -c on the worker host (no Docker)')
    .option('--cpu <amount>', 'CPU request: 500m, 0.5, 2 (default 100m)')
    .option('--mem <size>', 'memory request: 512Mi, 2Gi (default 64Mi)')
    .option('--gpu <n>', 'GPUs: a share of one (0.25) or whole GPUs (2) (default 0)')
    .option('--gpu-model <models>', 'run only on these GPU models, |-separated: V100M16|V100M32 (needs --gpu)')
    .option('--node-selector <k=v>', 'run only on nodes with this label (repeatable)', collect)
    .option('--priority <n>', 'higher runs first (default 0)')
    .option('--env <KEY=VALUE>', 'environment variable (repeatable)', collect)
    .option('--label <KEY=VALUE>', 'label (repeatable)', collect)
    .option('--name <name>', 'job name')
    .option('--retries <n>', 'retry a failed run this often, with exponential backoff (default 0)')
    .option('--timeout <duration>', 'stop a run that takes longer (30s, 5m, 1h) and fail it with reason Timeout')
    .option('--queue <name>', 'schedule in this queue (see titan queue list; default: default)')
    .option('--preemptible', 'a higher-priority job of the queue may evict it (default: only while over quota)')
    .option('--no-preemptible', 'never evicted, not for priority nor to reclaim quota')
    .option('--min-runtime <duration>', 'never evicted before it ran this long (30s, 10m)')
    .option('-f, --file <path>', 'spec file (YAML or JSON); flags override its fields')
    .option('--wait', 'wait for the job to end and exit with its exit code')
    .option('-n, --count <n>', 'submit n jobs (stress): named stress-1..n unless --name is given')
    .option('-t, --time <duration>', 'each job sleeps this long (5, 5s, 1m); sets the command')
    .option('--replicas <n>', 'a gang of n replicas (at most 63) placed all-or-nothing; see docs/gangs.md')
    .option('--min-available <m>', 'the gang starts once m of its replicas fit at once (default: all; needs --replicas)')
    .option('--topology <label>', 'the gang prefers nodes sharing one value of this node label, e.g. rack (needs --replicas)')
    .argument('[args...]', 'exact argv for the container (after --)')
    .action(async (args: string[], opts: Omit<SubmitFlags, 'args'>, command: Command) => {
      const config = configOf(command, io);
      const plan = planSubmission({ ...opts, args });
      const json = config.output === 'json';
      if (plan.gang) {
        const gang = await withCluster(config, (cluster) => cluster.submitGang(plan));
        if (!json) io.err(`${describeGangSubmission(gang)}\n`);
        io.out(json ? toJson(gang) : gang.jobs.map((j) => `${j.id}\n`).join(''));
        return;
      }
      if (plan.bulk) {
        const result = await withCluster(config, (cluster) => withProgressBar(io, plan.jobs.length, (onProgress) => cluster.submitBulk(plan, onProgress)));
        io.out(json ? toJson(bulkSummary(result)) : `${describeBulk(result)}\n`);
        return;
      }
      await withCluster(config, async (cluster) => {
        const job = await cluster.submitJob(plan);
        if (!plan.wait) {
          io.out(json ? toJson(job) : `${job.id}\n`);
          return;
        }
        if (!json) io.out(`${job.id}\n`);
        const final = await cluster.waitForJob(job.id, (j) => {
          if (config.verbose) io.err(`titan: job ${j.id} is ${j.state}${j.node ? ` on ${j.node}` : ''}\n`);
        });
        io.err(`${describeOutcome(final)}\n`);
        if (json) io.out(toJson(final));
        setExitCode(jobExitCode(final));
      });
    });

  program
    .command('status')
    .description("show a job's state and details")
    .argument('<id>', 'job id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const config = configOf(command, io);
      const view = await withCluster(config, (cluster) => cluster.status(id));
      io.out(config.output === 'json' ? toJson(view) : renderJobStatus(jobOfStatusView(view), Date.now(), view.replicas));
    });

  program
    .command('list')
    .description('list jobs, newest first')
    .option('--status <states>', 'only these states, comma-separated (Pending,Running,...)')
    .option('--limit <n>', 'at most n jobs')
    .action(async (opts: ListFlags, command: Command) => {
      const config = configOf(command, io);
      const query = parseListFlags(opts);
      const { jobs, skipped } = await withCluster(config, (cluster) => cluster.list(query));
      if (config.output === 'json') io.out(toJson(jobs));
      else if (jobs.length === 0) io.err(query.states ? `no ${query.states.join(' or ')} jobs\n` : 'no jobs\n');
      else io.out(renderJobTable(jobs));
      throwIfSkipped(skipped);
    });

  program
    .command('logs')
    .description("print a job's output (latest attempt); --output json prints one JSON object per entry")
    .argument('<id>', 'job id')
    .option('-f, --follow', 'keep printing new output until the job ends')
    .option('--attempt <n>', 'an earlier attempt (1, 2, ...)')
    .action(async (id: string, opts: { follow?: boolean; attempt?: string }, command: Command) => {
      const config = configOf(command, io);
      const attempt = parseAttempt(opts.attempt);
      const write =
        config.output === 'json'
          ? (e: LogEntry): void => io.out(`${JSON.stringify(e)}\n`)
          : (e: LogEntry): void => (e.stream === 'stderr' ? io.err(e.data) : io.out(e.data));
      await withCluster(config, async (cluster) => {
        if (!opts.follow) {
          await cluster.logs(id, { attempt, write });
          return;
        }
        const notice = io.errIsTTY || config.verbose ? (m: string): void => io.err(`titan: ${m}\n`) : undefined;
        await cluster.followLogs(id, { attempt, write, notice });
      });
    });

  program
    .command('cancel')
    .description('cancel a job')
    .argument('<id>', 'job id')
    .option('--grace <duration>', `time the job gets to stop before it is killed (default ${DEFAULT_GRACE})`)
    .action(async (id: string, opts: { grace?: string }, command: Command) => {
      const config = configOf(command, io);
      const graceMs = parseGrace(opts.grace);
      const outcome = await withCluster(config, (cluster) => cluster.cancel(id, graceMs));
      io.out(config.output === 'json' ? toJson(outcome.job) : `${describeCancel(outcome)}\n`);
    });

  program
    .command('retry')
    .description('put a Failed or Cancelled job back in the queue (history kept, retries reset)')
    .argument('<id>', 'job id')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const config = configOf(command, io);
      const job = await withCluster(config, (cluster) => cluster.retry(id));
      io.out(config.output === 'json' ? toJson(job) : `job ${job.id} is Pending again (attempt ${job.attempt + 1} next)\n`);
    });

  program
    .command('nodes')
    .description('list worker nodes with their capacity and allocation, and the placement policy in force')
    .action(async (_opts: unknown, command: Command) => {
      const config = configOf(command, io);
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
      const config = configOf(command, io);
      const report = await etcdOnly(config, 'doctor', () => withStore(config, (store) => runDoctor(store)));
      io.out(config.output === 'json' ? toJson(report) : renderDoctorReport(report));
      const failure = doctorFailure(report);
      if (failure) throw failure;
    });

  program
    .command('migrate')
    .description("bring the data under the prefix to this titan's key layout version (run with an operator or root etcd user)")
    .action(async (_opts: unknown, command: Command) => {
      const config = configOf(command, io);
      const done = await etcdOnly(config, 'migrate', () => withStore(config, (store) => migrateLayout(store, `titan ${titanVersion()}`)));
      io.out(config.output === 'json' ? toJson({ result: done }) : `${done}\n`);
    });

  addQueueCommands(program, io);
  addAuthCommands(program, io);
  addContextCommands(program, io);

  program
    .command('completion')
    .description('print a shell completion script: source <(titan completion bash), or see the script\'s first lines')
    .addArgument(new Argument('<shell>', COMPLETION_SHELLS.join(', ')).choices(COMPLETION_SHELLS))
    .action((shell: string) => {
      io.out(renderCompletion(commandTree(program, { '--output': OUTPUT_FORMATS, '--policy': policyNames() }), parseCompletionShell(shell)));
    });
  addTokenCommands(program, io);

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
      const config = configOf(command, io);
      // Loaded on demand: the other commands need neither the master nor the worker.
      const { runDev } = await import('../../internal/cli/dev.js');
      await runDev(opts, config, io);
    });

  program
    .command('simulate')
    .description("replay a cluster trace (openb CSV) through the master's placement code, in-process")
    .option('--nodes <csv>', 'node list: sn,cpu_milli,memory_mib,gpu,model')
    .option('--jobs <csv>', 'task list: name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,...')
    .option('--policy <name>', `placement policy: ${policyNames().join(', ')} (default ${DEFAULT_POLICY})`)
    .option('--seed <n>', `first shuffle seed (default ${DEFAULT_SEED})`)
    .option('--seeds <k>', 'runs, with seeds seed..seed+k-1; medians reported (default 1)')
    .option('--tune <x>', "arrivals stop when requested GPU reaches x times the cluster's (default 1.3)")
    .option('--time', 'replay in time instead (creation_time, deletion_time), with queues: waits and shares over time')
    .option('--queue-column <column>', 'with --time: the jobs column naming each job\'s queue (e.g. qos)')
    .option('--queue <name=gpus[:weight]>', 'with --time: a queue with a GPU quota (repeatable); others go to default', collect)
    .option('--compress <k>', 'with --time: arrivals k times faster, durations unchanged (default 1)')
    .action(async (opts: SimulateFlags, command: Command) => {
      const config = configOf(command, io);
      if (opts.time) {
        const report = await simulateInTime(opts);
        io.out(config.output === 'json' ? toJson(report) : renderTimeline(report));
        return;
      }
      const report = await simulate(opts);
      io.out(config.output === 'json' ? toJson(report) : renderSimulation(report));
    });

  return program;
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
function addQueueCommands(program: Command, io: CliIO): void {
  const queue = program
    .command('queue')
    .description('manage the queues that share the cluster: quotas, limits, weights (see docs/queues.md)');

  queueFlagOptions(queue.command('create').description(`create a queue; amounts: ${AMOUNTS}`), false)
    .argument('<name>', 'queue name')
    .action(async (name: string, opts: QueueFlags, command: Command) => {
      const config = configOf(command, io);
      const created = await withCluster(config, (cluster) => cluster.createQueue(name, opts));
      io.out(config.output === 'json' ? toJson(created) : `${describeQueue('created', created)}\n`);
    });

  queueFlagOptions(queue.command('update').description(`change a queue: only the given flags; amounts: ${AMOUNTS}`), true)
    .argument('<name>', 'queue name')
    .action(async (name: string, opts: QueueFlags, command: Command) => {
      const config = configOf(command, io);
      const updated = await withCluster(config, (cluster) => cluster.updateQueue(name, opts));
      io.out(config.output === 'json' ? toJson(updated) : `${describeQueue('updated', updated)}\n`);
    });

  queue
    .command('delete')
    .description('delete a queue without child queues or unfinished jobs (the default queue cannot be deleted)')
    .argument('<name>', 'queue name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const config = configOf(command, io);
      await withCluster(config, (cluster) => cluster.deleteQueue(name));
      io.out(config.output === 'json' ? toJson({ deleted: name }) : `queue ${name} deleted\n`);
    });

  queue
    .command('list')
    .description('list queues: quota, limit, weight, allocated, pending jobs and fair share now (amounts: cpu/memory/gpu)')
    .action(async (_opts: unknown, command: Command) => {
      const config = configOf(command, io);
      const queues = await withCluster(config, (cluster) => cluster.queues());
      io.out(config.output === 'json' ? toJson(queues) : renderQueueTable(queues));
    });
}

/** `titan auth setup|add-node|add-user`: etcd roles and users (see docs/security.md). */
/** `titan token create|list|revoke`: API tokens, kept in etcd as hashes (needs etcd access, not the API). */
function addTokenCommands(program: Command, io: CliIO): void {
  const token = program.command('token').description('manage API tokens: who may call the HTTP API, with which role, in which queues');
  token
    .command('create')
    .description('create a token and print its secret, once (it is stored only as a hash)')
    .option('--role <role>', 'reader (look), submitter (+ submit, cancel, retry), operator (+ queues), admin (+ tokens)')
    .option('--queue <name>', 'limit the token to this queue (repeatable; reader and submitter)', collect)
    .option('--ttl <duration>', 'the token expires after this long (30d, 12h; default never)')
    .option('--name <text>', 'who or what it is for, shown by titan token list')
    .action(async (opts: TokenFlags, command: Command) => {
      const config = configOf(command, io);
      const { token: created, secret } = await etcdOnly(config, 'token create', () => withStore(config, (store) => createToken(store, opts)));
      if (config.output === 'json') {
        io.out(toJson({ ...tokenView(created), secret }));
        return;
      }
      const scope = created.queues ? ` in queue(s) ${created.queues.join(', ')}` : '';
      io.err(`token ${created.id}: ${created.role}${scope}; its secret, shown only now (send it as "Authorization: Bearer <secret>"):\n`);
      io.out(`${secret}\n`);
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_opts: unknown, command: Command) => {
      const config = configOf(command, io);
      const found = await etcdOnly(config, 'token list', () => withStore(config, (store) => store.listTokens()));
      const tokens = found.items.map((t) => t.value);
      if (config.output === 'json') io.out(toJson(tokens.map(tokenView)));
      else if (tokens.length === 0) io.err('no tokens (titan token create --role reader)\n');
      else io.out(renderTokenTable(tokens));
      throwIfSkipped([found]);
    });
  token
    .command('revoke')
    .description('delete a token: the API refuses it at once')
    .argument('<id>', 'token id (see titan token list)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const config = configOf(command, io);
      await etcdOnly(config, 'token revoke', () => withStore(config, (store) => revokeToken(store, id)));
      io.out(config.output === 'json' ? toJson({ revoked: id }) : `token ${id} revoked\n`);
    });
}

function addAuthCommands(program: Command, io: CliIO): void {
  const auth = program.command('auth').description("set up etcd's roles and users for Titan (run with etcd root credentials)");
  const report = (lines: string[]): void => io.out(lines.map((l) => `${l}\n`).join(''));

  auth
    .command('setup')
    .description("create Titan's roles and the titan-master user, then enable etcd auth; running it again changes nothing")
    .option('--password-file <file>', 'give titan-master a password from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (opts: NewUserFlags, command: Command) => {
      const config = configOf(command, io);
      const { newPassword, setupAuth } = await import('../../internal/cli/auth.js');
      report((await etcdOnly(config, 'auth setup', () => setupAuth(config, newPassword(opts, io.env)))).lines);
    });

  auth
    .command('add-node')
    .description('add user titan-node-<id> with its role: its own keys only (logs in by client certificate, or a password)')
    .argument('<id>', 'node id (the worker\'s --node-id)')
    .option('--password-file <file>', 'give it a password from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (id: string, opts: NewUserFlags, command: Command) => {
      const config = configOf(command, io);
      const { addNode, newPassword } = await import('../../internal/cli/auth.js');
      report((await etcdOnly(config, 'auth add-node', () => addNode(config, id, newPassword(opts, io.env)))).lines);
    });

  auth
    .command('add-user')
    .description('add a person: operator (submit, cancel, queues) or reader (look only)')
    .argument('<name>', 'etcd user name (the CN of their client certificate, if they use one)')
    .option('--role <role>', 'operator or reader')
    .option('--password-file <file>', 'their password, from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (name: string, opts: NewUserFlags, command: Command) => {
      const config = configOf(command, io);
      const { addUser, newPassword, parseUserRole } = await import('../../internal/cli/auth.js');
      const role = parseUserRole(opts.role);
      report((await etcdOnly(config, 'auth add-user', () => addUser(config, name, role, newPassword(opts, io.env)))).lines);
    });
}

/** `titan context add|use|list|remove|current`: clusters kept in the CLI config file (internal/cli/contexts-file.ts). */
function addContextCommands(program: Command, io: CliIO): void {
  const context = program
    .command('context')
    .description('keep several clusters (API address and token, or etcd endpoints and certificates) in one private config file, like kubectl contexts');
  const outputOf = (command: Command): 'table' | 'json' => {
    const output = command.optsWithGlobals<GlobalFlags>().output;
    return output === undefined ? 'table' : parseOutputFormat(output);
  };

  context
    .command('add')
    .description(
      'save a context from the connection flags given with it: --addr, --api-cacert, --endpoints, --prefix, --etcd-ca, --etcd-cert, --etcd-key, --etcd-user, --etcd-password-file (TITAN_* env is not saved)',
    )
    .argument('<name>', 'context name')
    .option('--token-stdin', 'read the API token from stdin (kept in the file, never printed)')
    .option('--etcd-password-stdin', "read the etcd user's password from stdin (kept in the file, never printed)")
    .option('--use', 'make it the current context')
    .option('--replace', 'overwrite a context of that name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals<ContextAddFlags & GlobalFlags>();
      const output = outputOf(command);
      const { view, replaced } = await addContext(name, flags, io.env, () => {
        if (process.stdin.isTTY) io.err('titan: type or paste the secret, then press Ctrl-D\n');
        return readStdin();
      });
      const current = view.current ? '; it is the current context' : '';
      io.out(output === 'json' ? toJson(view) : `context ${view.name} ${replaced ? 'replaced' : 'added'}${current}\n`);
    });

  context
    .command('use')
    .description('make a context the current one')
    .argument('<name>', 'context name')
    .action((name: string, _opts: unknown, command: Command) => {
      const used = useContext(name, io.env);
      io.out(outputOf(command) === 'json' ? toJson({ current: used }) : `switched to context ${used}\n`);
      const overriding = overridingEnv(io.env);
      if (overriding.length > 0) io.err(`titan: note: set in the environment, ${overriding.join(', ')} override${overriding.length === 1 ? 's' : ''} the context\n`);
    });

  context
    .command('list')
    .description('list the contexts; * marks the one in effect (secrets are never shown)')
    .action((_opts: unknown, command: Command) => {
      const views = listContexts(command.optsWithGlobals<GlobalFlags>().context, io.env);
      if (outputOf(command) === 'json') io.out(toJson(views));
      else if (views.length === 0) io.err('no contexts (titan context add NAME --addr URL | --endpoints host:port ...)\n');
      else io.out(renderContextTable(views));
    });

  context
    .command('remove')
    .description('remove a context (if it was the current one, none is current after)')
    .argument('<name>', 'context name')
    .action((name: string, _opts: unknown, command: Command) => {
      const removed = removeContext(name, io.env);
      io.out(outputOf(command) === 'json' ? toJson({ removed: removed.name }) : `context ${removed.name} removed${removed.wasCurrent ? '; no context is current now' : ''}\n`);
    });

  context
    .command('current')
    .description('print the context in effect (--context, TITAN_CONTEXT or the current one); exit 1 when none')
    .action((_opts: unknown, command: Command) => {
      const current = currentContext(command.optsWithGlobals<GlobalFlags>().context, io.env);
      io.out(outputOf(command) === 'json' ? toJson(current) : `${current.name}\n`);
    });
}

/** On a terminal, a progress bar on stderr while `run` submits `total` jobs. */
async function withProgressBar<T>(io: CliIO, total: number, run: (onProgress?: (done: number) => void) => Promise<T>): Promise<T> {
  if (!io.errIsTTY) return run();
  const bar = new cliProgress.SingleBar(
    { format: 'submitting [{bar}] {value}/{total} jobs {percentage}% | {eta_formatted} left', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  try {
    return await run((done) => bar.update(done));
  } finally {
    bar.stop();
  }
}

export interface BulkSummary {
  submitted: number;
  seconds: number;
  jobsPerSec: number;
  ids?: string[];
}

export function bulkSummary(result: BulkSubmission): BulkSummary {
  return {
    submitted: result.submitted,
    seconds: Number(result.seconds.toFixed(3)),
    jobsPerSec: Math.round(result.jobsPerSec),
    ...(result.submitted <= MAX_IDS_IN_JSON ? { ids: result.ids } : {}),
  };
}

function describeBulk(result: BulkSubmission): string {
  return `submitted ${result.submitted} jobs in ${formatDuration(result.seconds * 1000)} (${trimNumber(result.jobsPerSec, 0)} jobs/s, ${result.batches} ${result.batchUnit})`;
}

/** Runs one command line; returns the exit status. Errors are reported on stderr here. */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version were printed already; an implicit help (no command) is a usage error.
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.help') return 2;
    }
    io.err(formatError(err, sniffOutputFormat(argv)));
    return exitCodeFor(err);
  }
}
