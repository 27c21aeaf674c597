/**
 * The weights of the fgd policy's two refinements over the FGD measure, and
 * the rule that picks them from the mix the policy observes. They were
 * chosen on a grid of synthesized openb variants (`npm run bench:grid`,
 * docs/scheduling.md "Why fgd is the default"), never on the real traces.
 *
 * One trade-off decided both: how much of the submitted CPU goes to CPU-only
 * jobs. While it is small, the cluster runs out of GPUs first, and a node
 * whose CPU is spent strands its free GPUs: avoiding that, and packing GPU
 * jobs onto the fullest GPUs, pays. When CPU-only jobs take most of the CPU,
 * the cluster runs out of CPU first; then nearly every node "strands" GPUs
 * by that measure, the term only spreads GPU jobs, and on the grid it cost
 * up to 1.4 points, as did strong GPU packing.
 */
export interface FgdWeights {
  /** Per free GPU a node's free CPU could not feed (strandedGpus), against fragmentation growth in GPUs. */
  stranding: number;
  /** Per unit of the node's GPU fill after placing, against fragmentation growth in GPUs. */
  gpuPacking: number;
  /** CPU-only jobs: per free GPU of the node, against fragmentation growth in GPUs (in place of stranding). */
  cpuJobFreeGpus: number;
}

/** Stranding weighs fully while CPU-only jobs take at most this share of the submitted CPU... */
const STRANDING_FULL_UNTIL = 0.25;
/** ...and not at all from this share on (linear between). */
const STRANDING_NONE_FROM = 0.4;
const STRANDING_WEIGHT = 2;

/** GPU packing weighs GPU_PACKING_HIGH up to this share of CPU-only CPU... */
const PACKING_HIGH_UNTIL = 0.4;
/** ...and GPU_PACKING_LOW, a tie-break, from this share on (linear between). */
const PACKING_LOW_FROM = 0.55;
const GPU_PACKING_HIGH = 0.1;
const GPU_PACKING_LOW = 0.02;

/**
 * A CPU-only job leans towards nodes with fewer free GPUs, whatever the mix:
 * CPU taken there is CPU that GPU jobs could not have used with those GPUs.
 * Stranding is counted for GPU jobs only. On the grid (seeds 42-51, at 130%),
 * CPU-only ×2 / ×3: stranding on CPU-only jobs too −0.08 / −0.73, on GPU
 * jobs only +0.34 / +0.09, and with this lean +0.53 / +0.14; a lean of 0.2
 * gave +0.48 / −0.24 and 0.5 +0.52 / −0.84, overriding fragmentation growth.
 */
const CPU_JOB_FREE_GPUS = 0.05;

/** 1 up to `full`, 0 from `none` on, linear between. */
function fade(share: number, full: number, none: number): number {
  return Math.min(1, Math.max(0, (none - share) / (none - full)));
}

/** The weights for a mix whose CPU-only jobs take `cpuOnlyShare` (0-1) of the CPU submitted. */
export function fgdWeights(cpuOnlyShare: number): FgdWeights {
  const packing = fade(cpuOnlyShare, PACKING_HIGH_UNTIL, PACKING_LOW_FROM);
  return {
    stranding: STRANDING_WEIGHT * fade(cpuOnlyShare, STRANDING_FULL_UNTIL, STRANDING_NONE_FROM),
    gpuPacking: GPU_PACKING_LOW + (GPU_PACKING_HIGH - GPU_PACKING_LOW) * packing,
    cpuJobFreeGpus: CPU_JOB_FREE_GPUS,
  };
}
