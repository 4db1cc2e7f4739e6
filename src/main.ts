import 'reflect-metadata';
import { ConfigError, loadConfig } from './config.js';
import { startApp, type App } from './app.js';
import { createLogger, wantsPrettyLogs } from './logger.js';
import { DEV_SECRET_FILE, resolveJwtSecret } from './jwt-secret.js';
import { redactor } from './redact.js';

let config;
let ownSecret: boolean;
try {
  const loaded = loadConfig();
  ownSecret = !loaded.jwtSecret;
  config = resolveJwtSecret(loaded, process.cwd());
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}
const log = createLogger({ level: config.logLevel, redact: redactor(config), instance: config.instanceName, pretty: wantsPrettyLogs(config.nodeEnv) });
if (ownSecret) log.info({ file: DEV_SECRET_FILE }, 'JWT_SECRET unset: development tokens are signed with this server\'s own secret (npm run token reads it)');

// Listening from the start: a signal during start-up stops the server as soon as it has started.
let app: App | undefined;
let stopping: NodeJS.Signals | undefined;
const stop = (instance: App) =>
  instance.stop().then(
    () => process.exit(0),
    (err) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  // `on`, not `once`: with no listener left, a second signal would kill the process mid-stop. One
  // comes often: Ctrl-C under `npm start` reaches the server from the terminal and again from npm.
  // The stop goes on (SIGKILL ends a process that must not wait).
  process.on(signal, () => {
    if (stopping) return void log.info({ signal }, 'already stopping');
    stopping = signal;
    log.info({ signal }, 'shutting down');
    if (app) void stop(app);
  });
}

try {
  app = await startApp(config, { log });
  if (stopping) void stop(app);
} catch (err) {
  log.fatal({ err }, 'start-up failed');
  process.exit(1);
}
