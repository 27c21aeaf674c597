import { invalidInput, MILLI_PER_GPU, type GangSpec, type GpuDevice } from '../../pkg/model/index.js';
import { newNodeView, type JobRequest, type NodeView, type PassJob } from '../scheduler/index.js';

const MiB = 2 ** 20;

/** A task of a trace: what it asks for, in the scheduler's terms. */
export interface TraceJob extends JobRequest {
  name: string;
  /** The queue the job is submitted to (from a column of the trace). */
  queue?: string;
  /** Seconds from the trace's start; used when a simulation keeps time. */
  createdAt?: number;
  deletedAt?: number;
  /** A job spec's scheduling fields, for traces built in code (the CSV has no columns for them). */
  priority?: number;
  preemptible?: boolean;
  minRuntimeMs?: number;
  timeoutMs?: number;
  gang?: GangSpec;
}

/** A trace task as a scheduling pass takes it. */
export interface TracePassJob extends PassJob {
  name: string;
}

/** A task pending since `createdAt` (the pass's clock: milliseconds), in `queue` (absent: the default queue), not yet tried. */
export function passJobOf(job: TraceJob, createdAt: number, queue: string | undefined = job.queue): TracePassJob {
  return {
    id: job.id,
    name: job.name,
    kind: job.kind,
    resources: job.resources,
    ...(job.gpuModels ? { gpuModels: job.gpuModels } : {}),
    ...(job.nodeSelector ? { nodeSelector: job.nodeSelector } : {}),
    priority: job.priority ?? 0,
    ...(queue !== undefined ? { queue } : {}),
    ...(job.preemptible !== undefined ? { preemptible: job.preemptible } : {}),
    ...(job.minRuntimeMs !== undefined ? { minRuntimeMs: job.minRuntimeMs } : {}),
    ...(job.timeoutMs !== undefined ? { timeoutMs: job.timeoutMs } : {}),
    ...(job.gang ? { gang: job.gang } : {}),
    createdAt,
    attempt: 0,
    retryAt: undefined,
    reason: undefined,
    reasonAt: undefined,
  };
}

export interface TraceNode {
  id: string;
  cpu: number;
  memory: number;
  gpus: number;
  model: string;
}

/** A row of a trace CSV, by column name. */
export type TraceRow = Record<string, string>;
type Row = TraceRow;

/** A trace CSV as read: its columns in order, its rows, and each row's line number (for errors). */
export interface TraceTable {
  header: string[];
  rows: TraceRow[];
  lines: number[];
}

/** Rows of a CSV with a header line; every named column must be present. No quoting: trace fields hold no commas. */
function readCsv(text: string, file: string, required: readonly string[]): TraceTable {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw invalidInput(file, `missing column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (header: ${header.join(',') || 'empty'})`);
  }
  const rows: Row[] = [];
  const lineNumbers: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const cells = lines[i].split(',');
    if (cells.length !== header.length) {
      throw invalidInput(file, `line ${i + 1}: ${cells.length} fields, the header has ${header.length}`);
    }
    const row: Row = {};
    header.forEach((h, j) => (row[h] = cells[j].trim()));
    rows.push(row);
    lineNumbers.push(i + 1);
  }
  if (rows.length === 0) throw invalidInput(file, 'holds no rows');
  return { header, rows, lines: lineNumbers };
}

/** The columns a task list must have. */
export const TRACE_JOB_COLUMNS: readonly string[] = ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli'];

/** A task list's rows with every column kept (what tools that rewrite a trace need); each row as parseTraceJobs reads it is traceJobOf. */
export function parseTraceTable(text: string, file = 'jobs'): TraceTable {
  return readCsv(text, file, TRACE_JOB_COLUMNS);
}

/** A trace CSV again: the header, then each row's fields in the header's order (a missing field is empty). */
export function formatTraceTable(header: readonly string[], rows: readonly TraceRow[]): string {
  return [header.join(','), ...rows.map((row) => header.map((h) => row[h] ?? '').join(','))].join('\n') + '\n';
}

function count(row: Row, column: string, file: string, line: number, optional = false): number {
  const text = row[column];
  if (optional && text === '') return 0;
  if (!/^\d+$/.test(text)) throw invalidInput(file, `line ${line}: ${column} "${text}" is not a whole number`);
  return Number(text);
}

/** openb node list: `sn,cpu_milli,memory_mib,gpu,model`. */
export function parseTraceNodes(text: string, file = 'nodes'): TraceNode[] {
  const { rows, lines } = readCsv(text, file, ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model']);
  return rows.map((row, i) => {
    const node = {
      id: row.sn,
      cpu: count(row, 'cpu_milli', file, lines[i]),
      memory: count(row, 'memory_mib', file, lines[i]) * MiB,
      gpus: count(row, 'gpu', file, lines[i]),
      model: row.model,
    };
    if (node.cpu === 0 || node.memory === 0) throw invalidInput(file, `line ${lines[i]}: a node needs CPU and memory`);
    return node;
  });
}

/** openb task list: `name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,creation_time,deletion_time,...]`. */
export function parseTraceJobs(text: string, file = 'jobs', options: { queueColumn?: string } = {}): TraceJob[] {
  const required = [...TRACE_JOB_COLUMNS];
  if (options.queueColumn) required.push(options.queueColumn);
  const { rows, lines } = readCsv(text, file, required);
  return rows.map((row, i) => traceJobOf(row, file, lines[i], options));
}

/** One row of a task list as a task; an invalid field is an error naming the file and line. */
export function traceJobOf(row: TraceRow, file: string, line: number, options: { queueColumn?: string } = {}): TraceJob {
  const devices = count(row, 'num_gpu', file, line);
  const share = count(row, 'gpu_milli', file, line, devices === 0);
  if (devices > 0 && (share === 0 || share > MILLI_PER_GPU)) {
    throw invalidInput(file, `line ${line}: gpu_milli ${share} must be 1-1000 for a GPU task`);
  }
  if (devices > 1 && share !== MILLI_PER_GPU) {
    throw invalidInput(file, `line ${line}: a ${devices}-GPU task takes whole GPUs (gpu_milli 1000), not ${share}`);
  }
  const spec = row.gpu_spec ?? '';
  const models = spec === '' ? undefined : spec.split('|').map((m) => m.trim());
  const job: TraceJob = {
    id: row.name,
    name: row.name,
    kind: 'docker',
    resources: {
      cpu: count(row, 'cpu_milli', file, line),
      memory: count(row, 'memory_mib', file, line) * MiB,
      gpuMilli: devices === 1 ? share : devices * MILLI_PER_GPU,
    },
    ...(models && devices > 0 ? { gpuModels: models } : {}),
  };
  if (options.queueColumn && row[options.queueColumn] !== '') job.queue = row[options.queueColumn];
  if (row.creation_time !== undefined && row.creation_time !== '') job.createdAt = count(row, 'creation_time', file, line);
  if (row.deletion_time !== undefined && row.deletion_time !== '') job.deletedAt = count(row, 'deletion_time', file, line);
  return job;
}

/** Fresh, empty scheduler views of a trace's nodes. */
export function nodeViewsOf(nodes: readonly TraceNode[]): NodeView[] {
  return nodes.map((n) => {
    const gpus: GpuDevice[] = Array.from({ length: n.gpus }, (_, index) => ({ index, uuid: '', model: n.model, memory: 0 }));
    return newNodeView({
      id: n.id,
      capacity: { cpu: n.cpu, memory: n.memory, gpuMilli: n.gpus * MILLI_PER_GPU },
      gpus,
      labels: {},
      executors: ['docker'],
    });
  });
}
