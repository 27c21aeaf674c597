import { readFileSync } from 'node:fs';
import { arraySpecs, arrayTaskId, formatArrayRange, parseArrayOptions, type ArrayOptions } from '../../pkg/model/array.js';
import { dependencyReason } from '../../pkg/model/dependency.js';
import { TitanError, invalidInput } from '../../pkg/model/errors.js';
import { gangSpecs, parseGangOptions, type GangOptions } from '../../pkg/model/gang.js';
import { newJobId } from '../../pkg/model/id.js';
import { isFinal, type Job, type JobSpec } from '../../pkg/model/job.js';
import { parseDuration, parsePositiveInteger } from '../../pkg/model/parse.js';
import { DEFAULT_QUEUE, queueOf, unknownQueue } from '../../pkg/model/queue.js';
import { buildJobSpec, parseSpecFile, type SubmitInput } from '../../pkg/model/spec.js';
import { records } from '../../pkg/store/codec.js';
import { startInformer, type Informer } from '../../pkg/store/informer.js';
import type { Store } from '../../pkg/store/store.js';
import { settleSoon } from '../../pkg/store/watch.js';
import { trimNumber } from './format.js';

/** `titan submit` flags as commander hands them over. */
export interface SubmitFlags {
  image?: string;
  cmd?: string;
  shell?: string;
  cpu?: string;
  mem?: string;
  /** GPUs: a share of one device (`0.25`) or whole devices (`2`). */
  gpu?: string;
  /** Allowed GPU models, `V100M16|V100M32`. */
  gpuModel?: string;
  /** `--node-selector k=v` (repeatable): node labels the job needs. */
  nodeSelector?: string[];
  priority?: string;
  env?: string[];
  label?: string[];
  name?: string;
  retries?: string;
  timeout?: string;
  file?: string;
  wait?: boolean;
  /** `-n`: submit this many copies (stress). */
  count?: string;
  /** `-t`: each job sleeps this long (sets the command). */
  time?: string;
  /** argv after `--`. */
  args?: string[];
  /** `--queue`: the queue to schedule in (default: the default queue). */
  queue?: string;
  /** `--preemptible` / `--no-preemptible`; undefined when neither was given. */
  preemptible?: boolean;
  /** `--min-runtime 10m`: never evicted younger than this. */
  minRuntime?: string;
  /** `--replicas N`: submit a gang of N replicas placed all-or-nothing. */
  replicas?: string;
  /** `--min-available M`: the gang starts once M replicas fit at once (default N). */
  minAvailable?: string;
  /** `--topology KEY`: the gang prefers nodes sharing one value of this node label. */
  topology?: string;
  /** `--array first-last[:step][%max]`: an array of tasks sharing the spec. */
  array?: string;
  /** `--after ok:ID[,ID...]` (repeatable, notok: and any: too): start only after those jobs end so. */
  after?: string[];
}

/** More than this in one `-n` is almost certainly a typo; it would also need a lot of memory. */
export const MAX_BULK_JOBS = 1_000_000;

export type ReadText = (path: string) => string;

const readUtf8: ReadText = (path) => readFileSync(path, 'utf8');

function readSpecFile(path: string, readText: ReadText): SubmitInput {
  let text: string;
  try {
    text = readText(path);
  } catch (err) {
    throw invalidInput('file', `cannot read ${path}: ${(err as Error).message}`);
  }
  return parseSpecFile(text, path);
}

function asPairs(value: SubmitInput['env']): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value;
  return Object.entries(value).map(([k, v]) => `${k}=${String(v)}`);
}

/**
 * Flags (and an optional spec file) → one SubmitInput. Flags override the
 * file's fields; --env/--label/--node-selector add to the file's maps.
 */
