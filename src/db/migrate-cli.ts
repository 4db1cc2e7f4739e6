import { loadConfig } from '../config.js';
import { createLogger, wantsPrettyLogs } from '../logger.js';
import { redactor } from '../redact.js';
import { ensureDatabase, initOrm, migrate } from './orm.js';

// npm run migrate, the release step: creates the database if missing and applies pending migrations (start-up
// does the same unless MIGRATE_ON_START=false). Several at once are serialised by the advisory lock in migrate().
const config = loadConfig();
const log = createLogger({ level: config.logLevel, redact: redactor(config), instance: config.instanceName, pretty: wantsPrettyLogs(config.nodeEnv) });
await ensureDatabase(config.databaseUrl, log);
const orm = await initOrm(config.databaseUrl);
try {
  await migrate(orm, config.databaseUrl, log);
  log.info('migrations are up to date');
} finally {
  await orm.close();
}
