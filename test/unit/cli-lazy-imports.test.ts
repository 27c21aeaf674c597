import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// `titan --help` loads what cmd/titan/main.ts imports statically, and nothing
// else: each command's action imports its code when it runs. This walks the
// static imports of the sources (type-only imports are erased by tsc) and
// lists the packages they reach.

const root = path.resolve(import.meta.dirname, '../..');

function staticImports(file: string): string[] {
  const source = fs.readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  for (const m of source.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)';/gms)) {
    if (m[1] === undefined) specifiers.push(m[2]);
  }
  return specifiers;
}

/** The files and packages reachable from a source file by static imports. */
function closure(entry: string): { files: string[]; packages: string[] } {
  const files = new Set([path.join(root, entry)]);
  const packages = new Set<string>();
  for (const file of files) {
    for (const spec of staticImports(file)) {
      if (spec.startsWith('.')) files.add(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      else if (!spec.startsWith('node:')) packages.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
    }
  }
  return { files: [...files].map((f) => path.relative(root, f)), packages: [...packages].sort() };
}

describe('what titan loads before a command runs', () => {
  const { files, packages } = closure('cmd/titan/main.ts');

  it('is commander and a few modules of its own', () => {
    expect(packages).toEqual(['commander']);
    expect(files).toContain('cmd/titan/job-commands.ts');
    expect(files.length).toBeLessThan(30);
  });

  it('holds no etcd client, API client, scheduler or model schemas', () => {
    const heavy = files.filter((f) => /store\/store|cluster-client|api-client|scheduler\/index|scheduler\/policy\.ts|model\/index|model\/spec/.test(f));
    expect(heavy).toEqual([]);
  });
});
