/**
 * A throwaway certificate authority for TLS tests, made with the openssl CLI (Debian `openssl`) in a
 * temporary directory: a CA and server certificates for 127.0.0.1/localhost signed by it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findBinary } from '../../common/supervisor/child.js';

export interface TestCa {
  dir: string;
  /** The CA certificate (PEM file and text): what clients trust. */
  caFile: string;
  caPem: string;
  /** Issues a server certificate for 127.0.0.1 and localhost with `commonName`; returns its files. */
  issue(name: string, commonName?: string): { certFile: string; keyFile: string };
  /** Issues a new certificate and moves it over `files` the way a Secret volume update replaces them. */
  rotate(files: { certFile: string; keyFile: string }, commonName: string): void;
  remove(): void;
}

export function createTestCa(): TestCa {
  const openssl = findBinary('openssl', 'openssl');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'huddle-ca-'));
  const run = (args: string[]) => execFileSync(openssl, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const caKey = path.join(dir, 'ca.key');
  const caFile = path.join(dir, 'ca.crt');
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=huddle test CA']);
  let serial = 0;
  const issue = (name: string, commonName = name) => {
    const keyFile = path.join(dir, `${name}.key`);
    const csr = path.join(dir, `${name}.csr`);
    const certFile = path.join(dir, `${name}.crt`);
    const ext = path.join(dir, `${name}.ext`);
    run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${commonName}`]);
    writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
    run(['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(++serial + Date.now()), '-days', '1', '-extfile', ext, '-out', certFile]);
    return { certFile, keyFile };
  };
  return {
    dir,
    caFile,
    caPem: readFileSync(caFile, 'utf8'),
    issue,
    rotate(files, commonName) {
      const next = issue(`rotated-${++serial}`, commonName);
      renameSync(next.keyFile, files.keyFile);
      renameSync(next.certFile, files.certFile);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
