// Experiment loading: the public face of engine/config.
export { ConfigError, formatIssue, formatIssueLine, didYouMean, type ConfigIssue } from './errors.js';
export type { Registry } from './registry-type.js';
export { loadExperiment, configErrorAt, type LoadOptions } from './load.js';
export { OVERRIDES_FILE } from './overrides.js';
