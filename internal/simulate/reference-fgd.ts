import { MILLI_PER_GPU } from '../../pkg/model/index.js';
import { ChoiceCache } from '../scheduler/choice-cache.js';
import type { JobRequest, NodeView, Policy } from '../scheduler/index.js';
import { taskTypeOf, typicalTasks, type TaskType, type TypicalTask } from './typical-tasks.js';

export const FGD_PAPER_DESCRIPTION =
  "reference: the FGD artefact's FGD score (fragmentation against the trace's task types, scores 0-100 in whole points; ties to the first node by name)";

/** What the artefact's FGD measure looks at on a node. */
interface NodeState {
  cpuLeft: number;
  gpuLeft: readonly number[];
  model: string;
}

/** The artefact's fragment classes, in its order; Q3 (the task fits) is the one not counted. */
const Q1_LACK_BOTH = 0;
const Q2_LACK_GPU = 1;
const Q3_SATISFIED = 2;
const Q4_LACK_CPU = 3;
const XL_SATISFIED = 4;
const XR_LACK_CPU = 5;
const NO_ACCESS = 6;

export function modelAccessible(nodeModel: string, models: string): boolean {
  if (models === '') return true;
  if (nodeModel === '') return false;
  const wanted = models.split('|').filter((m) => m !== '');
  return wanted.length === 0 || wanted.includes(nodeModel);
}

function classOf(node: NodeState, task: TaskType): number {
  const cpuFits = node.cpuLeft >= task.cpu;
  if (task.milli === 0) return cpuFits ? XL_SATISFIED : XR_LACK_CPU;
  if (!modelAccessible(node.model, task.models)) return NO_ACCESS;
  let needed = task.devices;
  let gpuFits = false;
  for (const left of node.gpuLeft) {
    if (left >= task.milli && --needed <= 0) {
      gpuFits = true;
      break;
    }
  }
  if (gpuFits) return cpuFits ? Q3_SATISFIED : Q4_LACK_CPU;
  return cpuFits ? Q2_LACK_GPU : Q1_LACK_BOTH;
}

/**
 * The artefact's node fragmentation (milli-GPU): for each typical task, its
 * weight × the node's free GPU the task could not use (all of it, unless the
 * task fits; then the devices too small for it). Summed class by class in
 * the artefact's order, so equal states give bit-equal floats.
 */
export function paperFragmentation(node: NodeState, typical: readonly TypicalTask[]): number {
  const amounts = [0, 0, 0, 0, 0, 0, 0];
  let total = 0;
  for (const left of node.gpuLeft) total += left;
  for (const task of typical) {
    const cls = classOf(node, task);
    if (cls === Q3_SATISFIED) {
      let tooSmall = 0;
      for (const left of node.gpuLeft) if (left < task.milli) tooSmall += left;
      amounts[Q2_LACK_GPU] += task.weight * tooSmall;
      amounts[Q3_SATISFIED] += task.weight * (total - tooSmall);
    } else {
      amounts[cls] += task.weight * total;
    }
  }
  let out = 0;
  for (let i = 0; i < amounts.length; i++) if (i !== Q3_SATISFIED) out += amounts[i];
  return out;
}

/** The artefact's FGD score: a fall in fragmentation through a sigmoid, in whole points of 0-100. */
const pointsOf = (before: number, after: number): number => Math.trunc((1 / (1 + Math.exp(-((before - after) / 1000)))) * 100);

const stateOf = (node: NodeView): NodeState => ({
  cpuLeft: node.capacity.cpu - node.allocated.cpu,
  gpuLeft: node.gpuFree,
  model: node.gpus[0]?.model ?? '',
});

/** The node after the artefact's NodeResource.Sub: CPU, and devices filled from the least free one that fits. */
function afterPlacing(node: NodeState, task: TaskType): NodeState {
  const gpuLeft = [...node.gpuLeft];
  const ascending = gpuLeft.map((_, i) => i).sort((a, b) => gpuLeft[a] - gpuLeft[b] || a - b);
  let needed = task.devices;
  for (const i of ascending) {
    if (needed <= 0) break;
    if (task.milli <= gpuLeft[i]) {
      gpuLeft[i] -= task.milli;
      needed--;
    }
  }
  return { cpuLeft: node.cpuLeft - task.cpu, gpuLeft, model: node.model };
}

interface Choice {
  score: number;
  /** The device for a GPU share; undefined: the default choice (lowest-index free devices). */
  devices: number[] | undefined;
}

/** The score and, for a share, the device (the first of the best-scoring ones), as the artefact's FGD plugin chooses. */
function choose(node: NodeState, task: TaskType, typical: readonly TypicalTask[], before: number): Choice {
  if (task.devices === 1 && task.milli < MILLI_PER_GPU) {
    let best: Choice | undefined;
    node.gpuLeft.forEach((left, i) => {
      if (left < task.milli) return;
      const gpuLeft = [...node.gpuLeft];
      gpuLeft[i] -= task.milli;
      const score = pointsOf(before, paperFragmentation({ cpuLeft: node.cpuLeft - task.cpu, gpuLeft, model: node.model }, typical));
      if (!best || score > best.score) best = { score, devices: [i] };
    });
    return best ?? { score: 0, devices: undefined };
  }
  return { score: pointsOf(before, paperFragmentation(afterPlacing(node, task), typical)), devices: undefined };
}

/**
 * The FGD artefact's FGD policy, as a reference for Titan's fgd: typical
 * tasks from the whole trace, no learning, scores rounded down to whole
 * points (ties are many; the scan takes the first node by name, as the
 * artefact's scheduler does). Choices are cached per node state and task
 * type (ChoiceCache): alike nodes share them.
 */
export function fgdPaperPolicy(traceJobs: readonly JobRequest[]): Policy {
  const typical = typicalTasks(traceJobs);
  const cache = new ChoiceCache<number, Choice>({
    shapeKey: (job) => {
      const task = taskTypeOf(job);
      return `${task.cpu}|${task.milli}|${task.devices}`;
    },
    state: (node) => paperFragmentation(stateOf(node), typical),
    choose: (job, node, before) => choose(stateOf(node), taskTypeOf(job), typical, before),
  });
  const choiceOf = (job: JobRequest, node: NodeView): Choice => cache.get(job, node);
  return {
    name: 'fgd-paper',
    description: FGD_PAPER_DESCRIPTION,
    score: (job, node) => choiceOf(job, node).score,
    chooseGpuIndexes: (job, node) => choiceOf(job, node).devices,
    isMonotone: () => false,
    observe: () => {},
  };
}
