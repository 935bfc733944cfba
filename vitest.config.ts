import { defineConfig } from 'vitest/config';

// Tests start real nats-server, rtpengine and SIP peers; on 2 shared cores they need room.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    teardownTimeout: 10_000,
  },
});
