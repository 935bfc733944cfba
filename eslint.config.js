import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The processes: each is its own vocabulary and may share code only through common/. */
const processes = ['signaling', 'media-controller', 'tlib-api', 'operator'];
/** Harnesses and the launcher: they may use everything, nothing may use them. */
const harnesses = ['test', 'bench', 'bin'];
const tests = ['**/*.test.ts', 'signaling/model/test-harness.ts'];

/** A relative import that climbs out of `from` into one of `folders`. */
const into = (folders) => `^(\\.\\./)+(${folders.join('|')})/`;

const layer = (files, patterns) => ({
  files,
  ignores: tests,
  rules: {
    'no-restricted-imports': 'off',
    '@typescript-eslint/no-restricted-imports': ['error', { patterns }],
  },
});

const processRule = (name) => ({
  regex: into([...processes.filter((p) => p !== name), ...harnesses]),
  message: `${name}/ must not import another process's internals or a harness: share it through common/.`,
});

/** The call model is a pure state machine: only its own files and T-Library constants at run time (as purity.test.ts). */
const modelRules = [
  {
    regex: '^(?!\\./|\\.\\./\\.\\./common/)',
    allowTypeImports: true,
    message: 'signaling/model is pure: no I/O, clock, timer or library at run time (types only).',
  },
  {
    regex: '^\\.\\./\\.\\./common/(?!tlib/(errors|enums|connid)\\.js$)',
    allowTypeImports: true,
    message: 'signaling/model may load only the T-Library constants (common/tlib/errors.js, enums.js, connid.js) at run time (types only otherwise).',
  },
];

/** The layer rules alone, exported so a test can prove they reject what they should. */
export const layerRules = [
  layer(['common/**/*.ts'], [{ regex: into([...processes, ...harnesses]), message: 'common/ is shared by every process: it must not import a process folder or a harness.' }]),
  ...processes.map((name) => layer([`${name}/**/*.ts`], [processRule(name)])),
  // Later entries win for the same rule: the model keeps signaling's rule and adds purity.
  layer(['signaling/model/**/*.ts'], [processRule('signaling'), ...modelRules]),
];

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.data/', 'tlib-api/page/static/vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  ...layerRules,
  {
    files: ['**/*.js', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
