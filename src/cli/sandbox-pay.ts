import { CONTROL_API_SUMMARY, startSandbox } from '../payments/sandbox/server.js';

// npm run sandbox:pay: the WeChat Pay v3 sandbox on SANDBOX_PAY_PORT (4010, the default
// SANDBOX_PAY_URL of the server) until SIGINT/SIGTERM. Keys are new at every start; the server
// fetches them from GET /sandbox/credentials.
const port = Number(process.env.SANDBOX_PAY_PORT || 4010);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`SANDBOX_PAY_PORT must be a port number, got "${process.env.SANDBOX_PAY_PORT}"`);
  process.exit(2);
}
const delayMs = Number(process.env.SANDBOX_PAY_DELAY_MS || 0);
const sandbox = await startSandbox({ port, host: process.env.SANDBOX_PAY_HOST ?? '127.0.0.1', delayMs: Number.isFinite(delayMs) ? delayMs : 0 });
console.log(`WeChat Pay v3 sandbox listening on ${sandbox.url} (mchid ${sandbox.credentials.mchid}, ${sandbox.credentials.publicKeyId})`);
console.log(`Control API:\n${CONTROL_API_SUMMARY.replace(/^/gm, '  ')}`);

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log(`${signal}: stopping the sandbox`);
  await sandbox.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
