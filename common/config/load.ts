/**
 * Loads a configuration file: a multi-document YAML holding one SipCluster and its SipDNs,
 * the same documents an operator applies to Kubernetes.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SipCluster, SipDN, TServerOptions } from './schema.js';
import { ConfigError, validateDocument } from './validate.js';
import { parseCidr } from './cidr.js';

export interface PlatformConfig {
  /** Absolute path of the file it came from, or a label such as "nats-kv". */
  source: string;
  cluster: SipCluster;
  dns: SipDN[];
  /** Directory music option values are resolved against. */
  musicRoot: string;
}

export function loadConfigFile(file: string): PlatformConfig {
  const source = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(source, 'utf8');
  } catch (err) {
    throw new ConfigError([`cannot read the file: ${(err as Error).message}`], source);
  }
  return parseConfig(text, source, path.dirname(source));
}

export function parseConfig(text: string, source: string, baseDir: string): PlatformConfig {
  const problems: string[] = [];
  const docs = parseAllDocuments(text);
  let cluster: SipCluster | undefined;
  const dns: SipDN[] = [];
  docs.forEach((doc, index) => {
    const where = `document ${index + 1}`;
    if (doc.errors.length > 0) {
      for (const e of doc.errors) problems.push(`${where}: YAML: ${e.message}`);
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || Array.isArray(value)) {
      problems.push(`${where}: must be a SipCluster or SipDN object`);
      return;
    }
    const kind = (value as { kind?: unknown }).kind;
    if (kind !== 'SipCluster' && kind !== 'SipDN') {
      problems.push(`${where}: kind: must be "SipCluster" or "SipDN" (got ${JSON.stringify(kind)})`);
      return;
    }
    const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
    const label = `${where} (${kind} ${typeof name === 'string' ? name : '?'})`;
    const docProblems = validateDocument(kind, value);
    if (docProblems.length > 0) {
      for (const p of docProblems) problems.push(`${label}: ${p}`);
      return;
    }
    if (kind === 'SipCluster') {
      if (cluster) problems.push(`${label}: only one SipCluster per configuration file`);
      else cluster = value as SipCluster;
    } else dns.push(value as SipDN);
  });
  if (!cluster && problems.length === 0) problems.push('no SipCluster document');
  if (cluster) {
    const seen = new Set<string>();
    for (const dn of dns) {
      if (dn.spec.cluster !== cluster.metadata.name)
        problems.push(`SipDN ${dn.metadata.name}: spec.cluster: "${dn.spec.cluster}" is not the SipCluster "${cluster.metadata.name}"`);
      if (seen.has(dn.spec.number)) problems.push(`SipDN ${dn.metadata.name}: spec.number: ${dn.spec.number} is configured twice`);
      seen.add(dn.spec.number);
    }
    const { portMin, portMax } = cluster.spec.media;
    if (portMin > portMax) problems.push(`SipCluster ${cluster.metadata.name}: spec.media.portMin: must not exceed spec.media.portMax`);
    cluster.spec.sip.rateLimit.exemptSources.forEach((cidr, i) => {
      if (!parseCidr(cidr)) problems.push(`SipCluster ${cluster!.metadata.name}: spec.sip.rateLimit.exemptSources.${i}: "${cidr}" is not an IPv4 or IPv6 CIDR`);
    });
  }
  if (problems.length > 0 || !cluster) throw new ConfigError(problems, source);
  const musicRoot = path.resolve(baseDir, cluster.spec.musicRoot ?? '.');
  return { source, cluster, dns, musicRoot };
}

/**
 * Resolves a music option value (e.g. "music/on_hold") to a WAV file path under musicRoot.
 * The file is not opened here: a missing file is reported when music is played.
 */
export function resolveMusic(musicRoot: string, value: string): string {
  const file = path.isAbsolute(value) ? value : path.resolve(musicRoot, value);
  return path.extname(file) === '' ? `${file}.wav` : file;
}

export function musicFileFor(config: { musicRoot: string; options: TServerOptions }, option: 'music-listen-disconnect' | 'default-music'): string {
  return resolveMusic(config.musicRoot, config.options[option]);
}
