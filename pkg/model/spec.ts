import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { parse as parseYaml } from 'yaml';
import { parseArrayOptions } from './array.js';
import { parseAfter } from './dependency.js';
import { documentChecker } from './document.js';
import { invalidInput } from './errors.js';
import { parseGangOptions, type GangInput } from './gang.js';
import type { JobSpec } from './job.js';
import { parseCpu, parseDuration, parseGpu, parseInteger, parseKeyValues, parseMemory } from './parse.js';
import { DEFAULT_QUEUE, parseQueueName } from './queue.js';

/** Defaults for a job that names no resources: small, so it fits anywhere. */
export const DEFAULT_CPU_MILLI = 100;
export const DEFAULT_MEMORY_BYTES = 64 * 2 ** 20;

/** A submission as the user wrote it, from flags or a spec file, before validation. */
export interface SubmitInput extends GangInput {
  name?: string;
  image?: string;
  /** A command line run through `/bin/sh -c` inside the container. */
  cmd?: string;
  /** An exact argv for the container (`titan submit --image x -- argv...`). */
  args?: string[];
  /** A script run through `/bin/sh -c` on the worker host, without Docker. */
  shell?: string;
  cpu?: string | number;
  memory?: string | number;
  gpu?: string | number;
  priority?: string | number;
  env?: string[] | Record<string, string>;
  labels?: string[] | Record<string, string>;
  /** Retries of a failed run (exit code, timeout, lost container). */
  retries?: string | number;
  /** Longest a run may take: 30s, 5m, 1h. */
  timeout?: string | number;
  /** Allowed GPU models: `V100M16|V100M32` or a list. */
  gpuModel?: string | string[];
  /** Node labels the job needs: `zone=a` pairs or a map. */
  nodeSelector?: string[] | Record<string, string>;
  /** The queue to schedule the job in (default: the default queue). */
  queue?: string;
  /** May a running attempt be evicted for higher-priority jobs (default: only while over its queue's quota). */
  preemptible?: boolean | string;
  /** A running attempt younger than this is never evicted: 30s, 10m. */
  minRuntime?: string | number;
  /** An array of tasks: `first-last[:step][%max]` (pkg/model/array.ts). */
  array?: string;
  /** Conditions on other jobs: `ok:ID[,ID...]`, `notok:ID`, `any:ID` (one or a list; all must hold). */
  after?: string | string[];
}

const NumberOrText = Type.Union([Type.String(), Type.Number()]);
const PairsOrMap = Type.Union([Type.Array(Type.String()), Type.Record(Type.String(), Type.String())]);
const described = <T extends TSchema>(schema: T, description: string): T => ({ ...schema, description });

/**
 * A job as a spec document: `titan submit -f job.yaml` and the API's
 * `POST /v1/jobs` take this shape, check it with checkSpecDocument and
 * build it with buildJobSpec, so both refuse the same things the same way.
 * /openapi.json publishes this schema.
 */
