/** Types of eslint.config.js for the test that proves its layer rules (test/architecture). */
import type { Linter } from 'eslint';

export declare const layerRules: Linter.Config[];
declare const config: Linter.Config[];
export default config;
