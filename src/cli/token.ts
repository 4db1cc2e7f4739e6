import { ConfigError, loadConfig } from '../config.js';
import { signToken, tokenKeys } from '../auth.js';
import { resolveJwtSecret } from '../jwt-secret.js';

// npm run token -- <userId> [--admin]: prints a JWT the server accepts, signed with JWT_SECRET or, in
// development without it, with the secret the server keeps in .deadline/jwt-secret (made here if absent),
// and carrying JWT_ISSUER and JWT_AUDIENCE when they are set.
const args = process.argv.slice(2);
const admin = args.includes('--admin');
const userId = args.find((a) => !a.startsWith('--'));
if (!userId) {
  console.error('usage: npm run token -- <userId> [--admin]');
  process.exit(2);
}
let config;
try {
  config = resolveJwtSecret(loadConfig(), process.cwd());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
console.log(signToken(tokenKeys(config), userId, admin ? 'admin' : 'user'));
