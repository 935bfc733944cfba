import { defineConfig } from 'vitest/config';

// Tests start real nats-server, rtpengine and SIP peers; on 2 shared cores they need room.
export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // One test file at a time: the e2e files start whole sites (and Chromium); two at once on 2 cores
    // starve each other (rolling-upgrade, alone 300/300, lost 23 of 300 calls to 503s in a full run).
    maxWorkers: 1,
    teardownTimeout: 10_000,
  },
});
