import { describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../common/config/load.js';
import { tokenVerifier } from '../../common/config/token-verifier.js';
import { authenticate } from './auth.js';

const gateway = loadConfigFile('config/local.yaml').cluster.spec.gateway;
/** What the gateway reads from the config bucket: verifiers only. */
const fromBucket = { ...gateway, tokens: gateway.tokens.map((t) => ({ ...t, token: tokenVerifier(t.token) })) };

describe('agent tokens checked against their verifiers', () => {
  it('accepts a token whose SHA-256 verifier the configuration holds', async () => {
    expect(fromBucket.tokens.every((t) => /^sha256:[0-9a-f]{64}$/.test(t.token))).toBe(true);
    expect(await authenticate('agent-7001-secret', fromBucket, {})).toEqual({ ok: true, principal: { name: 'agent-7001', dns: ['7001'] } });
    expect(await authenticate('agent-7001-secreT', fromBucket, {})).toEqual({ ok: false, reason: 'unknown token' });
  });

  it('refuses the verifier itself presented as a token: reading the bucket lets nobody in', async () => {
    const verifier = fromBucket.tokens.find((t) => t.name === 'supervisor')!.token;
    expect(await authenticate(verifier, fromBucket, {})).toEqual({ ok: false, reason: 'unknown token' });
  });

  it('a verifier is stable: publishing a verifier again leaves it as it is', () => {
    const once = tokenVerifier('supervisor-secret');
    expect(tokenVerifier(once)).toBe(once);
  });
});
