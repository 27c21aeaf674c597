import type { Highs, InitOptions, Model } from 'highs';
import type { PackingModel } from './bound.js';

/** Upper bounds on the optima of packing models (maximization), one per model. */
export type PackingSolver = (models: readonly PackingModel[]) => number[];

export interface PackingSolverOptions {
  /** Seconds one solve may take; past it an integer model's proven bound is taken (default 60). */
  timeLimitSeconds?: number;
}

/**
 * HiGHS (compiled to WebAssembly, the `highs` package), loaded on first use
 * so nothing else pays for it. Models that share their structure (withCounts)
 * are solved in one instance, each from the last one's basis. For an integer
 * model the answer is the solver's proven dual bound, not its best packing:
 * an upper bound even when the search stops early; for a continuous one,
 * the optimum.
 */
export async function loadPackingSolver(options: PackingSolverOptions = {}): Promise<PackingSolver> {
  // The package's types describe its CommonJS build, where the loader is
  // `.default` of the module; imported as ESM (highs.mjs) it is the default.
  const { default: loadHighs } = (await import('highs')) as unknown as { default: (options?: InitOptions) => Promise<Highs> };
  const highs = await loadHighs();
  const status = highs.constants.modelStatus;

  const load = (model: PackingModel): Model => {
    const solver = highs.createModel();
    solver.options.set({ output_flag: false, time_limit: options.timeLimitSeconds ?? 60 });
    const starts = [0];
    const indices: number[] = [];
    const values: number[] = [];
    for (const row of model.rows) {
      for (const [column, value] of [...row.terms].sort((a, b) => a[0] - b[0])) {
        indices.push(column);
        values.push(value);
      }
      starts.push(indices.length);
    }
    solver.passModel({
      numCols: model.columns.length,
      numRows: model.rows.length,
      sense: highs.constants.objectiveSense.maximize,
      colCost: model.columns.map((c) => c.cost),
      colLower: model.columns.map(() => 0),
      colUpper: model.columnUpper,
      rowLower: model.rows.map(() => -highs.infinity),
      rowUpper: model.rowUpper,
      matrix: { format: 'csr', numRows: model.rows.length, numCols: model.columns.length, starts, indices, values },
      integrality: model.columns.map((c) => (c.integer ? highs.constants.variableType.integer : highs.constants.variableType.continuous)),
    });
    return solver;
  };

  return (models) => {
    let loaded: { model: PackingModel; solver: Model } | undefined;
    try {
      return models.map((model) => {
        if (model.columns.length === 0) return 0;
        if (loaded && loaded.model.columns === model.columns && loaded.model.rows === model.rows) {
          const all = (n: number) => ({ kind: 'range', from: 0, to: n - 1 }) as const;
          loaded.solver.changeColsBounds(all(model.columns.length), model.columns.map(() => 0), model.columnUpper);
          loaded.solver.changeRowsBounds(all(model.rows.length), model.rows.map(() => -highs.infinity), model.rowUpper);
        } else {
          loaded?.solver.dispose();
          loaded = { model, solver: load(model) };
        }
        const solver = loaded.solver;
        solver.run();
        const integer = model.columns.some((c) => c.integer);
        const outcome = solver.getModelStatus();
        if (outcome === status.optimal || (integer && outcome === status.timeLimit)) {
          const bound = integer ? Number(solver.info.get('mip_dual_bound')) : solver.getObjectiveValue();
          if (Number.isFinite(bound)) return bound;
        }
        throw new Error(`the packing bound's solver stopped with model status ${outcome}`);
      });
    } finally {
      loaded?.solver.dispose();
    }
  };
}
