import { loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { redactor } from '../redact.js';
import { ensureDatabase, initOrm, migrate } from './orm.js';

// npm run migrate: creates the database if missing and applies pending migrations (start-up does the same).
const config = loadConfig();
const log = createLogger(config.logLevel, 'deadline', redactor(config));
await ensureDatabase(config.databaseUrl, log);
const orm = await initOrm(config.databaseUrl);
try {
  await migrate(orm, config.databaseUrl, log);
  log.info('migrations are up to date');
} finally {
  await orm.close();
}
