/** Types for what tests import from eslint.config.js (the config itself is plain JS). */
export declare const DETERMINISTIC_FOLDERS: readonly string[];
export declare const DETERMINISTIC_FILES: readonly string[];
export declare const TYPED_FILES: readonly string[];
export declare const TYPED_RULES: Readonly<Record<string, string>>;
declare const config: unknown;
export default config;
