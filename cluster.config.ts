import type { StrataFileConfig } from './src/config/schema.js';

/**
 * Node configuration read by `npm start` from the working directory (or the
 * file STRATA_CONFIG names). Every option is optional; environment variables
 * and CLI flags override what is set here. See README.md, "Configuration".
 *
 * Empty on purpose: with nothing set, the node runs the embedded default
 * (L1 only on 127.0.0.1:8080, max(1, cores − 1) shards).
 */
const config: StrataFileConfig = {};

export default config;