export function buildSubmitInput(flags: SubmitFlags, readText: ReadText = readUtf8): SubmitInput {
  const input: SubmitInput = flags.file !== undefined ? { ...readSpecFile(flags.file, readText) } : {};
  const set = <K extends keyof SubmitInput>(key: K, value: SubmitInput[K] | undefined): void => {
    if (value !== undefined) input[key] = value;
  };
  set('name', flags.name);
  set('image', flags.image);
  set('cmd', flags.cmd);
  set('shell', flags.shell);
  set('cpu', flags.cpu);
  set('memory', flags.mem);
  set('gpu', flags.gpu);
  set('gpuModel', flags.gpuModel);
  set('priority', flags.priority);
  set('retries', flags.retries);
  set('timeout', flags.timeout);
  set('queue', flags.queue);
  set('replicas', flags.replicas);
  set('minAvailable', flags.minAvailable);
  set('topology', flags.topology);
  set('array', flags.array);
  set('preemptible', flags.preemptible);
  set('minRuntime', flags.minRuntime);
  if (flags.args !== undefined && flags.args.length > 0) input.args = flags.args;
  if (flags.env !== undefined && flags.env.length > 0) {
    input.env = input.env === undefined ? flags.env : [...asPairs(input.env), ...flags.env];
  }
  if (flags.label !== undefined && flags.label.length > 0) {
    input.labels = input.labels === undefined ? flags.label : [...asPairs(input.labels), ...flags.label];
  }
  if (flags.after !== undefined && flags.after.length > 0) {
    input.after = input.after === undefined ? flags.after : [...[input.after].flat(), ...flags.after];
  }
  if (flags.nodeSelector !== undefined && flags.nodeSelector.length > 0) {
    input.nodeSelector =
      input.nodeSelector === undefined ? flags.nodeSelector : [...asPairs(input.nodeSelector), ...flags.nodeSelector];
  }
  return input;
}

/** A new, pending job for a spec; one with dependencies says from the start what it waits for. */
export function newJob(spec: JobSpec, now: number = Date.now(), id: string = newJobId(now)): Job {
  return { ...spec, id, state: 'Pending', createdAt: now, attempt: 0, ...(spec.after ? { reason: dependencyReason(spec.after) } : {}) };
}

export interface SubmitPlan {
  jobs: Job[];
  /**
   * The spec document the jobs were built from (with -t's command set): what
   * the HTTP API is sent. For -n, each job's document is this with the job's name.
   */
  input: SubmitInput;
  /** `-n` was given: report a summary rather than one id. */
  bulk: boolean;
  wait: boolean;
  /** `--replicas` was given: `jobs` are the gang's replicas in rank order, created in one transaction. */
  gang?: GangOptions & { id: string };
  /** `--array` was given: `jobs` are the array's tasks in index order, created in batches (submitJobs). */
  array?: ArrayOptions & { id: string };
}

/**
 * Validates everything and builds the jobs to create, touching nothing
 * outside the process: bad input fails here, before etcd is contacted.
 */
export function planSubmission(flags: SubmitFlags, options: { now?: number; readText?: ReadText } = {}): SubmitPlan {
  const now = options.now ?? Date.now();
  const count = flags.count === undefined ? undefined : parsePositiveInteger(flags.count, 'count');
  if (count !== undefined && count > MAX_BULK_JOBS) {
    throw invalidInput('count', `at most ${MAX_BULK_JOBS} jobs per submit`);
  }
  if (count !== undefined && flags.wait) throw invalidInput('wait', '--wait follows one job; it cannot be used with -n');
  const input = buildSubmitInput(flags, options.readText);
  const gang = parseGangOptions(input);
  if (gang && count !== undefined) throw invalidInput('replicas', '--replicas submits one gang; it cannot be combined with -n/--count');
  if (gang && flags.wait) throw invalidInput('wait', '--wait follows one job; with --replicas follow the gang with titan status <gang id>');
  const array = parseArrayOptions(input);
  if (array && count !== undefined) throw invalidInput('array', '--array submits one array; it cannot be combined with -n/--count');
  if (array && flags.wait) throw invalidInput('wait', '--wait follows one job; follow an array with titan status <array id>');
  if (flags.time !== undefined) {
    const ms = parseDuration(flags.time, 'time');
    if (input.cmd !== undefined || input.shell !== undefined || (input.args?.length ?? 0) > 0) {
      throw invalidInput('time', '-t sets the command (sleep); do not combine it with --cmd, --shell or arguments');
    }
    const sleep = `sleep ${trimNumber(ms / 1000, 3)}`;
    if (input.image !== undefined) input.cmd = sleep;
    else input.shell = sleep;
  }
  if (count === undefined) return { ...planDocument(input, now), wait: flags.wait === true };
  const base = input.name ?? 'stress';
  // Validate once (with the longest name) so a bad flag fails before building n specs.
  const spec = buildJobSpec({ ...input, name: `${base}-${count}` });
  const jobs = new Array<Job>(count);
  for (let i = 0; i < count; i++) {
    jobs[i] = newJob({ ...copySpec(spec), name: `${base}-${i + 1}` }, now);
  }
  return { jobs, bulk: true, wait: false, input };
}

