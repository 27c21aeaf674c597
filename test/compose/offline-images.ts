import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// The compose cluster's images, made from what this machine has: no registry is
// reached. Each is tagged by a hash of what it is made of, so a second run
// reuses it and a changed input makes a new one.

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const PATH_ENV = 'ENV PATH=/usr/local/bin:/usr/bin:/bin';

export interface OfflineImages {
  /** The host's node binary and the libraries it loads. */
  nodeBase: string;
  /** The host's etcd binary (and its libraries, if any). */
  etcd: string;
  /** ./Dockerfile's `prebuilt` target on nodeBase: the host's dist/ and production packages. */
  titan: string;
}

export async function ensureOfflineImages(): Promise<OfflineImages> {
  const etcdBinary = which(process.env.ETCD_BIN ?? 'etcd');
  const [nodeBase, etcd] = await Promise.all([
    ensureBinaryImage('titan-test/node-base', process.execPath, 'node'),
    ensureBinaryImage('titan-test/etcd', etcdBinary, 'etcd'),
  ]);
  return { nodeBase, etcd, titan: await ensureTitanImage(nodeBase) };
}

/** The binary's real path: a name is looked up in PATH, a path taken as it is. */
function which(name: string): string {
  const candidates = name.includes('/') ? [name] : (process.env.PATH ?? '').split(':').map((dir) => path.join(dir, name));
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.realpathSync(candidate);
    } catch {}
  }
  throw new Error(`${name} is not installed: run ./scripts/test.sh (source scripts/lib/env.sh; ensure_packages)`);
}

async function imageExists(tag: string): Promise<boolean> {
  try {
    await run('docker', ['image', 'inspect', tag]);
    return true;
  } catch {
    return false;
  }
}

/** Paths `ldd` names for a binary; none for a static one (ldd then exits non-zero). */
async function sharedLibraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await run('ldd', [binary])).stdout;
  } catch {
    return [];
  }
  const libs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /(?:^\s*|=>\s*)(\/\S+)\s+\(0x/.exec(line);
    if (m) libs.push(m[1]);
  }
  return libs;
}

function shortHash(parts: readonly (string | Buffer)[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * `docker import` of a root holding one binary, as /usr/local/bin/<command>,
 * and the libraries it loads at their host paths.
 */
async function ensureBinaryImage(repo: string, binary: string, command: string): Promise<string> {
  const libraries = await sharedLibraries(binary);
  const tag = `${repo}:${shortHash([command, ...[binary, ...libraries].map((f) => {
    const st = fs.statSync(f);
    return `${f}:${st.size}:${st.mtimeMs}`;
  })])}`;
  if (await imageExists(tag)) return tag;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-rootfs-'));
  try {
    const root = path.join(dir, 'root');
    const place = (from: string, to: string): void => {
      fs.mkdirSync(path.join(root, path.dirname(to)), { recursive: true });
      fs.copyFileSync(from, path.join(root, to)); // follows symlinks: the file itself
      fs.chmodSync(path.join(root, to), 0o755);
    };
    place(binary, `/usr/local/bin/${command}`);
    for (const lib of libraries) place(lib, lib);
    fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
    const tarball = path.join(dir, 'rootfs.tar');
    await run('tar', ['-C', root, '-cf', tarball, '.']);
    await run('docker', ['import', '--change', PATH_ENV, tarball, tag]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

function treeHashParts(dir: string, rel = ''): string[] {
  const parts: string[] = [];
  for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const sub = path.join(rel, entry.name);
    if (entry.isDirectory()) parts.push(...treeHashParts(dir, sub));
    else if (entry.isFile()) parts.push(sub, crypto.createHash('sha256').update(fs.readFileSync(path.join(dir, sub))).digest('hex'));
  }
  return parts;
}

/**
 * The Dockerfile's offline target: its context is a staged app, the host's
 * dist/ and the production packages of its node_modules (as `npm ls` names them).
 */
async function ensureTitanImage(nodeBase: string): Promise<string> {
  const dist = path.join(ROOT, 'dist');
  if (!fs.existsSync(path.join(dist, 'cmd/master/main.js'))) throw new Error('dist is missing: run `npx tsc -p tsconfig.json` first');
  const inputs = ['Dockerfile', 'package.json', 'package-lock.json'].map((f) => fs.readFileSync(path.join(ROOT, f)));
  const tag = `titan-test/titan:${shortHash([nodeBase, ...inputs, ...treeHashParts(dist)])}`;
  if (await imageExists(tag)) return tag;
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-stage-'));
  try {
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(stage, 'package.json'));
    await run('cp', ['-a', dist, stage]);
    // Scoped packages go under their scope's directory: one cp per target directory.
    const byParent = new Map<string, string[]>();
    for (const pkg of await productionPackages()) {
      const parent = path.join('node_modules', path.dirname(pkg));
      byParent.set(parent, [...(byParent.get(parent) ?? []), path.join(ROOT, 'node_modules', pkg)]);
    }
    for (const [parent, sources] of byParent) {
      fs.mkdirSync(path.join(stage, parent), { recursive: true });
      await run('cp', ['-a', ...sources, path.join(stage, parent)]);
    }
    await run('docker', ['build', '-q', '--target', 'prebuilt', '--build-arg', `NODE_IMAGE=${nodeBase}`,
      '-f', path.join(ROOT, 'Dockerfile'), '-t', tag, stage], { maxBuffer: 16 << 20 });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
  await removeOtherTags('titan-test/titan', tag);
  return tag;
}

/**
 * Top-level directories under node_modules of the packages installed for
 * production (their own nested node_modules come with them). `npm ls` exits
 * non-zero on a mere warning (an engine range), so its listing is read either way.
 */
async function productionPackages(): Promise<string[]> {
  let listing: string;
  try {
    listing = (await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, maxBuffer: 16 << 20 })).stdout;
  } catch (e) {
    listing = (e as { stdout?: string }).stdout ?? '';
    if (listing === '') throw e;
  }
  const prefix = path.join(ROOT, 'node_modules') + path.sep;
  const packages = listing
    .split('\n')
    .filter((line) => line.startsWith(prefix))
    .map((line) => line.slice(prefix.length))
    .filter((rel) => !rel.includes(`${path.sep}node_modules${path.sep}`));
  if (packages.length === 0) throw new Error('npm ls names no production package: run `npm ci` first');
  return [...new Set(packages)];
}

/** Earlier builds (of other dist/ contents) would pile up in a long-lived engine. */
async function removeOtherTags(repo: string, keep: string): Promise<void> {
  const { stdout } = await run('docker', ['images', repo, '--format', '{{.Repository}}:{{.Tag}}']);
  const stale = stdout.split('\n').filter((t) => t !== '' && t !== keep);
  if (stale.length > 0) await run('docker', ['rmi', ...stale]).catch(() => undefined);
}
