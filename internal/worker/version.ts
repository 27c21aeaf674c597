import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FALLBACK_VERSION = '0.1.0';
const PACKAGE_NAME = 'titan-scheduler';

let cached: string | undefined;

/**
 * The version in Titan's package.json. Looked up by walking up from this
 * file, because the source tree and dist/ sit at different depths.
 */
export function titanVersion(): string {
  if (cached !== undefined) return cached;
  cached = FALLBACK_VERSION;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') {
        cached = pkg.version;
        break;
      }
    } catch {
      // no package.json here: keep walking up
    }
    dir = path.dirname(dir);
  }
  return cached;
}
