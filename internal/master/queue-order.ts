import type { Job } from '../../pkg/model/index.js';

/** Highest priority first, then first submitted (ids sort by creation time). */
export function compareQueueOrder(a: Pick<Job, 'priority' | 'createdAt' | 'id'>, b: Pick<Job, 'priority' | 'createdAt' | 'id'>): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}
