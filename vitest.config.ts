import { defineConfig } from 'vitest/config';

// Integration tests spawn etcd and docker containers: generous timeouts, and
// only 2 test files at once so a small CI box is not overloaded.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
