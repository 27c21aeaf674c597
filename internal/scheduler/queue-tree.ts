import type { ResourceLimit } from '../../pkg/model/queue.js';
import { ZERO_RESOURCES, type Resources } from '../../pkg/model/resources.js';

/** The queue hierarchy (docs/queues.md) as fair shares and the queue order both walk it. */

/** Relative tolerance of the share arithmetic (the water-filling and the ranks). */
export const EPS = 1e-9;

export const zero = (): Resources => ({ ...ZERO_RESOURCES });

export interface TreeNode<T> {
  /** The queue's name; for the stand-in of a parent's own jobs, the parent's name. */
  name: string;
  queue: T;
  /** Children, plus a stand-in for the node's own jobs when it has children. */
  children: TreeNode<T>[];
  /** True for the stand-in of a parent's own jobs. */
  own: boolean;
}

export interface QueueParams {
  name: string;
  parent?: string;
  quota: Resources;
  limit?: ResourceLimit;
  weight: number;
}

/**
 * Roots are queues without a parent, or whose parent is unknown or part of
 * a cycle (bad data must not hide a queue). A parent gets a stand-in child
 * for its own jobs: quota zero, no limit, weight 1.
 */
export function buildTree<T extends QueueParams>(queues: readonly T[], ownStandIn: (q: T) => T): TreeNode<T>[] {
  const byName = new Map(queues.map((q) => [q.name, q]));
  const kids = new Map<string, T[]>();
  const isRoot = (q: T): boolean => {
    const seen = new Set<string>([q.name]);
    for (let p = q.parent; p !== undefined; p = byName.get(p)?.parent) {
      if (!byName.has(p)) return true;
      if (seen.has(p)) return true;
      seen.add(p);
    }
    return q.parent === undefined;
  };
  const roots: T[] = [];
  for (const q of queues) {
    if (isRoot(q)) roots.push(q);
    else kids.set(q.parent as string, [...(kids.get(q.parent as string) ?? []), q]);
  }
  const node = (q: T): TreeNode<T> => {
    const children = (kids.get(q.name) ?? []).map(node);
    if (children.length > 0) children.push({ name: q.name, queue: ownStandIn(q), children: [], own: true });
    return { name: q.name, queue: q, children, own: false };
  };
  return roots.map(node);
}
