import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { invalidInput } from '../../pkg/model/errors.js';
import { parseDuration } from '../../pkg/model/parse.js';
import type { ApiCache, Topic } from './cache.js';

/** A blocking read waits this long when `wait` is not given, and never longer than the maximum. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 5 * 60_000;

/** Query parameters of every blocking read (documented by openapi.ts, validated here). */
export const BlockingQuery = {
  index: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  wait: Type.Optional(Type.String()),
};

/**
 * Like Nomad's blocking queries: with `?index=N`, the answer waits until the
 * data it is made of is newer than N (or `wait` passes), then carries the
 * new index in X-Titan-Index for the next call.
 */
export async function blockUntilNewer(
  cache: ApiCache,
  topics: readonly Topic[],
  query: { index?: string; wait?: string },
  reply: FastifyReply,
): Promise<void> {
  if (query.index !== undefined) {
    const waitMs = query.wait === undefined ? DEFAULT_WAIT_MS : parseDuration(query.wait, 'wait');
    if (waitMs > MAX_WAIT_MS) throw invalidInput('wait', `at most ${MAX_WAIT_MS / 60_000}m`);
    const gone = new AbortController();
    const onClose = (): void => gone.abort();
    reply.raw.once('close', onClose);
    try {
      await cache.waitFor(topics, BigInt(query.index), waitMs, gone.signal);
    } finally {
      reply.raw.removeListener('close', onClose);
    }
  }
  void reply.header('X-Titan-Index', String(cache.index(topics)));
}
