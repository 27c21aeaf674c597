import type { Command } from 'commander';
import { DEFAULT_SEED } from '../../internal/cli/flag-defaults.js';
import type { CliIO } from '../../internal/cli/io.js';
import { toJson } from '../../internal/cli/output.js';
import type { TraceSynthFlags } from '../../internal/cli/trace-synth.js';
import { configOf } from './action-kit.js';
import { addNodeSynthCommand } from './node-synth-command.js';

/** `titan trace`: tools for cluster traces (openb CSV), on this machine. */
export function addTraceCommands(program: Command, io: CliIO): void {
  const trace = program.command('trace').description('tools for cluster traces (openb CSV), run on this machine');
  trace
    .command('synth')
    .description('a trace of the openb family from a base task list: task types resampled to the shares asked, seeded (docs/scheduling.md)')
    .option('--base <csv>', 'the task list to resample: name,cpu_milli,memory_mib,num_gpu,gpu_milli,...')
    .option('--nodes <csv>', 'node list every generated task must fit: sn,cpu_milli,memory_mib,gpu,model')
    .option('--seed <n>', `seed of the resampling (default ${DEFAULT_SEED})`)
    .option('--cpu-only <x>', "times the base's share of CPU-only tasks, 0.25 to 3 (default 1)")
    .option('--gpu-share <x>', "times the base's share of the GPU request in GPU-sharing tasks, 0.5 to 2 (default 1)")
    .option('--multi-gpu <x>', "times the base's share of the GPU request in multi-GPU tasks, 0.5 to 3 (default 1)")
    .option('--constrained <f>', "fraction of GPU tasks with a gpu_spec, 0 to 0.5 (default: the base's constraints kept)")
    .option('--out <csv>', 'write the trace here and print a summary of the shares (default: the trace on stdout)')
    .action(async (opts: TraceSynthFlags, command: Command) => {
      const config = await configOf(command, io);
      const { renderSynthSummary, traceSynth } = await import('../../internal/cli/trace-synth.js');
      const { csv, ...summary } = await traceSynth(opts, config.output === 'json');
      if (config.output === 'json') io.out(toJson(summary));
      else io.out(opts.out === undefined ? csv : renderSynthSummary({ ...summary, csv }));
    });
  addNodeSynthCommand(trace, io);
}