export const SpecDocumentSchema = Type.Object(
  {
    name: Type.Optional(described(Type.String(), 'job name: 1-63 letters, digits, ., _ or -')),
    image: Type.Optional(described(Type.String(), 'container image: a Docker job')),
    cmd: Type.Optional(described(Type.String(), 'command line run with /bin/sh -c in the container')),
    args: Type.Optional(described(Type.Array(Type.String()), 'exact argv for the container')),
    shell: Type.Optional(described(Type.String(), 'script run with /bin/sh -c on the worker host (where the worker allows shell jobs)')),
    cpu: Type.Optional(described(NumberOrText, 'CPU request: 500m, 0.5, 2 (default 100m)')),
    memory: Type.Optional(described(NumberOrText, 'memory request: 512Mi, 2Gi (default 64Mi)')),
    gpu: Type.Optional(described(NumberOrText, 'GPUs: a share of one (0.25) or whole GPUs (2)')),
    priority: Type.Optional(described(NumberOrText, 'higher runs first (default 0)')),
    env: Type.Optional(described(PairsOrMap, 'environment: KEY=VALUE pairs or a map')),
    labels: Type.Optional(described(PairsOrMap, 'labels: KEY=VALUE pairs or a map')),
    retries: Type.Optional(described(NumberOrText, 'retries of a failed run')),
    timeout: Type.Optional(described(NumberOrText, 'longest a run may take: 30s, 5m, 1h')),
    gpuModel: Type.Optional(described(Type.Union([Type.String(), Type.Array(Type.String())]), 'allowed GPU models: V100M16|V100M32 or a list')),
    nodeSelector: Type.Optional(described(PairsOrMap, 'node labels the job needs')),
    queue: Type.Optional(described(Type.String(), 'queue to schedule in (default: default)')),
    preemptible: Type.Optional(described(Type.Union([Type.Boolean(), Type.String()]), 'may be evicted for higher-priority jobs')),
    minRuntime: Type.Optional(described(NumberOrText, 'never evicted before it ran this long')),
    replicas: Type.Optional(described(NumberOrText, 'a gang of this many replicas placed all-or-nothing')),
    minAvailable: Type.Optional(described(NumberOrText, 'the gang starts once this many fit at once')),
    topology: Type.Optional(described(Type.String(), 'the gang prefers nodes sharing one value of this node label')),
    array: Type.Optional(described(Type.String(), 'an array of tasks: first-last[:step][%max], e.g. 0-99%10 (each task gets TITAN_ARRAY_INDEX)')),
    after: Type.Optional(
      described(Type.Union([Type.String(), Type.Array(Type.String())]), 'start only after other jobs end: ok:ID[,ID...] (succeeded), notok:ID (failed or cancelled), any:ID; a list must all hold'),
    ),
  },
  { additionalProperties: false },
);

const checkDocument = documentChecker(SpecDocumentSchema);

/** More retries than this is a mistake, not a policy. */
export const MAX_RETRIES = 100;

/**
 * Most bytes a job's command, env and labels may hold together (UTF-8, keys
 * and values counted). Every job record is read whole by the master, the
 * worker and `titan list`: a few thousand jobs at this size still fit in one
 * etcd response, and nothing a batch job needs is bigger (data goes in
 * files or the image, not the environment).
 */
export const MAX_JOB_SPEC_BYTES = 64 * 2 ** 10;

/**
 * Env keys only Titan sets: the GPU runtime's (NVIDIA_*, CUDA_VISIBLE_DEVICES)
 * decide which devices a container reaches, and TITAN_* tell a run who it is.
 * A job setting them could reach GPUs it was not given, or pose as another job.
 */
export function isReservedEnvKey(key: string): boolean {
  return key.startsWith('NVIDIA_') || key === 'CUDA_VISIBLE_DEVICES' || key.startsWith('TITAN_');
}

/** The first reserved key of an env, if any (see isReservedEnvKey). */
export function reservedEnvKey(env: Readonly<Record<string, string>>): string | undefined {
  return Object.keys(env).find(isReservedEnvKey);
}

/** What a spec's command, env and labels weigh against MAX_JOB_SPEC_BYTES. */
export function jobSpecBytes(spec: Pick<JobSpec, 'command' | 'env' | 'labels'>): number {
  let bytes = 0;
  for (const arg of spec.command) bytes += Buffer.byteLength(arg);
  for (const record of [spec.env, spec.labels]) {
    for (const [key, value] of Object.entries(record)) bytes += Buffer.byteLength(key) + Buffer.byteLength(value);
  }
  return bytes;
}

function checkEnv(env: Record<string, string>): Record<string, string> {
  const reserved = reservedEnvKey(env);
  if (reserved !== undefined) {
    throw invalidInput(`env.${reserved}`, 'is reserved: NVIDIA_*, CUDA_VISIBLE_DEVICES and TITAN_* are set by Titan only (GPUs are given with --gpu)');
  }
  return env;
}

