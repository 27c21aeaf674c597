import fs from 'node:fs';
import path from 'node:path';

/** Whether a command can be run: a name is looked up in PATH, a path (with a slash) taken as it is. */
export function commandExists(command: string): boolean {
  const candidates = command.includes('/') ? [command] : (process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== '').map((d) => path.join(d, command));
  return candidates.some((candidate) => {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.statSync(candidate).isFile();
    } catch {
      return false;
    }
  });
}

/** The commands of the list that cannot be run, in its order. */
export function missingCommands(commands: readonly string[]): string[] {
  return commands.filter((c) => !commandExists(c));
}
