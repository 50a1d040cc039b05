import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Absolute path of the monorepo root. Derived from this file's location rather than the cwd,
 * because mocha runs from each package's own directory.
 */
export const repoRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