function checkSize(spec: JobSpec): JobSpec {
  const bytes = jobSpecBytes(spec);
  if (bytes > MAX_JOB_SPEC_BYTES) {
    throw invalidInput(
      'spec',
      `command, env and labels hold ${bytes} bytes, over the limit of ${MAX_JOB_SPEC_BYTES} bytes (${MAX_JOB_SPEC_BYTES / 1024} KiB); pass large data in a file or the image`,
    );
  }
  return spec;
}

function toRecord(value: SubmitInput['env'], field: string): Record<string, string> {
  if (value === undefined) return {};
  if (Array.isArray(value)) return parseKeyValues(value, field);
  if (typeof value !== 'object' || value === null) throw invalidInput(field, 'must be a map of KEY: VALUE');
  const pairs = Object.entries(value).map(([k, v]) => {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw invalidInput(`${field}.${k}`, 'must be a string');
    }
    return `${k}=${String(v)}`;
  });
  return parseKeyValues(pairs, field);
}

function nonEmpty(value: string | undefined): value is string {
  return value !== undefined && value.trim().length > 0;
}

/**
 * Validates a submission and turns it into a spec; throws InvalidInput naming
 * the field. The gang fields (replicas, minAvailable, topology) and the array
 * range are validated here too, but the spec is one replica's (or task's)
 * template: parseGangOptions and parseArrayOptions give the group, gangSpecs
 * and arraySpecs expand it (the group's id is a job id, made later).
 */
