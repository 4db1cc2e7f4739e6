import { createHmac, generateKeyPairSync } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { identityFromHeader, signToken, tokenKeys, verifyToken, type TokenKeys } from '../../src/auth.js';

const SECRET = 'unit-secret-0123456789abcdef';
const KEYS: TokenKeys = { secret: SECRET };
const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
/** A token with any header and payload, signed HS256 with `secret` over exactly what it carries. */
const forge = (header: unknown, payload: unknown, secret = SECRET) => {
  const signed = `${b64(header)}.${b64(payload)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
};
const rejection = (token: string, nowMs?: number, keys = KEYS): string | null => {
  try {
    verifyToken(keys, token, nowMs);
    return null;
  } catch (err) {
    expect((err as { code?: string }).code).toBe('UNAUTHENTICATED');
    return (err as Error).message;
  }
};

test('a token signed by signToken names its user and role', () => {
  expect(verifyToken(KEYS, signToken(KEYS, 'user-1', 'user'))).toMatchObject({ id: 'user-1', role: 'user' });
  expect(verifyToken(KEYS, signToken(KEYS, 'boss', 'admin'))).toMatchObject({ id: 'boss', role: 'admin' });
  expect(identityFromHeader(KEYS, `Bearer ${signToken(KEYS, 'user-2', 'user')}`)).toMatchObject({ id: 'user-2', role: 'user' });
  expect(identityFromHeader(KEYS, undefined)).toBeNull();
  const now = Date.now();
  expect(verifyToken(KEYS, signToken(KEYS, 'u', 'user', 60), now).expiresAt!.getTime()).toBeGreaterThanOrEqual(Math.floor(now / 1000) * 1000 + 60_000);
});

test('expiry and not-before are honoured to the second', () => {
  const now = Date.now();
  const token = jwt.sign({ role: 'user', exp: Math.floor(now / 1000) + 60 }, SECRET, { algorithm: 'HS256', subject: 'u' });
  const exp = (jwt.decode(token) as { exp: number }).exp;
  expect(rejection(token, exp * 1000 - 1)).toBeNull();
  expect(rejection(token, exp * 1000)).toBe('Invalid token: jwt expired');
  expect(rejection(signToken(KEYS, 'u', 'user', 7 * 24 * 3600), now + 8 * 24 * 3600_000)).toBe('Invalid token: jwt expired');

  const later = jwt.sign({ role: 'user' }, SECRET, { algorithm: 'HS256', subject: 'u', notBefore: 60, expiresIn: 3600 });
  const nbf = (jwt.decode(later) as { nbf: number }).nbf;
  expect(rejection(later, nbf * 1000 - 1)).toBe('Invalid token: jwt not active');
  expect(rejection(later, nbf * 1000)).toBeNull();
  expect(rejection(forge({ alg: 'HS256' }, { sub: 'u', role: 'user', exp: 'never' }))).toMatch(/^Invalid token: /);
});

test('another key, another algorithm, a changed payload or signature are refused', () => {
  const good = signToken(KEYS, 'u', 'user');
  const [header, payload, signature] = good.split('.') as [string, string, string];
  expect(rejection(signToken({ secret: 'another-secret-0123456789abcdef' }, 'u', 'user'))).toBe('Invalid token: invalid signature');
  expect(rejection(good)).toBeNull();
  // Made an admin by editing the payload, signature kept.
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
  expect(rejection(`${header}.${b64({ ...claims, role: 'admin' })}.${signature}`)).toBe('Invalid token: invalid signature');
  // The same signature in another encoding (padding, a trailing character) is not the signature.
  expect(rejection(`${good}=`)).toMatch(/^Invalid token: /);
  expect(rejection(`${good}A`)).toMatch(/^Invalid token: /);
  expect(rejection(`${header}.${payload}.${Buffer.from(signature, 'base64url').toString('base64')}`)).toMatch(/^Invalid token: /);

  expect(rejection(jwt.sign({ role: 'user' }, SECRET, { algorithm: 'HS512', subject: 'u' }))).toBe('Invalid token: invalid algorithm');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  expect(rejection(jwt.sign({ role: 'user' }, privateKey, { algorithm: 'RS256', subject: 'u' }))).toBe('Invalid token: invalid algorithm');
  // alg none: unsigned, or with a signature anyway.
  expect(rejection(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u', role: 'admin' })}.`)).toMatch(/^Invalid token: /);
  expect(rejection(forge({ alg: 'none' }, { sub: 'u', role: 'admin' }))).toMatch(/^Invalid token: /);
});

