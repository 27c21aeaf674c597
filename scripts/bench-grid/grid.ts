import type { SynthOptions } from '../../internal/simulate/trace-synth.js';

/** One synthesized variant of the grid: knobs of `titan trace synth`, as multipliers of the base's shares. */
export interface GridVariant {
  name: string;
  knobs: Omit<SynthOptions, 'seed'>;
}

/**
 * The grid the fgd policy's weights are chosen on (docs/scheduling.md, "Why
 * fgd is the default"): each knob alone at both ends of its range and in
 * between, then combinations that push the mix the furthest (CPU-heavy with
 * GPU-sharing, few CPU tasks with many multi-GPU ones, and so on). None is
 * the base unchanged: the real traces are kept for reporting.
 */
export const GRID: readonly GridVariant[] = [
  { name: 'cpu0.25', knobs: { cpuOnly: 0.25 } },
  { name: 'cpu0.5', knobs: { cpuOnly: 0.5 } },
  { name: 'cpu2', knobs: { cpuOnly: 2 } },
  { name: 'cpu3', knobs: { cpuOnly: 3 } },
  { name: 'share0.5', knobs: { gpuShare: 0.5 } },
  { name: 'share1.5', knobs: { gpuShare: 1.5 } },
  { name: 'share2', knobs: { gpuShare: 2 } },
  { name: 'multi0.5', knobs: { multiGpu: 0.5 } },
  { name: 'multi2', knobs: { multiGpu: 2 } },
  { name: 'multi3', knobs: { multiGpu: 3 } },
  { name: 'spec0.2', knobs: { constrained: 0.2 } },
  { name: 'spec0.5', knobs: { constrained: 0.5 } },
  { name: 'cpu3+share2', knobs: { cpuOnly: 3, gpuShare: 2 } },
  { name: 'cpu0.25+multi3', knobs: { cpuOnly: 0.25, multiGpu: 3 } },
  { name: 'cpu2+share0.5+multi2', knobs: { cpuOnly: 2, gpuShare: 0.5, multiGpu: 2 } },
  { name: 'share2+multi3+spec0.3', knobs: { gpuShare: 2, multiGpu: 3, constrained: 0.3 } },
  { name: 'cpu0.5+share1.5+spec0.5', knobs: { cpuOnly: 0.5, gpuShare: 1.5, constrained: 0.5 } },
];
