import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { loadConfigFile, parseConfig, resolveMusic } from './load.js';
import { ConfigError } from './validate.js';

const localYaml = readFileSync(path.resolve('config/local.yaml'), 'utf8');

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', '/base');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('configuration', () => {
  it('loads config/local.yaml with defaults filled', () => {
    const config = loadConfigFile('config/local.yaml');
    expect(config.cluster.spec.location).toBe('SiteA');
    expect(config.dns.map((d) => d.spec.number)).toEqual(['7001', '7002', '7003', '7004', '7005', '9000', '9100']);
    expect(config.cluster.spec.options['sip-enable-call-info']).toBe(true);
    expect(config.cluster.spec.sip.timers).toEqual({ t1Ms: 500, t2Ms: 4000, t4Ms: 5000 });
    expect(config.dns.find((d) => d.spec.number === '7001')?.spec.options['sip-enable-moh']).toBe(true);
    const interTrunk = config.dns.find((d) => d.spec.options['sip-server-inter-trunk']);
    expect(interTrunk?.spec.options['sip-enable-moh']).toBe(false);
    expect(config.musicRoot).toBe(path.resolve('config'));
  });

  it('resolves music option values to WAV files under the music root', () => {
    expect(resolveMusic('/etc/huddle', 'music/on_hold')).toBe('/etc/huddle/music/on_hold.wav');
    expect(resolveMusic('/etc/huddle', 'music/jingle.wav')).toBe('/etc/huddle/music/jingle.wav');
    expect(resolveMusic('/etc/huddle', '/srv/tunes/a')).toBe('/srv/tunes/a.wav');
    const config = loadConfigFile('config/local.yaml');
    expect(readFileSync(resolveMusic(config.musicRoot, config.cluster.spec.options['music-listen-disconnect'])).subarray(0, 4).toString()).toBe('RIFF');
  });

  it('names the field of an unknown DN type', () => {
    const problems = problemsOf(localYaml.replace('number: "7002", type: Extension', 'number: "7002", type: Phone'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/SipDN site-a-7002.*spec\.type: must be one of "Extension", "ACDPosition"/);
  });

  it('names the field of a rate-limit exemption that is no CIDR', () => {
    const problems = problemsOf(localYaml.replace('  sip:\n', '  sip:\n    rateLimit: { exemptSources: [10.0.0.0/8, 300.1.2.3/8, "2001:db8::/129"] }\n'));
    expect(problems).toEqual([
      'SipCluster site-a: spec.sip.rateLimit.exemptSources.1: "300.1.2.3/8" is not an IPv4 or IPv6 CIDR',
      'SipCluster site-a: spec.sip.rateLimit.exemptSources.2: "2001:db8::/129" is not an IPv4 or IPv6 CIDR',
    ]);
  });

  it('names the field of an empty music-listen-disconnect', () => {
    const problems = problemsOf(localYaml.replace('music-listen-disconnect: music/on_hold', 'music-listen-disconnect: ""'));
    expect(problems).toEqual(['document 1 (SipCluster site-a): spec.options.music-listen-disconnect: must not be empty']);
  });

  it('rejects unknown fields, a Trunk without contact, inter-trunk on an Extension, duplicates and foreign clusters', () => {
    const base = 'apiVersion: sip.huddle.dev/v1alpha1\nkind: SipCluster\nmetadata: {name: s}\nspec: {location: L, sip: {lisen: []}}\n';
    expect(problemsOf(base)).toEqual(['document 1 (SipCluster s): spec.sip.lisen: is not a known field']);
    const cluster = 'apiVersion: sip.huddle.dev/v1alpha1\nkind: SipCluster\nmetadata: {name: s}\nspec: {location: L}\n';
    const dn = (name: string, spec: string) => `---\napiVersion: sip.huddle.dev/v1alpha1\nkind: SipDN\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
    expect(problemsOf(cluster + dn('t', '{cluster: s, number: "9000", type: Trunk}'))).toEqual([
      'document 2 (SipDN t): spec.options.contact: a Trunk needs options.contact (its peer address)',
    ]);
    expect(problemsOf(cluster + dn('e', '{cluster: s, number: "7001", type: Extension, options: {sip-server-inter-trunk: true}}'))).toEqual([
      'document 2 (SipDN e): spec.options.sip-server-inter-trunk: sip-server-inter-trunk is only valid on a Trunk',
    ]);
    expect(problemsOf(cluster + dn('a', '{cluster: s, number: "7001", type: Extension}') + dn('b', '{cluster: s, number: "7001", type: Extension}'))).toEqual([
      'SipDN b: spec.number: 7001 is configured twice',
    ]);
    expect(problemsOf(cluster + dn('a', '{cluster: other, number: "7001", type: Extension}'))).toEqual([
      'SipDN a: spec.cluster: "other" is not the SipCluster "s"',
    ]);
    const tokens = 'gateway: {tokens: [{name: a, token: agent-token, dns: ["*"]}]}';
    expect(problemsOf(`apiVersion: sip.huddle.dev/v1alpha1\nkind: SipCluster\nmetadata: {name: s}\nspec: {location: L, security: {requireSecretRefs: true}, ${tokens}}\n`)).toEqual([
      'document 1 (SipCluster s): spec.gateway.tokens: security.requireSecretRefs: give agent tokens in gateway.tokensSecret, not inline in gateway.tokens',
    ]);
    expect(problemsOf(`apiVersion: sip.huddle.dev/v1alpha1\nkind: SipCluster\nmetadata: {name: s}\nspec: {location: L, ${tokens}}\n`)).toEqual([]);
    expect(problemsOf('kind: Pod\n')).toEqual(['document 1: kind: must be "SipCluster" or "SipDN" (got "Pod")']);
    expect(problemsOf('')).toEqual(['no SipCluster document']);
  });
});
