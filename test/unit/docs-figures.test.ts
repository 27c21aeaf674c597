import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COALESCE_MS } from '../../internal/api/blocking.js';
import { SHARED_FRESH_MS } from '../../internal/api/cache.js';
import { resolveMasterConfig } from '../../internal/master/config.js';
import { MAX_REASON_UPDATES } from '../../internal/scheduler/index.js';
import { DEFAULT_LOG_CHUNK_BYTES, DEFAULT_LOG_FLUSH_MS, DEFAULT_PARALLEL_STARTS } from '../../internal/worker/config.js';
import { MAX_PLACEMENTS_PER_TXN } from '../../pkg/store/txn.js';

const root = path.resolve(import.meta.dirname, '../..');
/** A doc's text with its line breaks and indentation collapsed to single spaces. */
const prose = (file: string): string => fs.readFileSync(path.join(root, file), 'utf8').replace(/\s+/g, ' ');

describe('figures the docs state', () => {
  it('docs/architecture.md gives the code defaults of the data path', () => {
    const text = prose('docs/architecture.md');
    const master = resolveMasterConfig({}, {});
    expect(text).toContain(`(${MAX_PLACEMENTS_PER_TXN} per transaction, ${master.commitConcurrency} in flight)`);
    expect(text).toContain(`in chunks (${DEFAULT_LOG_FLUSH_MS} ms or ${DEFAULT_LOG_CHUNK_BYTES / 1024} KiB)`);
    expect(text).toContain(`\`--parallel-starts\` (${DEFAULT_PARALLEL_STARTS})`);
    expect(text).toContain(`at most ${MAX_REASON_UPDATES} per pass`);
  });

  it("docs/benchmarks.md gives the API's answer-sharing intervals", () => {
    const text = prose('docs/benchmarks.md');
    expect(text).toContain(`\`SHARED_FRESH_MS\` (${SHARED_FRESH_MS / 1000} s)`);
    expect(text).toContain(`\`COALESCE_MS\` (${COALESCE_MS} ms)`);
  });
});
