import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { invalidInput } from '../../pkg/model/errors.js';
import { parseDuration } from '../../pkg/model/parse.js';
import type { ApiCache, Topic } from './cache.js';

/** A blocking read waits this long when `wait` is not given, and never longer than the maximum. */
export const DEFAULT_WAIT_MS = 5 * 60_000;
export const MAX_WAIT_MS = 5 * 60_000;

/**
 * A blocking read woken by a change answers this much later: changes come
 * in bursts (a pass places hundreds of jobs, one transaction at a time), and
 * one answer after the first few serves a client as well as one per
 * transaction. (How often answers are made under constant change is
 * ApiCache.shared's SHARED_FRESH_MS.)
 */
export const COALESCE_MS = 100;

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
async function blockUntilNewer(
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
    const started = Date.now();
    const index = BigInt(query.index);
    try {
      if (cache.index(topics) <= index) {
        await cache.waitFor(topics, index, waitMs, gone.signal);
        const left = waitMs - (Date.now() - started);
        if (cache.index(topics) > index && left > 0 && !gone.signal.aborted) await sleep(Math.min(COALESCE_MS, left));
      }
    } finally {
      reply.raw.removeListener('close', onClose);
    }
  }
  void reply.header('X-Titan-Index', String(cache.index(topics)));
}

/**
 * A blocking read's answer, computed and serialized once per change for
 * every client asking the same thing (`key`: the query without index and
 * wait, and the caller's queue scope) and sent as the JSON text it is.
 */
export async function sharedAnswer(
  cache: ApiCache,
  topics: readonly Topic[],
  query: { index?: string; wait?: string },
  reply: FastifyReply,
  key: string,
  compute: () => unknown,
): Promise<string> {
  await blockUntilNewer(cache, topics, query, reply);
  const after = query.index === undefined ? undefined : BigInt(query.index);
  const answer = await cache.shared(key, topics, async () => JSON.stringify(await compute()), after);
  void reply.header('X-Titan-Index', String(answer.index)).type('application/json; charset=utf-8');
  return answer.body;
}

/** The part of a shared answer's key that says what the caller may see. */
export function scopeKey(token: { queues?: string[] } | undefined): string {
  return token?.queues ? [...token.queues].sort().join(',') : '*';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
