import { invalidInput } from './errors.js';
import { JOB_ID_PATTERN } from './id.js';
import type { JobSpec } from './job.js';

/**
 * Job arrays (docs/arrays.md): one submission of N tasks sharing a spec,
 * each an ordinary job carrying this record. Like a gang, the array has no
 * key of its own, so nothing about it can drift from its tasks: its id is a
 * job id no record holds, and each task's job id is that id and its index
 * (arrayTaskId), so `ID[7]` names a key without a lookup.
 */
export interface ArraySpec {
  /** The array id: a job id (newJobId) that no job record has. */
  id: string;
  /** This task's index, as the range gave it (`0-99:10` gives 0, 10, ... 90). */
  index: number;
  /** How many tasks the array was submitted with. */
  count: number;
  /** `%max`: at most this many tasks of the array are Scheduled or Running at once. */
  max?: number;
}

/** What a submission asks for, before validation (flags or a spec file). */
export interface ArrayInput {
  array?: string;
  replicas?: string | number;
}

/** A validated `--array first-last[:step][%max]`. */
export interface ArrayOptions {
  first: number;
  last: number;
  step: number;
  /** How many indexes the range holds. */
  count: number;
  max?: number;
}

/**
 * Most tasks in one array. Each task is a job record (a few hundred bytes in
 * etcd, and in the master's queue while pending): 100,000 of them are about
 * what one `titan submit -n` should write at once, and take seconds to submit.
 */
export const MAX_ARRAY_TASKS = 100_000;
/** Digits of an index in a task id: indexes run 0..MAX_ARRAY_INDEX. */
export const ARRAY_INDEX_DIGITS = 6;
export const MAX_ARRAY_INDEX = 10 ** ARRAY_INDEX_DIGITS - 1;

const RANGE = /^(\d+)-(\d+)(?::(\d+))?(?:%(\d+))?$/;
const SYNTAX = 'use first-last[:step][%max], e.g. 0-99, 0-99:2 or 0-99%10';

/** Validates the array field of a submission; undefined when it is not an array. Throws InvalidInput. */
export function parseArrayOptions(input: ArrayInput): ArrayOptions | undefined {
  if (input.array === undefined) return undefined;
  if (input.replicas !== undefined) {
    throw invalidInput('array', '--array and --replicas do not go together: an array runs independent tasks, a gang starts its replicas together');
  }
  return parseArrayRange(input.array);
}

/** `first-last[:step][%max]` → the range; throws InvalidInput naming `field`. */
export function parseArrayRange(value: unknown, field = 'array'): ArrayOptions {
  const text = typeof value === 'string' ? value.trim() : '';
  const match = RANGE.exec(text);
  if (!match) throw invalidInput(field, `"${String(value)}" is not an index range (${SYNTAX})`);
  const [first, last] = [Number(match[1]), Number(match[2])];
  const step = match[3] === undefined ? 1 : Number(match[3]);
  if (last > MAX_ARRAY_INDEX) throw invalidInput(field, `indexes run from 0 to ${MAX_ARRAY_INDEX}; got ${match[2]}`);
  if (first > last) throw invalidInput(field, `"${text}" runs backwards: the first index (${first}) is after the last (${last})`);
  if (step < 1) throw invalidInput(field, `"${text}": the step must be 1 or more`);
  const count = Math.floor((last - first) / step) + 1;
  if (count > MAX_ARRAY_TASKS) throw invalidInput(field, `"${text}" holds ${count} tasks; an array holds at most ${MAX_ARRAY_TASKS}`);
  const options: ArrayOptions = { first, last, step, count };
  if (match[4] !== undefined) {
    const max = Number(match[4]);
    if (max < 1) throw invalidInput(field, `"${text}": %${match[4]} would never run a task; give %1 or more`);
    if (!Number.isSafeInteger(max)) throw invalidInput(field, `"${text}": %${match[4]} is out of range`);
    options.max = max;
  }
  return options;
}

/** The range as `--array` takes it, normalized: `0-99`, `0-99:2%10`. */
export function formatArrayRange(options: ArrayOptions): string {
  return `${options.first}-${options.last}${options.step !== 1 ? `:${options.step}` : ''}${options.max !== undefined ? `%${options.max}` : ''}`;
}

/** The indexes of a range, in order. */
export function arrayIndexes(options: ArrayOptions): number[] {
  const out = new Array<number>(options.count);
  for (let i = 0; i < options.count; i++) out[i] = options.first + i * options.step;
  return out;
}

