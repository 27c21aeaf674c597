import { CommanderError } from 'commander';
import { invalidInput, isTitanError, type ErrorCode } from '../../pkg/model/errors.js';

/** `wide`: a table with more columns where a command has them (`titan list`), the table elsewhere. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `--output` value → format; anything else is bad input naming the flag. */
export function parseOutputFormat(text: string, field = 'output'): OutputFormat {
  const value = text.trim().toLowerCase();
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw invalidInput(field, `"${text}" is not an output format (use ${OUTPUT_FORMATS.join(', ')})`);
}

/**
 * The output format as far as it can be told from raw argv, for reporting
 * errors that happen before (or while) commander parses the options.
 * Invalid or absent → table.
 */
export function sniffOutputFormat(argv: readonly string[]): OutputFormat {
  let format: OutputFormat = 'table';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') break;
    let value: string | undefined;
    if (arg === '--output' || arg === '-o') value = argv[i + 1];
    else if (arg.startsWith('--output=')) value = arg.slice('--output='.length);
    else if (arg.startsWith('-o') && arg.length > 2 && !arg.startsWith('--')) value = arg.slice(2);
    const named = value?.trim().toLowerCase();
    if (named === 'json') format = 'json';
    else if (named === 'table' || named === 'wide') format = 'table'; // errors are text alike
  }
  return format;
}

/** Exit status for a failure: 2 for bad input and usage errors, 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
  if (isTitanError(err, 'InvalidInput')) return 2;
  return 1;
}

export interface ErrorReport {
  code: ErrorCode;
  message: string;
}

/** The code and one-line message a user sees for any thrown value. */
export function describeError(err: unknown): ErrorReport {
  if (err instanceof CommanderError) {
    return { code: 'InvalidInput', message: oneLine(err.message.replace(/^error:\s*/, '')) };
  }
  if (isTitanError(err)) return { code: err.code, message: oneLine(err.message) };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'Internal', message: oneLine(message) };
}

/** `error: <message>\n`, or a JSON error document for `--output json`. */
export function formatError(err: unknown, format: OutputFormat): string {
  const report = describeError(err);
  if (format === 'json') return JSON.stringify({ error: report }) + '\n';
  return `error: ${report.message}\n`;
}

function oneLine(text: string): string {
  const line = text
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .join(' ');
  return line.length > 0 ? line : 'unknown error';
}

/** Pretty JSON for stdout: one document per command. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n';
}
