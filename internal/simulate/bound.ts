import { gpuDeviceCount, gpuShareMilli, MILLI_PER_GPU } from '../../pkg/model/index.js';
import { fitsEmptyNode, type JobRequest } from '../scheduler/index.js';
import { dffRows } from './bound-dff.js';
import { nodeViewsOf, type TraceNode } from './trace.js';

// An upper bound on the GPU any placement of some of a set of tasks can
// allocate on a cluster. Whatever order tasks arrive in, a policy that
// never moves a task ends with a feasible packing of a subset of the tasks
// that arrived; so the best offline packing, and any relaxation of it,
// bounds every such policy. The relaxation here packs task types into node
// groups (nodes alike in CPU, memory, GPU count and model) against the
// group's summed capacities, with valid rows that keep per-node and per-GPU
// limits from melting away in the sums.

/**
 * A linear program: maximize Σ cost·x over 0 ≤ x ≤ columnUpper, each row
 * Σ coefficient·x ≤ rowUpper. The bounds are apart from the structure so
 * that prefixes of one arrival list (withCounts) share it, and a solver can
 * re-solve from the last basis instead of starting over.
 */
export interface PackingModel {
  columns: readonly { name: string; cost: number; integer: boolean }[];
  rows: readonly { name: string; terms: readonly [column: number, coefficient: number][] }[];
  columnUpper: number[];
  rowUpper: number[];
  /** Per column: its task type and how many of that type its group holds (its upper bound but for the type's count). */
  columnType: readonly { type: number; capacity: number }[];
  /** Per task type: the row that caps the type at its count (-1: the type has no column). */
  typeRow: readonly number[];
}

/** Tasks alike in what placement sees; `count` of them. */
export interface TaskType {
  job: JobRequest;
  count: number;
}

interface NodeGroup {
  node: TraceNode;
  count: number;
}

/** The key placement sees a task by (as PassPlacer's shape). */
export function taskTypeKey(job: JobRequest): string {
  const r = job.resources;
  const selector = job.nodeSelector ? JSON.stringify(job.nodeSelector) : '';
  return `${job.kind}|${r.cpu}|${r.memory}|${r.gpuMilli}|${job.gpuModels?.join('|') ?? ''}|${selector}`;
}

/** The tasks, counted by type, in order of first appearance. */
export function taskTypesOf(jobs: readonly JobRequest[]): TaskType[] {
  const types = new Map<string, TaskType>();
  for (const job of jobs) {
    const key = taskTypeKey(job);
    const type = types.get(key);
    if (type) type.count++;
    else types.set(key, { job, count: 1 });
  }
  return [...types.values()];
}

function nodeGroupsOf(nodes: readonly TraceNode[]): NodeGroup[] {
  const groups = new Map<string, NodeGroup>();
  for (const node of nodes) {
    const key = `${node.cpu}|${node.memory}|${node.gpus}|${node.model}`;
    const group = groups.get(key);
    if (group) group.count++;
    else groups.set(key, { node, count: 1 });
  }
  return [...groups.values()];
}

const MiB = 2 ** 20;

const isShared = (job: JobRequest): boolean => job.resources.gpuMilli > 0 && job.resources.gpuMilli < MILLI_PER_GPU;

/** How many tasks of a type one empty node of the group holds, by each of its limits alone. */
function perNodeLimit(job: JobRequest, node: TraceNode): number {
  const r = job.resources;
  let limit = Infinity;
  if (r.cpu > 0) limit = Math.min(limit, Math.floor(node.cpu / r.cpu));
  if (r.memory > 0) limit = Math.min(limit, Math.floor(node.memory / r.memory));
  if (isShared(job)) limit = Math.min(limit, node.gpus * Math.floor(MILLI_PER_GPU / r.gpuMilli));
  else limit = Math.min(limit, Math.floor(node.gpus / gpuDeviceCount(r.gpuMilli)));
  return limit;
}

/**
 * The relaxation as a linear program (`integer`: an integer one, tighter
 * but slower to solve) over task types (GPU tasks only: a
 * task without GPU adds nothing to the objective and only takes room, so
 * the best subset leaves it out) and node groups:
 * - x[t][g]: tasks of type t in group g, at most the type's count and what
 *   the group's nodes hold of it one type at a time; zero where one empty
 *   node could not take it (CPU, memory, GPU count, model, selector, as the
 *   scheduler checks them);
 * - s[g]: the group's GPUs that hold shares; whole-GPU tasks take whole
 *   GPUs, so Σ devices·x + s ≤ the group's GPUs;
 * - Σ share·x ≤ 1000·s, and the same through dual-feasible functions
 *   (dffRows): a share lives inside one GPU;
 * - per group, Σ cpu·x ≤ node CPU × nodes, and the same for memory, each
 *   also through dual-feasible functions: a task lives inside one node;
 * - per type, Σ_g x[t][g] ≤ its count.
 * Objective: Σ gpuMilli·x, the GPU the simulator counts as allocated.
 */