/** One spec document → what it submits: one job, a gang's replicas or an array's tasks (the API's POST /v1/jobs plans each document so). */
export function planDocument(input: SubmitInput, now: number = Date.now()): SubmitPlan {
  const gang = parseGangOptions(input);
  if (gang) return planGang(buildJobSpec(input), gang, input, now);
  const array = parseArrayOptions(input);
  if (array) return planArray(buildJobSpec(input), array, input, now);
  return { jobs: [newJob(buildJobSpec(input), now)], bulk: false, wait: false, input };
}

/** The tasks of one array: the array id is a new job id, each task's id that id and its index (arrayTaskId). */
function planArray(spec: JobSpec, array: ArrayOptions, input: SubmitInput, now: number): SubmitPlan {
  const id = newJobId(now);
  const jobs = arraySpecs(spec, id, array).map((task): Job => ({ ...task, id: arrayTaskId(id, task.array?.index ?? 0), state: 'Pending', createdAt: now, attempt: 0 }));
  return { jobs, bulk: false, wait: false, input, array: { ...array, id } };
}

/** `titan submit --array --output json` (and the API's answer to an array): the array, not its tasks. */
export interface ArraySubmission {
  id: string;
  name: string;
  count: number;
  first: number;
  last: number;
  step: number;
  max: number | null;
}

export function arraySubmissionView(plan: SubmitPlan): ArraySubmission {
  const array = plan.array;
  if (!array) throw new TitanError('Internal', 'not an array submission');
  const { id, count, first, last, step, max } = array;
  return { id, name: plan.jobs[0]?.name ?? '', count, first, last, step, max: max ?? null };
}

/** One line (for stderr) about a submitted array; stdout gets the array id. */
export function describeArraySubmission(array: ArraySubmission): string {
  const range = formatArrayRange({ ...array, max: undefined });
  const at = array.max !== null ? `, at most ${array.max} at once` : '';
  return `array ${array.id}: ${array.count} task${array.count === 1 ? '' : 's'}, indexes ${range}${at}; see titan status ${array.id}`;
}

/** The replicas of one gang: ids made first, so the group id can be rank 0's job id. */
function planGang(spec: JobSpec, gang: GangOptions, input: SubmitInput, now: number): SubmitPlan {
  const ids = Array.from({ length: gang.replicas }, () => newJobId(now));
  const jobs = gangSpecs(spec, ids[0], gang).map((replica, rank): Job => newJob(replica, now, ids[rank]));
  return { jobs, bulk: false, wait: false, input, gang: { ...gang, id: ids[0] } };
}

/** `titan submit --replicas --output json` (and the API's answer to a gang): the group and its replicas. */
export interface GangSubmission {
  gang: SubmitPlan['gang'];
  jobs: Job[];
}

export function gangSubmissionView(plan: SubmitPlan): GangSubmission {
  return { gang: plan.gang, jobs: plan.jobs };
}

/** One line (for stderr) about a submitted gang; stdout gets the replica ids, rank 0 (the gang id) first. */
export function describeGangSubmission(submitted: Pick<SubmitPlan, 'gang'>): string {
  const gang = submitted.gang;
  if (!gang) return '';
  const start = gang.minAvailable === gang.replicas ? `all ${gang.replicas} start together` : `starts once ${gang.minAvailable} fit at once`;
  const topology = gang.topology !== undefined ? `, preferring one ${gang.topology}` : '';
  return `gang ${gang.id}: ${gang.replicas} replicas, ${start}${topology}`;
}

/**
 * Fails before anything is written when a job names a queue that does not
 * exist (the default queue always does). `createJobs` checks again in its
 * transaction, so a queue deleted meanwhile cannot be raced.
 */
