import type { Command } from 'commander';
import type { ContextAddFlags } from '../../internal/cli/context-commands.js';
import type { GlobalFlags } from '../../internal/cli/context.js';
import type { CliIO } from '../../internal/cli/io.js';
import { parseOutputFormat, toJson, type OutputFormat } from '../../internal/cli/output.js';

const contexts = () => import('../../internal/cli/context-commands.js');

/** `titan context add|use|list|remove|current`: clusters kept in the CLI config file (internal/cli/contexts-file.ts). */
export function addContextCommands(program: Command, io: CliIO): void {
  const context = program
    .command('context')
    .description('keep several clusters (API address and token, or etcd endpoints and certificates) in one private config file, like kubectl contexts');
  const outputOf = (command: Command): OutputFormat => {
    const output = command.optsWithGlobals<GlobalFlags>().output;
    return output === undefined ? 'table' : parseOutputFormat(output);
  };

  context
    .command('add')
    .description(
      'save a context from the connection flags given with it: --addr, --api-cacert, --endpoints, --prefix, --etcd-ca, --etcd-cert, --etcd-key, --etcd-user, --etcd-password-file (TITAN_* env is not saved)',
    )
    .argument('<name>', 'context name')
    .option('--token-stdin', 'read the API token from stdin (kept in the file, never printed)')
    .option('--etcd-password-stdin', "read the etcd user's password from stdin (kept in the file, never printed)")
    .option('--use', 'make it the current context')
    .option('--replace', 'overwrite a context of that name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const flags = command.optsWithGlobals<ContextAddFlags & GlobalFlags>();
      const output = outputOf(command);
      const { addContext, readStdin } = await contexts();
      const { view, replaced } = await addContext(name, flags, io.env, () => {
        if (process.stdin.isTTY) io.err('titan: type or paste the secret, then press Ctrl-D\n');
        return readStdin();
      });
      const current = view.current ? '; it is the current context' : '';
      io.out(output === 'json' ? toJson(view) : `context ${view.name} ${replaced ? 'replaced' : 'added'}${current}\n`);
    });

  context
    .command('use')
    .description('make a context the current one')
    .argument('<name>', 'context name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { overridingEnv, useContext } = await contexts();
      const used = useContext(name, io.env);
      io.out(outputOf(command) === 'json' ? toJson({ current: used }) : `switched to context ${used}\n`);
      const overriding = overridingEnv(io.env);
      if (overriding.length > 0) io.err(`titan: note: set in the environment, ${overriding.join(', ')} override${overriding.length === 1 ? 's' : ''} the context\n`);
    });

  context
    .command('list')
    .description('list the contexts; * marks the one in effect (secrets are never shown)')
    .action(async (_opts: unknown, command: Command) => {
      const { listContexts, renderContextTable } = await contexts();
      const views = listContexts(command.optsWithGlobals<GlobalFlags>().context, io.env);
      if (outputOf(command) === 'json') io.out(toJson(views));
      else if (views.length === 0) io.err('no contexts (titan context add NAME --addr URL | --endpoints host:port ...)\n');
      else io.out(renderContextTable(views));
    });

  context
    .command('remove')
    .description('remove a context (if it was the current one, none is current after)')
    .argument('<name>', 'context name')
    .action(async (name: string, _opts: unknown, command: Command) => {
      const { removeContext } = await contexts();
      const removed = removeContext(name, io.env);
      io.out(outputOf(command) === 'json' ? toJson({ removed: removed.name }) : `context ${removed.name} removed${removed.wasCurrent ? '; no context is current now' : ''}\n`);
    });

  context
    .command('current')
    .description('print the context in effect (--context, TITAN_CONTEXT or the current one); exit 1 when none')
    .action(async (_opts: unknown, command: Command) => {
      const { currentContext } = await contexts();
      const current = currentContext(command.optsWithGlobals<GlobalFlags>().context, io.env);
      io.out(outputOf(command) === 'json' ? toJson(current) : `${current.name}\n`);
    });
}
