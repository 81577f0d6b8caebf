import { afterAll } from 'vitest';
import { killLeftoverRedisServers } from './redis.js';

// vitest setupFiles: after each test file, whatever redis-server it started and did not stop (a test that failed
// before its cleanup) is killed, so that one failure does not leave processes running for the rest of the suite.
afterAll(() => {
  killLeftoverRedisServers();
});