export async function requireQueues(store: Pick<Store, 'getQueue'>, jobs: readonly Job[]): Promise<void> {
  const names = new Set<string>();
  for (const job of jobs) names.add(queueOf(job));
  names.delete(DEFAULT_QUEUE);
  for (const name of names) if (!(await store.getQueue(name))) throw unknownQueue(name);
}

/** A copy sharing no mutable map or list with the original: bulk jobs must not alias each other. */
function copySpec(spec: JobSpec): JobSpec {
  return {
    ...spec,
    env: { ...spec.env },
    labels: { ...spec.labels },
    ...(spec.gpuModels ? { gpuModels: [...spec.gpuModels] } : {}),
    ...(spec.nodeSelector ? { nodeSelector: { ...spec.nodeSelector } } : {}),
    ...(spec.after ? { after: spec.after.map((d) => ({ ...d, jobs: [...d.jobs] })) } : {}),
  };
}

/** The exit status `titan submit --wait` ends with: the job's own, or 1 when it has none. */
export function jobExitCode(job: Job): number {
  if (job.state === 'Succeeded') return job.exitCode ?? 0;
  if (job.state === 'Failed') return job.exitCode !== undefined && job.exitCode !== 0 ? job.exitCode : 1;
  return 1;
}

/** `--verbose` while waiting for a job: "job x is Running on node-1". */
export function describeProgress(job: Job): string {
  return `job ${job.id} is ${job.state}${job.node ? ` on ${job.node}` : ''}`;
}

/** One line about how a job ended: "job x Succeeded (exit 0) on node-1 after 3.2s". */
export function describeOutcome(job: Job): string {
  const parts = [`job ${job.id} ${job.state}`];
  if (job.exitCode !== undefined) parts.push(`(exit ${job.exitCode})`);
  if (job.node) parts.push(`on ${job.node}`);
  if (job.startedAt && job.finishedAt) parts.push(`after ${trimNumber((job.finishedAt - job.startedAt) / 1000, 1)}s`);
  let line = parts.join(' ');
  if (job.reason) line += `: ${job.reason}`;
  return line;
}

export interface WaitOptions {
  /** Re-read the job this often, in case the watch is stuck (default 5 s). */
  pollMs?: number;
  /** Give up after this many failed re-reads in a row (default 3). */
  maxFailures?: number;
  /** Every state the job is seen in, once per change. */
  onChange?: (job: Job) => void;
}

/**
 * Follows one job (list + watch of its key, plus a slow re-read as a
 * safety net) until it reaches a final state, and returns it then.
 */
export function waitForJob(store: Store, jobId: string, options: WaitOptions = {}): Promise<Job> {
  const key = store.keys.job(jobId);
  const maxFailures = options.maxFailures ?? 3;
  return new Promise<Job>((resolve, reject) => {
    let settled = false;
    let failures = 0;
    let lastRevision = -1n;
    let lastState: string | undefined;
    const settle = (finish: () => void): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      void settleSoon(informer.stop()).then(finish);
    };
    const see = (job: Job | undefined, modRevision: string): void => {
      if (settled) return;
      const revision = BigInt(modRevision);
      if (revision < lastRevision) return; // a re-read older than an event already seen
      lastRevision = revision;
      if (!job) {
        settle(() => reject(new TitanError('NotFound', `job ${jobId} was deleted while waiting for it`)));
        return;
      }
      if (job.state !== lastState) {
        lastState = job.state;
        options.onChange?.(job);
      }
      if (isFinal(job.state)) settle(() => resolve(job));
    };
    const timer = setInterval(() => {
      store.getJob(jobId).then(
        (found) => {
          failures = 0;
          if (found) see(found.value, found.modRevision);
        },
        (err: unknown) => {
          if (++failures >= maxFailures) settle(() => reject(err));
        },
      );
    }, options.pollMs ?? 5000);
    // Callbacks run asynchronously, after this assignment.
    const informer: Informer = startInformer<Job>(store, key, {
      reset(items, revision) {
        const found = items.find((i) => i.key === key);
        see(found?.value, found?.modRevision ?? revision);
      },
      events(events) {
        for (const e of events) if (e.key === key) see(e.type === 'delete' ? undefined : e.value, e.modRevision);
      },
    }, { decode: records.job.decode });
  });
}
