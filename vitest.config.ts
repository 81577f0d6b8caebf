import { defineConfig } from 'vitest/config';

/**
 * Test files that pause Redis, kill workers or processes, or wait out
 * deadlines and grace periods: they assert what happens within a deadline, so
 * they run one at a time, after the rest, on an otherwise quiet machine.
 * Everything else runs two files at a time.
 */
const SERIAL = [
  'test/e2e/l2-faults.test.ts',
  'test/e2e/stampede-faults.test.ts',
  'test/e2e/shard-timeout.test.ts',
  'test/e2e/worker-crash.test.ts',
  'test/e2e/memory.test.ts',
  'test/e2e/cluster.test.ts',
  'test/e2e/launcher.test.ts',
  'test/e2e/postgres.test.ts',
  'test/e2e/logs.test.ts',
];

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/build.ts'],
    setupFiles: ['test/helpers/leftovers.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: { name: 'parallel', include: ['test/**/*.test.ts'], exclude: SERIAL, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: { name: 'serial', include: SERIAL, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
