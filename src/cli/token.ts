import { loadConfig } from '../config.js';
import { signToken } from '../auth.js';

// npm run token -- <userId> [--admin]: prints a JWT signed with the configured JWT_SECRET.
const args = process.argv.slice(2);
const admin = args.includes('--admin');
const userId = args.find((a) => !a.startsWith('--'));
if (!userId) {
  console.error('usage: npm run token -- <userId> [--admin]');
  process.exit(2);
}
const config = loadConfig();
console.log(signToken(config.jwtSecret, userId, admin ? 'admin' : 'user'));
