import { nodeStateKey } from './node-view.js';
import type { JobRequest, NodeView } from './types.js';

/** What a policy computes for one node state, and its choices there by job shape. */
interface StateEntry<S, C> {
  value: S;
  choices: Map<number, C>;
}

export interface ChoiceCacheOptions<S, C> {
  /** Equal for jobs the policy treats alike. */
  shapeKey(job: JobRequest): string;
  /** What the policy computes once per node state (e.g. its fragmentation). */
  state(node: NodeView): S;
  /** The policy's choice for a job on a node in that state. */
  choose(job: JobRequest, node: NodeView, state: S): C;
}

/** Bounds on what a long-running master keeps: past them everything is dropped and computed again. */
const MAX_STATES = 65_536;
const MAX_SHAPES = 65_536;

/**
 * A policy's choices by node state (nodeStateKey) and job shape, so each is
 * computed once for all alike nodes: a cluster has many (the same machine,
 * empty or filled the same way), a scan asks for every node it visits, and
 * a pass places many jobs of few shapes on nodes that mostly did not change.
 * A node finds its state again without rebuilding the key until it changes
 * (its version); a job's shape is looked up once per job, as a number.
 * `state` and `choose` must read nothing of a node but what its state key
 * holds; clear() when anything else they read changes (e.g. the job mix).
 */
export class ChoiceCache<S, C> {
  private readonly byNode = new WeakMap<NodeView, { version: number; generation: number; entry: StateEntry<S, C> }>();
  private readonly byState = new Map<string, StateEntry<S, C>>();
  private readonly shapeIds = new Map<string, number>();
  private generation = 0;
  private lastJob: JobRequest | undefined;
  private lastShape = 0;

  constructor(private readonly options: ChoiceCacheOptions<S, C>) {}

  get(job: JobRequest, node: NodeView): C {
    if (job !== this.lastJob) {
      this.lastShape = this.shapeId(this.options.shapeKey(job));
      this.lastJob = job;
    }
    const entry = this.entryOf(node);
    let choice = entry.choices.get(this.lastShape);
    if (choice === undefined) {
      choice = this.options.choose(job, node, entry.value);
      entry.choices.set(this.lastShape, choice);
    }
    return choice;
  }

  /** What `state` computed for the node's state. */
  state(node: NodeView): S {
    return this.entryOf(node).value;
  }

  /** Drops everything computed: what it was computed from, besides nodes and jobs, changed. */
  clear(): void {
    this.byState.clear();
    this.generation++;
  }

  private shapeId(key: string): number {
    let id = this.shapeIds.get(key);
    if (id === undefined) {
      if (this.shapeIds.size >= MAX_SHAPES) {
        this.shapeIds.clear();
        this.clear();
      }
      id = this.shapeIds.size;
      this.shapeIds.set(key, id);
    }
    return id;
  }

  private entryOf(node: NodeView): StateEntry<S, C> {
    const known = this.byNode.get(node);
    if (known !== undefined && known.version === node.version && known.generation === this.generation) return known.entry;
    const key = nodeStateKey(node);
    let entry = this.byState.get(key);
    if (entry === undefined) {
      if (this.byState.size >= MAX_STATES) this.clear();
      entry = { value: this.options.state(node), choices: new Map() };
      this.byState.set(key, entry);
    }
    if (known === undefined) {
      this.byNode.set(node, { version: node.version, generation: this.generation, entry });
    } else {
      known.version = node.version;
      known.generation = this.generation;
      known.entry = entry;
    }
    return entry;
  }
}
