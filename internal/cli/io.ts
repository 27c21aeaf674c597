/** Where a command writes; the real process streams, or buffers in tests. */
export interface CliIO {
  out(text: string): void;
  err(text: string): void;
  /** Progress bars and other terminal-only niceties go to stderr only when it is a terminal. */
  errIsTTY: boolean;
  /** A terminal redraws `titan list --watch` in place; elsewhere each list follows the last. */
  outIsTTY?: boolean;
  env: NodeJS.ProcessEnv;
}

export function processIO(): CliIO {
  // `titan logs -f ID | head`: a reader that went away is a normal end, not a crash.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  return {
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    errIsTTY: process.stderr.isTTY === true,
    outIsTTY: process.stdout.isTTY === true,
    env: process.env,
  };
}