/** The job id of task `index` of array `arrayId`: `<arrayId>-<index, 6 digits>`, so key order is index order. */
export function arrayTaskId(arrayId: string, index: number): string {
  return `${arrayId}-${String(index).padStart(ARRAY_INDEX_DIGITS, '0')}`;
}

const TASK_ID_LENGTH = 13 + 1 + ARRAY_INDEX_DIGITS;

/**
 * The array a task's job id belongs to, or undefined for any other id. No
 * regex: the master asks this of every allocation it records.
 */
export function arrayIdOfTaskId(jobId: string): string | undefined {
  if (jobId.length !== TASK_ID_LENGTH || jobId.charCodeAt(13) !== 45 /* - */) return undefined;
  for (let i = 14; i < TASK_ID_LENGTH; i++) {
    const c = jobId.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  return jobId.slice(0, 13);
}

/**
 * One spec → its N tasks' specs, in index order. Each is a full copy (no
 * shared maps); every task keeps the array's name.
 */
export function arraySpecs(spec: JobSpec, arrayId: string, options: ArrayOptions): JobSpec[] {
  const specs = new Array<JobSpec>(options.count);
  for (let i = 0; i < options.count; i++) {
    specs[i] = {
      ...spec,
      env: { ...spec.env },
      labels: { ...spec.labels },
      ...(spec.gpuModels ? { gpuModels: [...spec.gpuModels] } : {}),
      ...(spec.nodeSelector ? { nodeSelector: { ...spec.nodeSelector } } : {}),
      array: {
        id: arrayId,
        index: options.first + i * options.step,
        count: options.count,
        ...(options.max !== undefined ? { max: options.max } : {}),
      },
    };
  }
  return specs;
}

/** What `ID` or `ID[7]` addresses, before anything is read. */
export interface JobRef {
  /** The key to read: the job id given, or for `ID[7]` the task's job id. */
  id: string;
  /** `ID[7]`: the array and the index named. */
  task?: { arrayId: string; index: number };
}

const TASK_REF = /^([^[\]]+)\[(\d+)\]$/;

/**
 * `ID` → that id (a job, or an array: only a read can tell); `ID[7]` →
 * task 7 of array ID. Every command taking a job id and the API's routes
 * parse their id with this. An `ID[i]` whose ID is not a job id, or whose
 * index is out of range, is bad input.
 */
export function parseJobRef(text: string, field = 'id'): JobRef {
  const value = text.trim();
  if (!value.includes('[') && !value.includes(']')) return { id: value };
  const match = TASK_REF.exec(value);
  if (!match || !JOB_ID_PATTERN.test(match[1]) || arrayIdOfTaskId(match[1]) !== undefined) {
    throw invalidInput(field, `"${text}" is not a job id or an array task (ID[index], e.g. ${'0'.repeat(13)}[7])`);
  }
  const index = Number(match[2]);
  if (match[2].length > ARRAY_INDEX_DIGITS) throw invalidInput(field, `"${text}": indexes run from 0 to ${MAX_ARRAY_INDEX}`);
  return { id: arrayTaskId(match[1], index), task: { arrayId: match[1], index } };
}

/** How a job is named to users: `ID[7]` for an array task, else its id. */
export function jobRefOf(job: { id: string; array?: Pick<ArraySpec, 'id' | 'index'> }): string {
  return job.array && job.id === arrayTaskId(job.array.id, job.array.index) ? `${job.array.id}[${job.array.index}]` : job.id;
}

/** The variables a task's run sees (on top of TITAN_JOB_ID and the rest). */
export function arrayEnv(array: ArraySpec): Record<string, string> {
  return {
    TITAN_ARRAY_ID: array.id,
    TITAN_ARRAY_INDEX: String(array.index),
    TITAN_ARRAY_COUNT: String(array.count),
  };
}

/**
 * Indexes as short text: runs of consecutive indexes (or of one step) as
 * ranges, `0-4,7,10-20:2`. The ranges use `--array`'s syntax.
 */
export function formatIndexes(indexes: readonly number[]): string {
  const sorted = [...indexes].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    const step = i + 1 < sorted.length ? sorted[i + 1] - sorted[i] : 0;
    let j = i;
    while (step > 0 && j + 1 < sorted.length && sorted[j + 1] - sorted[j] === step) j++;
    if (j - i >= 2) {
      parts.push(`${sorted[i]}-${sorted[j]}${step !== 1 ? `:${step}` : ''}`);
      i = j + 1;
    } else {
      parts.push(String(sorted[i]));
      i++;
    }
  }
  return parts.join(',');
}
