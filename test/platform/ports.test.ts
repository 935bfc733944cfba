import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/process/logger.js';
import { freePort, freePortRange, onFreshPorts } from '../../common/supervisor/ports.js';
import { startRtpengine, type EmbeddedRtpengine } from '../../common/supervisor/rtpengine.js';

const log = createLogger('ports-test', 'silent');

describe('freePort', () => {
  it('never hands out a port twice while it may still be about to be bound (any process of the machine)', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    expect(ports.every((p) => p < 32768)).toBe(true);
  });
});

describe('onFreshPorts', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('starts rtpengine again on fresh ports when another process took its CLI port first', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'huddle-ports-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    // The race, made certain: the first CLI port handed out is already listened on.
    const squatter = net.createServer();
    const taken = await freePort();
    await new Promise<void>((r) => squatter.listen(taken, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => squatter.close(() => r())));
    const range = await freePortRange(20);
    const cliPorts: number[] = [];
    const warnings: unknown[] = [];
    const rtp: EmbeddedRtpengine = await onFreshPorts('rtpengine', { warn: (o: unknown) => warnings.push(o) }, async () => {
      const cliPort = cliPorts.length === 0 ? taken : await freePort();
      cliPorts.push(cliPort);
      return startRtpengine({ ngPort: await freePort(), cliPort, portMin: range.min, portMax: range.max, dataDir, log });
    });
    cleanups.push(() => rtp.process.stop());
    expect(cliPorts).toHaveLength(2);
    expect(cliPorts[1]).not.toBe(taken);
    expect(warnings).toEqual([expect.objectContaining({ what: 'rtpengine', attempt: 1 })]);
  });

  it('gives up after the attempts it was given, and never retries other failures', async () => {
    let calls = 0;
    await expect(
      onFreshPorts('child', log, async () => {
        calls++;
        throw new Error('x exited before it was ready: bind: Address already in use');
      }, 3),
    ).rejects.toThrow(/Address already in use/);
    expect(calls).toBe(3);
    calls = 0;
    await expect(
      onFreshPorts('child', log, async () => {
        calls++;
        throw new Error('unknown option --frobnicate');
      }),
    ).rejects.toThrow(/frobnicate/);
    expect(calls).toBe(1);
  });
});
