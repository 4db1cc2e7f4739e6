import { ConfigError, loadConfig } from '../../src/config.js';
import { maskUrlPasswords, redactor } from '../../src/redact.js';

test('a URL\'s password is masked, its user, host and path kept', () => {
  expect(maskUrlPasswords('postgres://user:secret@host:5432/db')).toBe('postgres://user:***@host:5432/db');
  expect(maskUrlPasswords('could not reach redis://:s3cret@cache:6379/0 (refused)')).toBe('could not reach redis://:***@cache:6379/0 (refused)');
  // An unencoded @ in the password: masked to the last one, as a URL parser reads it.
  expect(maskUrlPasswords('postgresql://app:p@ss@db.internal/deadline')).toBe('postgresql://app:***@db.internal/deadline');
  expect(maskUrlPasswords('mongodb+srv://a:b%40c@cluster0/x, rediss://u:v@r')).toBe('mongodb+srv://a:***@cluster0/x, rediss://u:***@r');
  // Nothing to hide: unchanged.
  for (const plain of ['postgres://postgres@127.0.0.1:5432/deadline', 'redis://127.0.0.1:6379', 'mail me at a@b.c']) expect(maskUrlPasswords(plain)).toBe(plain);
});

test('a DATABASE_URL or REDIS_URL that does not parse is named in the ConfigError without its password', () => {
  const cases: Array<[string, string]> = [
    ['DATABASE_URL', 'postgres://app:hunter2-db@127.0.0.1:54x2/deadline'],
    ['REDIS_URL', 'redis://default:hunter2-redis@cache:port'],
  ];
  for (const [name, value] of cases) {
    let message = '';
    try {
      loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32), [name]: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    expect(message).toMatch(new RegExp(`^Invalid configuration: ${name} must be a URL, got ".*:\\*\\*\\*@`));
    expect(message).not.toContain('hunter2');
  }
});

test('a log line shows no configured password, in a URL or alone, and stays JSON', () => {
  const redact = redactor({
    databaseUrl: 'postgres://app:pa%22ss%40word@db/deadline',
    redisUrl: 'redis://default:r3dis-pass@cache:6379',
    agendaMongoUrl: undefined,
    jwtSecret: 'jwt-secret-0123456789abcdef',
  });
  // ioredis's error for a refused AUTH carries the password in `command.args`.
  const line = JSON.stringify({
    err: { message: 'WRONGPASS invalid username-password pair', command: { name: 'auth', args: ['default', 'r3dis-pass'] } },
    url: 'redis://default:r3dis-pass@cache:6379',
    db: 'pa"ss@word and pa%22ss%40word',
    token: 'jwt-secret-0123456789abcdef',
    msg: 'start-up failed',
  });
  const out = redact(line);
  expect(out).not.toMatch(/r3dis-pass|pa"ss|pa\\"ss|pa%22ss|jwt-secret-0123/);
  expect(JSON.parse(out)).toEqual({
    err: { message: 'WRONGPASS invalid username-password pair', command: { name: 'auth', args: ['default', '***'] } },
    url: 'redis://default:***@cache:6379',
    db: '*** and ***',
    token: '***',
    msg: 'start-up failed',
  });
  // Short passwords are not hunted alone (they would garble every line), still masked in a URL.
  const short = redactor({ databaseUrl: 'postgres://a:ab@db/x', redisUrl: 'redis://127.0.0.1:6379', agendaMongoUrl: undefined, jwtSecret: undefined });
  expect(short('{"msg":"about postgres://a:ab@db/x"}')).toBe('{"msg":"about postgres://a:***@db/x"}');
});