export function buildJobSpec(input: SubmitInput): JobSpec {
  parseGangOptions(input);
  parseArrayOptions(input);
  if (input.shell !== undefined && input.image !== undefined) {
    throw invalidInput('shell', 'a job is either --image (Docker) or --shell (host process), not both');
  }
  const kind = input.shell !== undefined ? 'shell' : 'docker';
  let command: string[];
  if (kind === 'shell') {
    if (!nonEmpty(input.shell)) throw invalidInput('shell', 'the command is empty');
    if (input.cmd !== undefined || input.args?.length) {
      throw invalidInput('cmd', '--cmd and arguments go with --image; put the whole script in --shell');
    }
    command = ['/bin/sh', '-c', input.shell];
  } else {
    if (!nonEmpty(input.image)) throw invalidInput('image', 'missing: give --image, or --shell for a host process');
    if (/\s/.test(input.image.trim())) throw invalidInput('image', `"${input.image}" is not an image name`);
    if (input.cmd !== undefined && input.args?.length) {
      throw invalidInput('cmd', 'give either --cmd "..." or arguments after --, not both');
    }
    if (input.cmd !== undefined) {
      if (!nonEmpty(input.cmd)) throw invalidInput('cmd', 'the command is empty');
      command = ['/bin/sh', '-c', input.cmd];
    } else {
      command = input.args ?? [];
      if (command.some((a) => typeof a !== 'string')) throw invalidInput('args', 'must be a list of strings');
    }
  }
  const name = input.name ?? '';
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name) && name !== '') {
    throw invalidInput('name', `"${name}" must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  const gpuMilli = input.gpu === undefined ? 0 : parseGpu(input.gpu);
  return checkSize({
    name,
    kind,
    ...(kind === 'docker' ? { image: input.image?.trim() } : {}),
    command,
    env: checkEnv(toRecord(input.env, 'env')),
    resources: {
      cpu: input.cpu === undefined ? DEFAULT_CPU_MILLI : parseCpu(input.cpu),
      memory: input.memory === undefined ? DEFAULT_MEMORY_BYTES : parseMemory(input.memory),
      gpuMilli,
    },
    priority: input.priority === undefined ? 0 : parseInteger(input.priority, 'priority'),
    labels: toRecord(input.labels, 'labels'),
    ...(input.retries !== undefined ? { retries: parseRetries(input.retries) } : {}),
    ...(input.timeout !== undefined ? { timeoutMs: parseTimeout(input.timeout) } : {}),
    ...constraintsOf(input, gpuMilli),
    ...queueOfInput(input),
    ...evictionPolicyOf(input),
    ...(input.after !== undefined ? { after: parseAfter(input.after) } : {}),
  });
}

/** `preemptible` and `minRuntime`; absent fields stay absent, so the scheduler's defaults apply. */
function evictionPolicyOf(input: SubmitInput): Pick<JobSpec, 'preemptible' | 'minRuntimeMs'> {
  const out: Pick<JobSpec, 'preemptible' | 'minRuntimeMs'> = {};
  const flag = input.preemptible;
  if (flag !== undefined) {
    if (flag === true || flag === 'true') out.preemptible = true;
    else if (flag === false || flag === 'false') out.preemptible = false;
    else throw invalidInput('preemptible', `"${String(flag)}" is not true or false`);
  }
  if (input.minRuntime !== undefined) out.minRuntimeMs = parseDuration(input.minRuntime, 'minRuntime');
  return out;
}

/** The default queue is left implicit, so jobs in it look alike whether or not they named it. */
function queueOfInput(input: SubmitInput): Pick<JobSpec, 'queue'> {
  if (input.queue === undefined) return {};
  if (typeof input.queue !== 'string') throw invalidInput('queue', 'must be a queue name');
  const queue = parseQueueName(input.queue, 'queue');
  return queue === DEFAULT_QUEUE ? {} : { queue };
}

function constraintsOf(input: SubmitInput, gpuMilli: number): Pick<JobSpec, 'gpuModels' | 'nodeSelector'> {
  const out: Pick<JobSpec, 'gpuModels' | 'nodeSelector'> = {};
  if (input.gpuModel !== undefined) {
    // A model constraint on a job that takes no GPU would silently restrict it to GPU nodes.
    if (gpuMilli === 0) throw invalidInput('gpuModel', '--gpu-model needs --gpu (the job asks for no GPU)');
    out.gpuModels = parseGpuModels(input.gpuModel);
  }
  const selector = toRecord(input.nodeSelector, 'nodeSelector');
  if (Object.keys(selector).length > 0) out.nodeSelector = selector;
  return out;
}

function parseGpuModels(value: string | string[]): string[] {
  const parts = (Array.isArray(value) ? value : String(value).split('|')).map((m) => String(m).trim());
  if (parts.length === 0 || parts.some((m) => !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(m))) {
    throw invalidInput('gpuModel', `"${parts.join('|')}" is not a list of GPU models (use V100M16|V100M32)`);
  }
  return [...new Set(parts)];
}

function parseRetries(value: string | number): number {
  const retries = parseInteger(value, 'retries');
  if (retries < 0 || retries > MAX_RETRIES) throw invalidInput('retries', `must be between 0 and ${MAX_RETRIES}`);
  return retries;
}

function parseTimeout(value: string | number): number {
  const ms = parseDuration(value, 'timeout');
  if (ms < 1000) throw invalidInput('timeout', 'must be at least 1s');
  return ms;
}

/** Reads a JSON or YAML spec file's text; unknown fields are errors, not ignored. */
export function parseSpecFile(text: string, fileName: string): SubmitInput {
  let data: unknown;
  try {
    data = fileName.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw invalidInput('file', `${fileName} is not valid ${fileName.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return checkSpecDocument(data, fileName);
}

/**
 * A spec document's shape (SpecDocumentSchema), with the first fault named:
 * an unknown field, or a field of the wrong type. What the values mean is
 * checked by buildJobSpec.
 */
export function checkSpecDocument(data: unknown, source: string): SubmitInput {
  return checkDocument(data, source) as SubmitInput;
}

/** The input type and the published schema describe the same fields. */
type SameKeys<A, B> = [keyof A] extends [keyof B] ? ([keyof B] extends [keyof A] ? true : false) : false;
const sameFields: SameKeys<Static<typeof SpecDocumentSchema>, SubmitInput> = true;
void sameFields;
