import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * The shared test data folder (traces), which sits beside the project:
 * TITAN_SHARED_DIR if set, else ../shared from the repository, else the
 * workplace's copy (a fresh clone elsewhere has no ../shared beside it).
 */
export function sharedDir(): string {
  const candidates = [process.env.TITAN_SHARED_DIR, path.resolve(ROOT, '../shared'), '/work/shared'].filter((d): d is string => !!d);
  const found = candidates.find((d) => fs.existsSync(path.join(d, 'traces')));
  if (!found) throw new Error(`shared test data not found (tried ${candidates.join(', ')}); set TITAN_SHARED_DIR`);
  return found;
}
