import type { Command } from 'commander';
import { DEFAULT_SEED } from '../../internal/cli/flag-defaults.js';
import type { CliIO } from '../../internal/cli/io.js';
import type { NodeSynthFlags } from '../../internal/cli/node-synth.js';
import { toJson } from '../../internal/cli/output.js';
import { configOf } from './action-kit.js';

/** `titan trace synth-nodes`: a larger (or smaller) cluster from a node list, to measure placement at that scale. */
export function addNodeSynthCommand(trace: Command, io: CliIO): void {
  trace
    .command('synth-nodes')
    .description('a node list of N nodes from a base list: whole copies of it, the remainder a seeded draw (docs/scheduling.md)')
    .option('--base <csv>', 'the node list to copy: sn,cpu_milli,memory_mib,gpu,model')
    .option('--count <n>', 'nodes in the list made (1 to 10000)')
    .option('--seed <n>', `seed of the draw of the remainder (default ${DEFAULT_SEED})`)
    .option('--out <csv>', 'write the node list here and print a summary (default: the list on stdout)')
    .action(async (opts: NodeSynthFlags, command: Command) => {
      const config = await configOf(command, io);
      const { nodeSynth, renderNodeSynthSummary } = await import('../../internal/cli/node-synth.js');
      const { csv, ...summary } = await nodeSynth(opts, config.output === 'json');
      if (config.output === 'json') io.out(toJson(summary));
      else io.out(opts.out === undefined ? csv : renderNodeSynthSummary({ ...summary, csv }));
    });
}