test('malformed tokens and claims are refused with a reason', () => {
  for (const token of ['', 'abc', 'a.b', 'a.b.c.d', '.b.c', 'a..c', `${b64({ alg: 'HS256' })}.${b64({})}`, 'not json.x.y', `${b64('[1]')}.${b64({})}.x`]) {
    expect(rejection(token)).toMatch(/^Invalid token: /);
  }
  expect(rejection(forge({ alg: 'HS256' }, [1, 2]))).toMatch(/^Invalid token: /);
  expect(rejection(forge({ alg: 'HS256' }, 'just text'))).toMatch(/^Invalid token: /);
  expect(rejection(forge({ alg: 'HS256' }, { role: 'user' }))).toBe('Invalid token: no subject');
  expect(rejection(forge({ alg: 'HS256' }, { sub: 'x'.repeat(129), role: 'user' }))).toBe('Invalid token: no subject');
  expect(rejection(forge({ alg: 'HS256' }, { sub: 'u', role: 'root' }))).toBe('Invalid token: role must be user or admin');
  expect(() => identityFromHeader(KEYS, 'Basic abc')).toThrow('Authorization must be "Bearer <token>"');
});

test('a token without an expiry is refused, however well signed', () => {
  const forever = jwt.sign({ role: 'admin' }, SECRET, { algorithm: 'HS256', subject: 'boss' });
  expect(rejection(forever)).toBe('Invalid token: no expiry (exp)');
  expect(rejection(forge({ alg: 'HS256', typ: 'JWT' }, { sub: 'boss', role: 'admin' }))).toBe('Invalid token: no expiry (exp)');
  expect(() => identityFromHeader(KEYS, `Bearer ${forever}`)).toThrow('Invalid token: no expiry (exp)');
});

test('with an issuer and an audience configured, tokens carry them and others are refused', () => {
  const keys = tokenKeys({ jwtSecret: SECRET, jwtIssuer: 'https://id.example.com', jwtAudience: 'deadline' });
  expect(keys).toEqual({ secret: SECRET, issuer: 'https://id.example.com', audience: 'deadline' });
  const signed = signToken(keys, 'u', 'user');
  expect(jwt.decode(signed)).toMatchObject({ iss: 'https://id.example.com', aud: 'deadline', sub: 'u' });
  expect(rejection(signed, undefined, keys)).toBeNull();

  const exp = Math.floor(Date.now() / 1000) + 600;
  const claims = { sub: 'u', role: 'user', exp };
  expect(rejection(forge({ alg: 'HS256' }, claims), undefined, keys)).toMatch(/^Invalid token: jwt (issuer|audience) invalid/);
  expect(rejection(forge({ alg: 'HS256' }, { ...claims, iss: 'https://id.example.com' }), undefined, keys)).toMatch(/^Invalid token: jwt audience invalid/);
  expect(rejection(forge({ alg: 'HS256' }, { ...claims, aud: 'deadline' }), undefined, keys)).toMatch(/^Invalid token: jwt issuer invalid/);
  expect(rejection(forge({ alg: 'HS256' }, { ...claims, iss: 'https://evil.example.com', aud: 'deadline' }), undefined, keys)).toMatch(/^Invalid token: jwt issuer invalid/);
  expect(rejection(forge({ alg: 'HS256' }, { ...claims, iss: 'https://id.example.com', aud: 'another-api' }), undefined, keys)).toMatch(/^Invalid token: jwt audience invalid/);
  // Unconfigured, they are not checked: the token above is good for a server that names neither.
  expect(rejection(signed)).toBeNull();
});

test('no keys without a secret: a development config must be resolved first', () => {
  expect(() => tokenKeys({ jwtSecret: undefined, jwtIssuer: undefined, jwtAudience: undefined })).toThrow(/No JWT secret/);
  expect(() => tokenKeys({ jwtSecret: '', jwtIssuer: undefined, jwtAudience: undefined })).toThrow(/No JWT secret/);
});