export function packingModel(nodes: readonly TraceNode[], types: readonly TaskType[], options: { integer?: boolean } = {}): PackingModel {
  const integer = options.integer ?? false;
  const groups = nodeGroupsOf(nodes);
  const views = nodeViewsOf(groups.map((g) => g.node));
  const columns: { name: string; cost: number; integer: boolean }[] = [];
  const columnUpper: number[] = [];
  const columnType: { type: number; capacity: number }[] = [];
  const rows: { name: string; terms: [number, number][] }[] = [];
  const rowUpper: number[] = [];
  const addRow = (name: string, upper: number, terms: [number, number][]): number => {
    rowUpper.push(upper);
    return rows.push({ name, terms }) - 1;
  };
  // Columns of each type and of each group; a type without GPU has none.
  const byType: number[][] = types.map(() => []);
  const byGroup: [column: number, type: number][][] = groups.map(() => []);
  types.forEach((type, t) => {
    if (type.job.resources.gpuMilli === 0) return;
    groups.forEach((group, g) => {
      if (!fitsEmptyNode(type.job, views[g])) return;
      const capacity = group.count * perNodeLimit(type.job, group.node);
      if (capacity <= 0) return;
      const column = columns.push({ name: `x${t}_${g}`, cost: type.job.resources.gpuMilli, integer }) - 1;
      columnUpper.push(Math.min(type.count, capacity));
      columnType.push({ type: t, capacity });
      byType[t].push(column);
      byGroup[g].push([column, t]);
    });
  });
  const typeRow = byType.map((cols, t) => (cols.length === 0 ? -1 : addRow(`n${t}`, types[t].count, cols.map((c) => [c, 1]))));
  groups.forEach((group, g) => {
    const members = byGroup[g];
    if (members.length === 0) return;
    const job = (t: number): JobRequest => types[t].job;
    // A task lives inside one node: CPU and memory, plain and through DFFs.
    // Memory in MiB keeps coefficients small for the solver: sizes rounded
    // down and capacity up, so every packing in bytes still fits.
    for (const [dimension, capacity, size] of [
      ['cpu', group.node.cpu, (t: number) => job(t).resources.cpu],
      ['mem', Math.ceil(group.node.memory / MiB), (t: number) => Math.floor(job(t).resources.memory / MiB)],
    ] as const) {
      addRow(`${dimension}${g}`, capacity * group.count, members.map(([c, t]) => [c, size(t)]));
      for (const dff of dffRows(members.map(([, t]) => size(t)), capacity)) {
        const terms = members.map(([c, t]): [number, number] => [c, dff.coefficient(size(t))]).filter(([, v]) => v !== 0);
        if (terms.length > 0) addRow(`${dimension}${g}_${dff.name}`, dff.scale * capacity * group.count, terms);
      }
    }
    // Whole GPUs, and the GPUs that hold shares.
    const whole = members.filter(([, t]) => !isShared(job(t)));
    const shared = members.filter(([, t]) => isShared(job(t)));
    const gpus = group.node.gpus * group.count;
    const deviceTerms = whole.map(([c, t]): [number, number] => [c, gpuDeviceCount(job(t).resources.gpuMilli)]);
    if (shared.length > 0) {
      const sharedGpus = columns.push({ name: `s${g}`, cost: 0, integer }) - 1;
      columnUpper.push(gpus);
      columnType.push({ type: -1, capacity: gpus });
      deviceTerms.push([sharedGpus, 1]);
      const share = (t: number): number => gpuShareMilli(job(t).resources.gpuMilli);
      addRow(`share${g}`, 0, [...shared.map(([c, t]): [number, number] => [c, share(t)]), [sharedGpus, -MILLI_PER_GPU]]);
      for (const dff of dffRows(shared.map(([, t]) => share(t)), MILLI_PER_GPU)) {
        const terms = shared.map(([c, t]): [number, number] => [c, dff.coefficient(share(t))]).filter(([, v]) => v !== 0);
        if (terms.length > 0) addRow(`share${g}_${dff.name}`, 0, [...terms, [sharedGpus, -dff.scale * MILLI_PER_GPU]]);
      }
    }
    addRow(`gpu${g}`, gpus, deviceTerms);
  });
  return { columns, rows, columnUpper, rowUpper, columnType, typeRow };
}

/** The same model for other counts of its task types (a prefix of the arrivals): only bounds change. */
export function withCounts(model: PackingModel, counts: readonly number[]): PackingModel {
  const columnUpper = model.columnUpper.map((upper, c) => {
    const { type, capacity } = model.columnType[c];
    return type < 0 ? upper : Math.min(counts[type] ?? 0, capacity);
  });
  const rowUpper = [...model.rowUpper];
  model.typeRow.forEach((row, t) => {
    if (row >= 0) rowUpper[row] = counts[t] ?? 0;
  });
  return { ...model, columnUpper, rowUpper };
}
