import { Option, type Command } from 'commander';
import { DEFAULT_GRACE } from '../../internal/cli/flag-defaults.js';
import type { CliIO } from '../../internal/cli/io.js';
import type { ListFlags } from '../../internal/cli/list.js';
import { toJson } from '../../internal/cli/output.js';
import type { SubmitFlags } from '../../internal/cli/submit.js';
import { jobRefOf, MAX_ARRAY_INDEX, MAX_ARRAY_TASKS } from '../../pkg/model/array.js';
import { MAX_GANG_SIZE } from '../../pkg/model/gang.js';
import { JOB_STATES } from '../../pkg/model/job.js';
import { JOB_SORTS } from '../../pkg/model/job-query.js';
import type { LogEntry } from '../../pkg/model/logs.js';
import { collect, configOf, throwIfSkipped } from './action-kit.js';

const clusterClient = () => import('../../internal/cli/cluster-client.js');
const jobs = () => import('../../internal/cli/jobs.js');
const arrays = () => import('../../internal/cli/arrays.js');

/** `titan submit|status|list|wait|logs|cancel|retry`: the verbs on jobs, through etcd or the API. */
export function addJobCommands(program: Command, io: CliIO, setExitCode: (code: number) => void): void {
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
    .option('--after <cond:ids>', 'start only after other jobs end: ok:ID[,ID...] (succeeded), notok:ID (failed or cancelled), any:ID; repeatable, all must hold', collect)
    .option('-f, --file <path>', 'spec file (YAML or JSON); flags override its fields')
    .option('--wait', 'wait for the job to end and exit with its exit code')
    .option('-n, --count <n>', 'submit n jobs (stress): named stress-1..n unless --name is given')
    .option('-t, --time <duration>', 'each job sleeps this long (5, 5s, 1m); sets the command')
    .option('--replicas <n>', `a gang of n replicas (at most ${MAX_GANG_SIZE}) placed all-or-nothing; see docs/gangs.md`)
    .option('--min-available <m>', 'the gang starts once m of its replicas fit at once (default: all; needs --replicas)')
    .option('--topology <label>', 'the gang prefers nodes sharing one value of this node label, e.g. rack (needs --replicas)')
    .option(
      '--array <range>',
      `an array of tasks first-last[:step][%max] (0-99, 0-99:2, 0-99%10: at most 10 at once), indexes 0-${MAX_ARRAY_INDEX}, at most ${MAX_ARRAY_TASKS} tasks; each gets TITAN_ARRAY_INDEX; see docs/arrays.md`,
    )
    .argument('[args...]', 'exact argv for the container (after --)')
    .action(async (args: string[], opts: Omit<SubmitFlags, 'args'>, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeArraySubmission, describeGangSubmission, describeOutcome, describeProgress, jobExitCode, planSubmission }] = await Promise.all([
        clusterClient(),
        import('../../internal/cli/submit.js'),
      ]);
      const plan = planSubmission({ ...opts, args });
      const json = config.output === 'json';
      if (plan.gang) {
        const gang = await withCluster(config, (cluster) => cluster.submitGang(plan));
        if (!json) io.err(`${describeGangSubmission(gang)}\n`);
        io.out(json ? toJson(gang) : gang.jobs.map((j) => `${j.id}\n`).join(''));
        return;
      }
      if (plan.array) {
        const array = await withCluster(config, (cluster) => cluster.submitArray(plan));
        if (!json) io.err(`${describeArraySubmission(array)}\n`);
        io.out(json ? toJson(array) : `${array.id}\n`);
        return;
      }
      if (plan.bulk) {
        const { bulkSummary, describeBulk, withProgressBar } = await import('./bulk-output.js');
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
          if (config.verbose) io.err(`titan: ${describeProgress(j)}\n`);
        });
        io.err(`${describeOutcome(final)}\n`);
        if (json) io.out(toJson(final));
        setExitCode(jobExitCode(final));
      });
    });

  program
    .command('status')
    .description("show a job's state and details; an array's tasks per state and its failed indexes")
    .argument('<id>', 'job id, array id, or ID[index] (one task of an array)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { jobOfStatusView, renderJobStatus }, { isArrayStatus, renderArrayStatus }] = await Promise.all([clusterClient(), jobs(), arrays()]);
      const view = await withCluster(config, (cluster) => cluster.status(id));
      if (config.output === 'json') io.out(toJson(view));
      else if (isArrayStatus(view)) io.out(renderArrayStatus(view));
      else io.out(renderJobStatus(jobOfStatusView(view), Date.now(), view.replicas));
    });

  program
    .command('list')
    .description('list jobs, newest first; -o wide adds resources, GPU devices, attempts and reasons')
    .option('--state <states>', `only jobs in these states, comma-separated or repeated (${JOB_STATES.join(',')})`, collect)
    .addOption(new Option('--status <states>', 'the former name of --state').argParser(collect).hideHelp())
    .option('--queue <queues>', 'only jobs of these queues, comma-separated or repeated', collect)
    .option('--label <KEY=VALUE>', 'only jobs with this label (repeatable: all must match)', collect)
    .option('--since <duration>', 'only jobs created within this long (30m, 1h, 2d)')
    .option('--array <id>', 'only the tasks of this array')
    .option('--sort <order>', `${JOB_SORTS.join(', ')}: newest first (default), highest priority first, or by queue name`)
    .option('--limit <n>', 'at most n jobs')
    .option('-w, --watch', 'print the list again whenever a job changes (on a terminal, in place) until interrupted')
    .action(async (opts: ListFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeEmptyList, listRedrawer, parseListFlags, renderJobTable }] = await Promise.all([clusterClient(), import('../../internal/cli/list.js')]);
      const query = parseListFlags(opts);
      if (opts.watch) {
        await withCluster(config, (cluster) => cluster.watchList(query, listRedrawer(io, config.output)));
        return;
      }
      const { jobs: found, skipped } = await withCluster(config, (cluster) => cluster.list(query));
      if (config.output === 'json') io.out(toJson(found));
      else if (found.length === 0) io.err(`${describeEmptyList(query)}\n`);
      else io.out(renderJobTable(found, Date.now(), config.output === 'wide'));
      throwIfSkipped(skipped);
    });

  program
    .command('wait')
    .description('wait until every named job ends; exit 0 if all succeeded, else as submit --wait does for the first that did not')
    .argument('<ids...>', 'job ids')
    .action(async (ids: string[], _opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeOutcome, describeProgress }, { waitExitCode, waitForJobs }] = await Promise.all([
        clusterClient(),
        import('../../internal/cli/submit.js'),
        import('../../internal/cli/wait.js'),
      ]);
      const json = config.output === 'json';
      const ended = await withCluster(config, (cluster) =>
        waitForJobs(cluster, ids, {
          onChange: (j) => (config.verbose ? io.err(`titan: ${describeProgress(j)}\n`) : undefined),
          onEnd: (j) => (json ? undefined : io.out(`${describeOutcome(j)}\n`)),
        }),
      );
      if (json) io.out(toJson(ended));
      setExitCode(waitExitCode(ended));
    });

  program
    .command('logs')
    .description("print a job's output (latest attempt); --output json prints one JSON object per entry")
    .argument('<id>', 'job id, or ID[index] for one task of an array')
    .option('-f, --follow', 'keep printing new output until the job ends')
    .option('--attempt <n>', 'an earlier attempt (1, 2, ...)')
    .action(async (id: string, opts: { follow?: boolean; attempt?: string }, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { parseAttempt }] = await Promise.all([clusterClient(), import('../../internal/cli/follow-logs.js')]);
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
    .description('cancel a job; an array id cancels every task of it that has not ended')
    .argument('<id>', 'job id, array id, or ID[index]')
    .option('--grace <duration>', `time the job gets to stop before it is killed (default ${DEFAULT_GRACE})`)
    .action(async (id: string, opts: { grace?: string }, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeCancel, parseGrace }, { describeArrayCancel, isArrayCancel }] = await Promise.all([clusterClient(), jobs(), arrays()]);
      const graceMs = parseGrace(opts.grace);
      const outcome = await withCluster(config, (cluster) => cluster.cancel(id, graceMs));
      const json = config.output === 'json';
      if (isArrayCancel(outcome)) io.out(json ? toJson(outcome) : `${describeArrayCancel(outcome)}\n`);
      else io.out(json ? toJson(outcome.job) : `${describeCancel(outcome)}\n`);
    });

  program
    .command('retry')
    .description('put a Failed or Cancelled job back in the queue (history kept, retries reset)')
    .argument('<id>', 'job id, ID[index] (one task of an array), or an array id with --failed')
    .option('--failed', "requeue the array's Failed tasks only (with an array id)")
    .action(async (id: string, opts: { failed?: boolean }, command: Command) => {
      const config = await configOf(command, io);
      const [{ withCluster }, { describeArrayRetry, isArrayRetry }] = await Promise.all([clusterClient(), arrays()]);
      const outcome = await withCluster(config, (cluster) => cluster.retry(id, { failed: opts.failed === true }));
      const json = config.output === 'json';
      if (isArrayRetry(outcome)) io.out(json ? toJson(outcome) : `${describeArrayRetry(outcome)}\n`);
      else io.out(json ? toJson(outcome) : `job ${jobRefOf(outcome)} is Pending again (attempt ${outcome.attempt + 1} next)\n`);
    });
}
