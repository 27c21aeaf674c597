import type { Command } from 'commander';
import type { NewUserFlags } from '../../internal/cli/auth.js';
import type { CliIO } from '../../internal/cli/io.js';
import { toJson } from '../../internal/cli/output.js';
import type { TokenFlags } from '../../internal/cli/tokens.js';
import { collect, configOf, throwIfSkipped } from './action-kit.js';

const clusterClient = () => import('../../internal/cli/cluster-client.js');
const cliContext = () => import('../../internal/cli/context.js');
const tokens = () => import('../../internal/cli/tokens.js');

/** `titan token create|list|revoke`: API tokens, kept in etcd as hashes (needs etcd access, not the API). */
export function addTokenCommands(program: Command, io: CliIO): void {
  const token = program.command('token').description('manage API tokens: who may call the HTTP API, with which role, in which queues');
  token
    .command('create')
    .description('create a token and print its secret, once (it is stored only as a hash)')
    .option('--role <role>', 'reader (look), submitter (+ submit, cancel, retry), operator (+ queues), admin (+ tokens)')
    .option('--queue <name>', 'limit the token to this queue (repeatable; reader and submitter)', collect)
    .option('--ttl <duration>', 'the token expires after this long (30d, 12h; default never)')
    .option('--name <text>', 'who or what it is for, shown by titan token list')
    .action(async (opts: TokenFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { withStore }, { createToken, tokenView }] = await Promise.all([clusterClient(), cliContext(), tokens()]);
      const { token: created, secret } = await etcdOnly(config, 'token create', () => withStore(config, (store) => createToken(store, opts)));
      if (config.output === 'json') {
        io.out(toJson({ ...tokenView(created), secret }));
        return;
      }
      const scope = created.queues ? ` in queue(s) ${created.queues.join(', ')}` : '';
      io.err(`token ${created.id}: ${created.role}${scope}; its secret, shown only now (send it as "Authorization: Bearer <secret>"):\n`);
      io.out(`${secret}\n`);
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .action(async (_opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { withStore }, { renderTokenTable, tokenView }] = await Promise.all([clusterClient(), cliContext(), tokens()]);
      const found = await etcdOnly(config, 'token list', () => withStore(config, (store) => store.listTokens()));
      const listed = found.items.map((t) => t.value);
      if (config.output === 'json') io.out(toJson(listed.map(tokenView)));
      else if (listed.length === 0) io.err('no tokens (titan token create --role reader)\n');
      else io.out(renderTokenTable(listed));
      throwIfSkipped([found]);
    });
  token
    .command('revoke')
    .description('delete a token: the API refuses it at once')
    .argument('<id>', 'token id (see titan token list)')
    .action(async (id: string, _opts: unknown, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { withStore }, { revokeToken }] = await Promise.all([clusterClient(), cliContext(), tokens()]);
      await etcdOnly(config, 'token revoke', () => withStore(config, (store) => revokeToken(store, id)));
      io.out(config.output === 'json' ? toJson({ revoked: id }) : `token ${id} revoked\n`);
    });
}

/** `titan auth setup|add-node|add-user`: etcd roles and users (see docs/security.md). */
export function addAuthCommands(program: Command, io: CliIO): void {
  const auth = program.command('auth').description("set up etcd's roles and users for Titan (run with etcd root credentials)");
  const report = (lines: string[]): void => io.out(lines.map((l) => `${l}\n`).join(''));

  auth
    .command('setup')
    .description("create Titan's roles and the titan-master user, then enable etcd auth; running it again changes nothing")
    .option('--password-file <file>', 'give titan-master a password from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (opts: NewUserFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { newPassword, setupAuth }] = await Promise.all([clusterClient(), import('../../internal/cli/auth.js')]);
      report((await etcdOnly(config, 'auth setup', () => setupAuth(config, newPassword(opts, io.env)))).lines);
    });

  auth
    .command('add-node')
    .description('add user titan-node-<id> with its role: its own keys only (logs in by client certificate, or a password)')
    .argument('<id>', 'node id (the worker\'s --node-id)')
    .option('--password-file <file>', 'give it a password from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (id: string, opts: NewUserFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { addNode, newPassword }] = await Promise.all([clusterClient(), import('../../internal/cli/auth.js')]);
      report((await etcdOnly(config, 'auth add-node', () => addNode(config, id, newPassword(opts, io.env)))).lines);
    });

  auth
    .command('add-user')
    .description('add a person: operator (submit, cancel, queues) or reader (look only)')
    .argument('<name>', 'etcd user name (the CN of their client certificate, if they use one)')
    .option('--role <role>', 'operator or reader')
    .option('--password-file <file>', 'their password, from this file (or TITAN_AUTH_NEW_PASSWORD); default: certificate only')
    .action(async (name: string, opts: NewUserFlags, command: Command) => {
      const config = await configOf(command, io);
      const [{ etcdOnly }, { addUser, newPassword, parseUserRole }] = await Promise.all([clusterClient(), import('../../internal/cli/auth.js')]);
      const role = parseUserRole(opts.role);
      report((await etcdOnly(config, 'auth add-user', () => addUser(config, name, role, newPassword(opts, io.env)))).lines);
    });
}
