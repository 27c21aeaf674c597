import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { anyFreePort } from '../../internal/localcluster/etcd-process.js';
import { processIds } from '../bench/proc-stats.js';
import { sleep } from '../bench/wait.js';
import { PARTITION, slurmConf, slurmFiles } from './slurm-conf.js';

/**
 * A private Slurm on this host for `npm run bench:e2e -- --peer slurm`:
 * munged, slurmctld and slurmd (Debian's packages) in the foreground as
 * root, with their key, configuration, state and logs in a temp dir of their
 * own, stopped and removed by stop().
 */

const TOOLS = ['slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'sinfo', 'munged', 'mungekey'] as const;
export type SlurmTool = (typeof TOOLS)[number];

/** How to get the tools: the project's provisioning (scripts/lib/env.sh), or apt by hand. */
export const SLURM_PACKAGES = 'slurmctld slurmd slurm-client munge';
const INSTALL_HINT = `run (as root, from the repo root) bash -c 'source scripts/lib/env.sh; ensure_slurm', or: apt-get install -y --no-install-recommends ${SLURM_PACKAGES}`;

/** Where to look: $PATH, and the sbin dirs a non-root PATH may lack (the daemons are in /usr/sbin). */
const searchDirs = (): string[] => [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/usr/bin', '/sbin'];

/** The tools' paths; throws naming the missing ones and how to install them. */
export function findSlurmTools(dirs: readonly string[] = searchDirs()): Record<SlurmTool, string> {
  const found: Partial<Record<SlurmTool, string>> = {};
  for (const tool of TOOLS) {
    const hit = dirs.map((d) => path.join(d, tool)).find((p) => isExecutable(p));
    if (hit) found[tool] = hit;
  }
  const missing = TOOLS.filter((t) => found[t] === undefined);
  if (missing.length > 0) throw new Error(`--peer slurm: ${missing.join(', ')} not found; ${INSTALL_HINT}`);
  return found as Record<SlurmTool, string>;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A daemon in the foreground, its stdout and stderr in `<name>.out`. */
class Daemon {
  readonly child: ChildProcess;
  readonly outFile: string;
  private readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    bin: string,
    args: string[],
    dir: string,
    /** Where the daemon logs (its own log file, or outFile). */
    readonly logFile?: string,
  ) {
    this.outFile = path.join(dir, `${name}.out`);
    const out = fs.openSync(this.outFile, 'a');
    this.child = spawn(bin, args, { stdio: ['ignore', out, out], env: process.env });
    fs.closeSync(out);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.once('error', () => resolve());
    });
  }

  running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running() ? this.child.pid : undefined;
  }

  /** Why it is not running, naming its log; undefined while it runs. */
  failure(): string | undefined {
    if (this.running()) return undefined;
    const how = this.child.signalCode ?? `code ${String(this.child.exitCode ?? 'unknown (not started)')}`;
    const logs = this.logFile ? `${this.logFile} (and ${this.outFile})` : this.outFile;
    return `${this.name} exited (${how}); see ${logs}:\n${tail(this.outFile, 8)}`;
  }

  async stop(timeoutMs = 10_000): Promise<void> {
    if (!this.running()) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

function tail(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export interface SlurmOptions {
  slots: number;
  memoryMiB: number;
  /** Array tasks the controller must hold at once. */
  maxJobs: number;
  /** Keep the temp dir (logs) after stop(). */
  keep: boolean;
}

export class SlurmCluster {
  private readonly daemons: Daemon[] = [];
  readonly env: NodeJS.ProcessEnv;

  private constructor(
    readonly dir: string,
    readonly host: string,
    readonly tools: Record<SlurmTool, string>,
    private readonly keep: boolean,
  ) {
    this.env = { ...process.env, SLURM_CONF: slurmFiles(dir).conf };
  }

  /** Starts munged, slurmctld and slurmd; resolves once the node is idle, or throws naming the log to read. */
  static async start(options: SlurmOptions): Promise<SlurmCluster> {
    const tools = findSlurmTools();
    // Short: munge's socket path must fit in 108 bytes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'titan-slurm-'));
    const cluster = new SlurmCluster(dir, os.hostname().split('.')[0], tools, options.keep);
    try {
      await cluster.bringUp(options);
      return cluster;
    } catch (err) {
      await cluster.stop(true);
      throw new Error(`Slurm did not start (temp dir ${dir} kept): ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private async bringUp(options: SlurmOptions): Promise<void> {
    const { dir, tools } = this;
    const key = path.join(dir, 'munge.key');
    const socket = path.join(dir, 'munge.sock');
    const keyed = await this.run('mungekey', ['--create', `--keyfile=${key}`]);
    if (keyed.code !== 0) throw new Error(`mungekey --create failed: ${keyed.stderr.trim()}`);
    const munged = new Daemon('munged', tools.munged, ['--foreground', '--force', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${path.join(dir, 'munged.pid')}`, `--seed-file=${path.join(dir, 'munged.seed')}`], dir);
    this.daemons.push(munged);
    await this.until(() => fs.existsSync(socket), 10_000, 'munged did not create its socket');

    const files = slurmFiles(dir);
    const ctldPort = await anyFreePort();
    let slurmdPort = await anyFreePort();
    while (slurmdPort === ctldPort) slurmdPort = await anyFreePort();
    fs.mkdirSync(files.stateDir);
    fs.mkdirSync(files.spoolDir);
    fs.writeFileSync(files.conf, slurmConf({ dir, host: this.host, slots: options.slots, memoryMiB: options.memoryMiB, ctldPort, slurmdPort, maxJobs: options.maxJobs, mungeSocket: socket }));
    this.daemons.push(new Daemon('slurmctld', tools.slurmctld, ['-D', '-f', files.conf], dir, files.ctldLog));
    this.daemons.push(new Daemon('slurmd', tools.slurmd, ['-D', '-f', files.conf, '-N', this.host], dir, files.slurmdLog));

    let state = '';
    const idle = async (): Promise<boolean> => {
      const r = await this.run('sinfo', ['-h', '-N', '-n', this.host, '-p', PARTITION, '-o', '%T']);
      state = r.code === 0 ? r.stdout.trim() : r.stderr.trim();
      return r.code === 0 && state === 'idle';
    };
    await this.until(idle, 30_000, () => `the node is not idle after 30 s (sinfo: "${state}"); see ${files.ctldLog} and ${files.slurmdLog}`);
  }

  /** Polls `done` every 200 ms; throws on a dead daemon (naming its log) or at the deadline. */
  private async until(done: () => boolean | Promise<boolean>, timeoutMs: number, why: string | (() => string)): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const dead = this.failure();
      if (dead) throw new Error(dead);
      if (await done()) return;
      if (performance.now() > deadline) throw new Error(typeof why === 'string' ? why : why());
      await sleep(200);
    }
  }

  /** The first daemon that is no longer running, with its log; undefined while all run. */
  failure(): string | undefined {
    for (const d of this.daemons) {
      const f = d.failure();
      if (f) return f;
    }
    return undefined;
  }

  pid(name: 'slurmctld' | 'slurmd' | 'munged'): number | undefined {
    return this.daemons.find((d) => d.name === name)?.pid;
  }

  /** Runs one of the tools against this cluster (SLURM_CONF set); never throws for a non-zero exit. */
  run(tool: SlurmTool, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return new Promise((resolve) => {
      execFile(this.tools[tool], args, { env: this.env, timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr: stderr || (err?.message ?? '') });
      });
    });
  }

  /**
   * The slurmstepd processes of this cluster: those holding its slurmd.log
   * open (they retitle themselves, overwriting their environment, so neither
   * tells). They outlive their job by a second or so, reparented to init, so
   * they are found in /proc.
   */
  stepdPids(): number[] {
    const log = slurmFiles(this.dir).slurmdLog;
    return processIds().filter((pid) => {
      try {
        if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'slurmstepd') return false;
        return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => {
          try {
            return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === log;
          } catch {
            return false;
          }
        });
      } catch {
        return false;
      }
    });
  }

  /** Waits (up to timeoutMs) until no slurmstepd of this cluster is left; whether none is. */
  async settle(timeoutMs = 10_000): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (this.stepdPids().length > 0) {
      if (performance.now() > deadline) return false;
      await sleep(100);
    }
    return true;
  }

  /** Cancels what is left in the partition, lets the job steps end, stops the daemons (slurmd, slurmctld, munged), kills any step still there and removes the temp dir unless kept. */
  async stop(keep = this.keep): Promise<void> {
    const ctld = this.daemons.find((d) => d.name === 'slurmctld');
    if (ctld?.running()) {
      await this.run('scancel', ['--quiet', '-p', PARTITION], 10_000);
      await this.settle();
    }
    for (const d of [...this.daemons].reverse()) await d.stop();
    for (const pid of this.stepdPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    if (keep) process.stderr.write(`bench:e2e: Slurm's logs kept in ${this.dir}\n`);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
