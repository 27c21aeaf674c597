/**
 * Defaults of CLI flags that the help text states, in a module with no
 * imports: `titan --help` shows them without loading the code that applies them.
 */

/** `titan cancel --grace`: time a running job gets between SIGTERM and SIGKILL. */
export const DEFAULT_GRACE = '10s';

/** `titan simulate --seed`: the seed the FGD artefact's runs start from, so a default run compares. */
export const DEFAULT_SEED = 42;
