#!/usr/bin/env -S node --max-semi-space-size=2
// The flag keeps the main thread's young generation at 2 MiB per semi-space instead of V8's 16 (docs/memory.md);
// `npm start` passes the same flag, since a flag cannot be set once V8's heap exists.
import { earlyLogFormat, helpText, loadConfig } from './config/load.js';
import type { StrataConfig } from './config/schema.js';
import { ConfigError, EXIT, PortInUseError, StrataError } from './errors.js';
import { CLOSE_WAIT_MS } from './front/supervisor.js';
import { describeError, errorFields, Logger } from './log.js';
import { startNode } from './node.js';

/** Entry point: `strata [options]`. Exit 2 on bad configuration, 1 on other startup failures. */
async function main(argv: readonly string[], log: { current: Logger }): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(helpText());
    return;
  }
  const config: StrataConfig = await loadConfig({ argv, env: process.env, cwd: process.cwd() });
  const logger = new Logger({ format: config.logFormat });
  log.current = logger;
  // The node logs its start, configuration, listening line and L2 state (docs/logs.md).
  const node = await startNode(config, { log: logger });
  let signalled = false;
  const stop = (signal: string) => {
    if (signalled) return;
    signalled = true;
    logger.event('node.draining', { signal, drainTimeoutMs: config.drainTimeoutMs }, `strata: ${signal}: draining`);
    // The drain (a hung front is waited for CLOSE_WAIT_MS past it), the fronts' stop (CLOSE_WAIT_MS), then the workers, PostgreSQL and the L2.
    const waitedMs = config.drainTimeoutMs + 2 * CLOSE_WAIT_MS + 1500;
    const force = setTimeout(() => {
      logger.event('node.drain_timeout', { waitedMs }, 'strata: drain took too long; exiting');
      process.exit(EXIT.FAILURE);
    }, waitedMs);
    force.unref();
    node.close().then(
      () => {
        logger.event('node.stopped', {}, 'strata: stopped');
        process.exit(EXIT.OK);
      },
      (err: unknown) => {
        // A StrataError's message is the node's own words; another error's may quote data (docs/logs.md).
        const why = err instanceof StrataError ? `[${err.code}] ${err.message}` : describeError(err);
        logger.event('node.stop_failed', errorFields(err), `strata: shutdown failed: ${why}`);
        process.exit(EXIT.FAILURE);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

// Until the configuration is loaded, failures are logged in the format its flag or variable names, if valid.
const log = { current: new Logger({ format: earlyLogFormat(process.argv.slice(2), process.env) }) };
main(process.argv.slice(2), log).catch((err: unknown) => {
  // A bad option, whether loading the configuration or starting the node found it (an advertise URL derived from the host name).
  if (err instanceof ConfigError) {
    log.current.event('node.start_failed', { code: err.code, exitCode: EXIT.CONFIG, option: err.option }, `strata: ${err.message}`);
    process.exit(EXIT.CONFIG);
  }
  const code = err instanceof StrataError ? err.code : null;
  const exitCode = err instanceof PortInUseError ? EXIT.PORT_IN_USE : EXIT.FAILURE;
  // Nothing has been served yet: the message holds no request data.
  log.current.event(
    'node.start_failed',
    { code, exitCode },
    `strata: cannot start${code === null ? '' : ` [${code}]`}: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(exitCode);
});
