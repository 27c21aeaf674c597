import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
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
 * What a restarted worker process cannot learn from etcd or Docker — the pid
 * of a shell run (to kill its orphaned process group) and the outcome of a
 * run whose container is already gone — kept in one append-only file in the
 * worker's state dir (JOURNAL_FILE): a line per change, the changes of many
 * runs in one write, and the live records in memory, so a read costs no I/O.
 * A crash mid-write leaves at most a torn last line, which is skipped. The
 * file is rewritten with only the live records when it has grown well past
 * them. Failures to write are logged, never fatal: the journal only narrows
 * windows a crash could otherwise leave open.
 */
export class RunJournal {
  private readonly live = new Map<string, RunRecord>();
  /** Lines not written yet, and the write that will take them. */
  private queue: string[] = [];
  private nextWrite: Promise<void> | undefined;
  /** The write under way (never rejects): the next waits for it, so lines keep their order. */
  private writing: Promise<void> = Promise.resolve();
  /** Lines in the file, live or not. */
  private lines = 0;
  /** The journal file, open for appending (a plain descriptor: it is closed with the worker, never by the collector). */
  private fd: number | undefined;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Creates the state dir (0700) and reads the journal; a worker that cannot
   * keep its journal does not start. The journal names processes the worker
   * may kill, so a dir another user could write to (or owns) is refused,
   * never used.
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
      this.closeFile();
      this.live.clear();
      for (const record of readJournal(this.dir)) this.live.set(keyOf(record.jobId, record.attempt), record);
      // Written whole, then renamed: a crash never leaves half a journal.
      const file = path.join(this.dir, JOURNAL_FILE);
      fs.writeFileSync(`${file}.tmp`, [...this.live.values()].map(putLine).join(''), { mode: 0o600 });
      fs.renameSync(`${file}.tmp`, file);
      this.lines = this.live.size;
      // An earlier version's file per run, now in the journal.
      for (const name of legacyFiles(this.dir)) fs.unlinkSync(path.join(this.dir, name));
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

  /** Resolves once the record is written (never rejects). Writes of one attempt must not overlap: await each. */
  write(record: RunRecord): Promise<void> {
    this.live.set(keyOf(record.jobId, record.attempt), record);
    return this.append(putLine(record));
  }

  read(jobId: string, attempt: number): Promise<RunRecord | undefined> {
    return Promise.resolve(this.live.get(keyOf(jobId, attempt)));
  }

  /** Never rejects: a record left behind is swept at the next start. */
  remove(jobId: string, attempt: number): Promise<void> {
    if (!this.live.delete(keyOf(jobId, attempt))) return Promise.resolve();
    return this.append(`${JSON.stringify({ remove: [jobId, attempt] })}\n`);
  }

  /** Every record. */
  list(): RunRecord[] {
    return [...this.live.values()];
  }

  /** Lines appended in the same turn of the event loop, or while a write is under way, go in one write. */
  private append(line: string): Promise<void> {
    this.queue.push(line);
    this.nextWrite ??= this.writeQueued();
    return this.nextWrite;
  }

  private async writeQueued(): Promise<void> {
    await this.writing;
    await new Promise((resolve) => setImmediate(resolve));
    this.nextWrite = undefined;
    const lines = this.queue;
    this.queue = [];
    this.writing = this.writeLines(lines);
    await this.writing;
  }

  private async writeLines(lines: readonly string[]): Promise<void> {
    const file = path.join(this.dir, JOURNAL_FILE);
    try {
      this.lines += lines.length;
      if (this.lines > COMPACT_AFTER_LINES && this.lines > 4 * this.live.size) {
        // Only the live records, written whole and renamed over the journal.
        await fs.promises.writeFile(`${file}.tmp`, [...this.live.values()].map(putLine).join(''), { mode: 0o600 });
        await fs.promises.rename(`${file}.tmp`, file);
        this.lines = this.live.size;
        this.closeFile(); // the next append opens the new file
      } else {
        // Kept open: opening and closing the file for every append cost more than the write.
        this.fd ??= await open(file, 'a', 0o600);
        await write(this.fd, lines.join(''));
      }
    } catch (err) {
      this.closeFile();
      this.logger.warn({ err, file }, 'could not write the run journal');
    }
  }

  /** Closes the journal file (it is opened again by the next write). */
  close(): void {
    this.closeFile();
  }

  private closeFile(): void {
    if (this.fd === undefined) return;
    fs.close(this.fd, () => undefined);
    this.fd = undefined;
  }
}

const open = promisify(fs.open);
/** fs.appendFile on a descriptor writes all of the text at the end, and leaves the descriptor open. */
const write = promisify((fd: number, text: string, done: (err: NodeJS.ErrnoException | null) => void) => fs.appendFile(fd, text, done));

/**
 * The live records of the journal in `dir`, as a worker process starting
 * there finds them (the journal file, then an earlier version's file per
 * run); read only, for tools and tests.
 */
export function readJournal(dir: string): RunRecord[] {
  const live = new Map<string, RunRecord>();
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, JOURNAL_FILE), 'utf8');
  } catch {}
  for (const line of text.split('\n')) {
    const change = parseLine(line);
    if (change && 'remove' in change) live.delete(keyOf(...change.remove));
    else if (change) live.set(keyOf(change.put.jobId, change.put.attempt), change.put);
  }
  for (const name of legacyFiles(dir)) {
    try {
      const record = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as RunRecord;
      live.set(keyOf(record.jobId, record.attempt), record);
    } catch {}
  }
  return [...live.values()];
}

/** The journal: a JSON line per change ({put: record} or {remove: [jobId, attempt]}). */
const JOURNAL_FILE = 'runs.jsonl';
/** The journal is rewritten once it has this many lines, and four times as many as live records. */
export const COMPACT_AFTER_LINES = 4096;

type JournalLine = { put: RunRecord } | { remove: [string, number] };

function keyOf(jobId: string, attempt: number): string {
  return `${jobId}.${attempt}`;
}

function putLine(record: RunRecord): string {
  return `${JSON.stringify({ put: record })}\n`;
}

/** A line of the journal; undefined for an empty or torn one (a crash mid-write). */
function parseLine(line: string): JournalLine | undefined {
  if (line === '') return undefined;
  try {
    const change = JSON.parse(line) as Partial<{ put: RunRecord; remove: [string, number] }>;
    if (change.put && typeof change.put.jobId === 'string' && typeof change.put.attempt === 'number') return { put: change.put };
    if (Array.isArray(change.remove) && typeof change.remove[0] === 'string' && typeof change.remove[1] === 'number') return { remove: change.remove };
  } catch {}
  return undefined;
}

/** An earlier version's journal: a file per run, <job>.<attempt>.json. */
function legacyFiles(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((name) => name.endsWith('.json'));
  } catch {
    return [];
  }
}

/** Not the journal. */
const INSTANCE_FILE = 'instance';

function stateDirError(dir: string, err: unknown): TitanError {
  return new TitanError('InvalidInput', `--state-dir ${dir}: ${(err as Error).message}`, { field: '--state-dir', cause: err });
}
