import { Argument, Command, CommanderError } from 'commander';
import { commandTree, COMPLETION_SHELLS, parseCompletionShell, renderCompletion } from '../../internal/cli/completion.js';
import { processIO, type CliIO } from '../../internal/cli/io.js';
import { exitCodeFor, formatError, OUTPUT_FORMATS, sniffOutputFormat } from '../../internal/cli/output.js';
import { POLICY_NAMES } from '../../internal/scheduler/policy-names.js';
import { addEtcdConnectionOptions } from '../../pkg/config/etcd-connection.js';
import { JOB_STATES } from '../../pkg/model/job.js';
import { JOB_SORTS } from '../../pkg/model/job-query.js';
import { addAuthCommands, addTokenCommands } from './access-commands.js';
import { addClusterCommands, addQueueCommands } from './cluster-commands.js';
import { addContextCommands } from './context-commands.js';
import { addJobCommands } from './job-commands.js';
import { addLocalCommands } from './local-commands.js';
import { addTraceCommands } from './trace-commands.js';

/**
 * commander → internal/cli: parsing and printing in cmd/titan, the work in
 * internal/cli. The tree is built from light modules only; each action
 * imports what it runs (etcd, the API client, the scheduler), so `--help`
 * and usage errors cost little more than starting node.
 */
export function buildProgram(io: CliIO, setExitCode: (code: number) => void): Command {
  const program = addEtcdConnectionOptions(
    new Command('titan')
      .description('Titan: submit and inspect container jobs on an etcd-backed cluster')
      .exitOverride()
      .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: () => undefined }),
  )
    .option('--prefix <prefix>', 'etcd key prefix of the cluster (env TITAN_PREFIX; default /titan)')
    .option('-o, --output <format>', 'output format: table, wide (more columns, in list) or json (default table)')
    .option('-v, --verbose', 'more detail on stderr')
    .option('--context <name>', 'use this context of the CLI config file instead of its current one (env TITAN_CONTEXT; see titan context)')
    .option('--addr <url>', "a master's HTTP API, http(s)://host:port; its token comes from TITAN_TOKEN or TITAN_TOKEN_FILE (env TITAN_ADDR)")
    .option('--api-cacert <file>', "CA certificate (PEM) that signed the API's certificate (env TITAN_API_CACERT)");

  // Registration order is the order `titan --help` lists the commands in.
  addJobCommands(program, io, setExitCode);
  addClusterCommands(program, io);
  addQueueCommands(program, io);
  addAuthCommands(program, io);
  addContextCommands(program, io);

  program
    .command('completion')
    .description('print a shell completion script: source <(titan completion bash), or see the script\'s first lines')
    .addArgument(new Argument('<shell>', COMPLETION_SHELLS.join(', ')).choices(COMPLETION_SHELLS))
    .action((shell: string) => {
      const choices = { '--output': OUTPUT_FORMATS, '--policy': POLICY_NAMES, '--sort': JOB_SORTS, '--state': JOB_STATES };
      io.out(renderCompletion(commandTree(program, choices), parseCompletionShell(shell)));
    });
  addTokenCommands(program, io);
  addLocalCommands(program, io);
  addTraceCommands(program, io);

  return program;
}

/** Runs one command line; returns the exit status. Errors are reported on stderr here. */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version were printed already; an implicit help (no command) is a usage error.
      if (err.exitCode === 0) return 0;
      if (err.code === 'commander.help') return 2;
    }
    io.err(formatError(err, sniffOutputFormat(argv)));
    return exitCodeFor(err);
  }
}
