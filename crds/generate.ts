/** `npm run crds`: writes crds/*.yaml (and the Helm chart's copy) from common/config/schema.ts. */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRD_DIRS, crdFiles, crdYaml } from './crds.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
for (const dir of CRD_DIRS) {
  for (const { file, crd } of crdFiles) {
    writeFileSync(path.join(root, dir, file), crdYaml(crd));
    process.stdout.write(`wrote ${dir}/${file}\n`);
  }
}
