// A server in a process of its own, for tests that kill it: config from the environment, the URL on stdout.
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { startApp } from '../../src/app.js';

const app = await startApp(loadConfig(process.env), { log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
process.stdout.write(`ready ${app.url}\n`);
