import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../common/config/load.js';
import { createLogger } from '../../common/process/logger.js';
import { authenticate } from './auth.js';
import { TokenFile } from './token-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-tokens-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const gateway = loadConfigFile('config/local.yaml').cluster.spec.gateway;
const log = createLogger('token-file-test', 'silent');

describe('agent tokens from a Secret file', () => {
  it('accepts the file tokens besides the configured ones, and follows a rotation of the file', async () => {
    const file = path.join(dir, 'tokens.yaml');
    writeFileSync(file, '- { name: night-shift, token: night-shift-secret, dns: ["7004"] }\n');
    const tokens = new TokenFile(file, log);
    expect(await authenticate('night-shift-secret', gateway, {}, tokens.tokens())).toEqual({ ok: true, principal: { name: 'night-shift', dns: ['7004'] } });
    expect((await authenticate('agent-7001-secret', gateway, {}, tokens.tokens())).ok).toBe(true);
    writeFileSync(file, '- { name: day-shift, token: day-shift-secret-longer, dns: ["7005"] }\n');
    expect(await authenticate('night-shift-secret', gateway, {}, tokens.tokens())).toEqual({ ok: false, reason: 'unknown token' });
    expect((await authenticate('day-shift-secret-longer', gateway, {}, tokens.tokens())).ok).toBe(true);
  });

  it('ignores an invalid or missing file rather than accepting anything from it', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(file, '- { name: x, token: short, dns: [] }\n');
    expect(new TokenFile(file, log).tokens()).toEqual([]);
    expect(new TokenFile(path.join(dir, 'absent.yaml'), log).tokens()).toEqual([]);
    expect((await authenticate('short', gateway, {}, new TokenFile(file, log).tokens())).ok).toBe(false);
  });
});
