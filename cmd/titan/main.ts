#!/usr/bin/env node
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2));
process.exitCode = code;
// The store is closed by now, but gRPC may hold a socket open for a moment:
// exit as soon as stdout and stderr are flushed rather than keep the shell waiting.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
