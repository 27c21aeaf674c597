import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../pkg/log/logger.js';
import { TitanError, type ExecutorKind } from '../../pkg/model/index.js';
import type { RunHandle } from './executor.js';
import type { RunEnd, StopCauses } from '../../pkg/model/index.js';

/** One run of this node as a later worker process needs to know it. */
export interface RunRecord extends RunHandle {
  jobId: string;
  attempt: number;
  kind: ExecutorKind;
  startedAt: number;
  /**
   * How the run ended, written before its container is removed: if the worker
   * dies between that removal and the final etcd write, the outcome survives.
   */
  end?: { result: RunEnd; causes: StopCauses };
}

/**
 * A small file per run in the worker's state dir: what a restarted worker
 * process cannot learn from etcd or Docker — the pid of a shell run (to kill
 * its orphaned process group) and the outcome of a run whose container is
 * already gone. Failures to write are logged, never fatal: the journal only
 * narrows windows a crash could otherwise leave open. Its file operations
 * are asynchronous: on a disk busy with container churn a rename or unlink
 * can take milliseconds, which must not stall every other run of the node.
 */
export class RunJournal {
  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Creates the state dir (0700); a worker that cannot keep its journal does
   * not start. The journal names processes the worker may kill, so a dir
   * another user could write to (or owns) is refused, never used.
   */
  open(): void {
    let stat: fs.Stats;
    try {
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      stat = fs.lstatSync(this.dir);
    } catch (err) {
      throw stateDirError(this.dir, err);
    }
    const uid = process.getuid?.();
    const problem = !stat.isDirectory()
      ? 'is not a directory (a symbolic link is not accepted either)'
      : uid !== undefined && stat.uid !== uid
        ? `is owned by uid ${stat.uid}, not by this worker's uid ${uid}`
        : (stat.mode & 0o022) !== 0
          ? `is writable by ${stat.mode & 0o020 ? 'its group' : 'everyone'} (mode ${(stat.mode & 0o777).toString(8)}); run chmod 700 on it`
          : undefined;
    if (problem) throw new TitanError('InvalidInput', `--state-dir ${this.dir} ${problem}: the worker keeps the processes it may kill there`, { field: '--state-dir' });
    try {
      // Readable by others is no danger to the worker, but run records are the node's business only.
      if ((stat.mode & 0o077) !== 0) fs.chmodSync(this.dir, 0o700);
      fs.accessSync(this.dir, fs.constants.W_OK);
    } catch (err) {
      throw stateDirError(this.dir, err);
    }
  }

  /**
   * This worker's instance id (NodeInfo.instance), made on first use and kept
   * in the state dir: a restart from the same dir is the same instance.
   */
  instanceId(): string {
    const file = path.join(this.dir, INSTANCE_FILE);
    try {
      const kept = fs.readFileSync(file, 'utf8').trim();
      if (/^[0-9a-f]{16,64}$/.test(kept)) return kept;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw stateDirError(this.dir, err);
    }
    const made = randomBytes(16).toString('hex');
    try {
      fs.writeFileSync(`${file}.tmp`, made, { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
    } catch (err) {
      throw stateDirError(this.dir, err);
    }
    return made;
  }

  /** Resolves once the record is in place (never rejects). Writes of one attempt must not overlap: await each. */
  async write(record: RunRecord): Promise<void> {
    const file = this.file(record.jobId, record.attempt);
    try {
      // Written whole, then renamed: a crash never leaves half a record.
      await fs.promises.writeFile(`${file}.tmp`, JSON.stringify(record));
      await fs.promises.rename(`${file}.tmp`, file);
    } catch (err) {
      this.logger.warn({ err, file }, 'could not write the run journal');
    }
  }

  async read(jobId: string, attempt: number): Promise<RunRecord | undefined> {
    try {
      return parseRecord(await fs.promises.readFile(this.file(jobId, attempt), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /**
   * Never rejects: a record left behind is swept at the next start. A plain
   * unlink: `rm` checks the path with two lstats first, and path lookups are
   * slow while the engine mounts and unmounts container filesystems.
   */
  async remove(jobId: string, attempt: number): Promise<void> {
    const file = this.file(jobId, attempt);
    await fs.promises.unlink(file).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ err, file }, 'could not remove a run journal record');
    });
  }

  /** Every record (at start-up, before any run: synchronous is fine there). */
  list(): RunRecord[] {
    let names: string[];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    return names
      .filter((name) => name.endsWith('.json'))
      .map((name) => this.readFile(path.join(this.dir, name)))
      .filter((record): record is RunRecord => record !== undefined);
  }

  private file(jobId: string, attempt: number): string {
    return path.join(this.dir, `${jobId}.${attempt}.json`);
  }

  private readFile(file: string): RunRecord | undefined {
    try {
      return parseRecord(fs.readFileSync(file, 'utf8'));
    } catch {
      return undefined;
    }
  }
}

/** Not a run record (those end in .json). */
const INSTANCE_FILE = 'instance';

function stateDirError(dir: string, err: unknown): TitanError {
  return new TitanError('InvalidInput', `--state-dir ${dir}: ${(err as Error).message}`, { field: '--state-dir', cause: err });
}

function parseRecord(text: string): RunRecord {
  return JSON.parse(text) as RunRecord;
}
