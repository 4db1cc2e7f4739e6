/**
 * WeChat Pay API v3 primitives on node:crypto, shared by the client (./client.ts) and the project's
 * sandbox (../sandbox/server.ts), so both sides sign and verify with the same ~200 lines.
 * Rules (FIELD-NOTES.md, "WeChat Pay API v3"): SHA256withRSA PKCS#1 v1.5 signatures, base64;
 * responses and callbacks are verified over the RAW body bytes; a timestamp more than 300 s off and
 * the deliberate `WECHATPAY/SIGNTEST/` probes are refused; callback resources are AES-256-GCM.
 */
import {
  X509Certificate,
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';

export const AUTH_SCHEMA = 'WECHATPAY2-SHA256-RSA2048';
export const SIGNTEST_PREFIX = 'WECHATPAY/SIGNTEST/';
/** WeChat's documented replay window: a signed message more than 5 minutes off either way is refused. */
export const MAX_CLOCK_SKEW_SECONDS = 300;
/** The prefix WeChat gives its "WeChat Pay public key" ids; anything else is a platform certificate serial. */
export const PUBLIC_KEY_ID_PREFIX = 'PUB_KEY_ID_';
const GCM_TAG_BYTES = 16;

export type Now = () => Date;

// ---------------------------------------------------------------------------------------------------
// Keys

/** `WECHATPAY_PRIVATE_KEY` and friends may be PEM text or a file path: PEM text starts with `-----BEGIN`. */
export function readPem(textOrPath: string): string {
  const trimmed = textOrPath.trim();
  // Environment variables often carry PEM on one line with literal "\n" escapes instead of newlines.
  if (trimmed.includes('-----BEGIN')) return trimmed.replace(/\\n/g, '\n');
  return readFileSync(trimmed, 'utf8');
}

export function loadPrivateKey(key: string | KeyObject): KeyObject {
  return typeof key === 'string' ? createPrivateKey(readPem(key)) : key;
}

/** A public key, or the public key inside an X.509 certificate. */
export function loadPublicKey(key: string | KeyObject): KeyObject {
  if (typeof key !== 'string') return key.type === 'private' ? createPublicKey(key) : key;
  const pem = readPem(key);
  return pem.includes('BEGIN CERTIFICATE') ? new X509Certificate(pem).publicKey : createPublicKey(pem);
}

// ---------------------------------------------------------------------------------------------------
// Signatures

export function signMessage(privateKey: KeyObject, message: string | Buffer): string {
  return createSign('RSA-SHA256').update(message).sign(privateKey, 'base64');
}

/**
 * The same signature made on libuv's thread pool (`crypto.sign` with a callback), not on the event loop:
 * an RSA-2048 signature is ~0.3 ms, and the server makes one per provider call.
 */
export function signMessageOffLoop(privateKey: KeyObject, message: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) =>
    sign('sha256', typeof message === 'string' ? Buffer.from(message) : message, privateKey, (err, signature) =>
      err ? reject(err) : resolve(signature.toString('base64')),
    ),
  );
}

export function verifyMessage(publicKey: KeyObject, message: string | Buffer, signature: string): boolean {
  try {
    return createVerify('RSA-SHA256').update(message).verify(publicKey, signature, 'base64');
  } catch {
    return false; // a malformed key or signature is simply "not verified"
  }
}

/** `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n`; the body is empty for a GET. */
export function requestMessage(method: string, pathAndQuery: string, timestamp: string, nonce: string, body: string | Buffer = ''): Buffer {
  return Buffer.concat([Buffer.from(`${method.toUpperCase()}\n${pathAndQuery}\n${timestamp}\n${nonce}\n`), Buffer.from(body), Buffer.from('\n')]);
}

/** `TIMESTAMP\nNONCE\nBODY\n`, with the body's exact bytes (re-serialised JSON would not verify). */
export function responseMessage(timestamp: string, nonce: string, body: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`${timestamp}\n${nonce}\n`), Buffer.from(body), Buffer.from('\n')]);
}

/** 32 characters from [0-9A-Z]: WeChat's own nonces look like this. */
export function makeNonce(length = 32): string {
  const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  return out;
}

export function unixSeconds(date: Date): string {
  return String(Math.floor(date.getTime() / 1000));
}

export interface AuthorizationParts {
  mchid: string;
  nonce_str: string;
  timestamp: string;
  serial_no: string;
  signature: string;
}

export interface SignRequestOptions {
  mchid: string;
  serialNo: string;
  privateKey: KeyObject;
  method: string;
  pathAndQuery: string;
  body?: string | Buffer;
  timestamp?: string;
  nonce?: string;
}

/** The `Authorization` header of a merchant request, signed off the event loop. */
export async function buildAuthorization(o: SignRequestOptions): Promise<string> {
  const timestamp = o.timestamp ?? unixSeconds(new Date());
  const nonce = o.nonce ?? makeNonce();
  const signature = await signMessageOffLoop(o.privateKey, requestMessage(o.method, o.pathAndQuery, timestamp, nonce, o.body ?? ''));
  return `${AUTH_SCHEMA} mchid="${o.mchid}",nonce_str="${nonce}",timestamp="${timestamp}",serial_no="${o.serialNo}",signature="${signature}"`;
}

/** The sandbox's side of `buildAuthorization`; null when the header is not a v3 one. */
export function parseAuthorization(header: string | undefined): AuthorizationParts | null {
  if (!header?.startsWith(`${AUTH_SCHEMA} `)) return null;
  const parts: Record<string, string> = {};
  for (const m of header.slice(AUTH_SCHEMA.length + 1).matchAll(/(\w+)="([^"]*)"/g)) parts[m[1]] = m[2]!;
  const { mchid, nonce_str, timestamp, serial_no, signature } = parts;
  if (!mchid || !nonce_str || !timestamp || !serial_no || !signature) return null;
  return { mchid, nonce_str, timestamp, serial_no, signature };
}

// ---------------------------------------------------------------------------------------------------
// The keyring: WeChat Pay public key and platform certificates side by side, picked by serial

interface KeyringEntry {
  key: KeyObject;
  /** Platform certificates expire; the WeChat Pay public key does not. */
  notBefore: Date | null;
  notAfter: Date | null;
}

/**
 * During a migration from platform certificates to the WeChat Pay public key both kinds of
 * `Wechatpay-Serial` arrive (FIELD-NOTES.md), so one map by serial holds them all.
 */
export class Keyring {
  private readonly entries = new Map<string, KeyringEntry>();

  /** The WeChat Pay public key (`PUB_KEY_ID_…`), PEM text, a path or a KeyObject. */
  addPublicKey(id: string, key: string | KeyObject): this {
    if (!id.startsWith(PUBLIC_KEY_ID_PREFIX)) throw new Error(`a WeChat Pay public key id starts with ${PUBLIC_KEY_ID_PREFIX}: ${id}`);
    this.entries.set(id, { key: loadPublicKey(key), notBefore: null, notAfter: null });
    return this;
  }

  /** A platform certificate (PEM text or path); its serial and key come from the certificate itself. */
  addCertificate(pemOrPath: string): string {
    const cert = new X509Certificate(readPem(pemOrPath));
    const serial = normaliseSerial(cert.serialNumber);
    this.entries.set(serial, { key: cert.publicKey, notBefore: cert.validFromDate, notAfter: cert.validToDate });
    return serial;
  }

  serials(): string[] {
    return [...this.entries.keys()];
  }

  /** The key for a serial, or why there is none usable at `now`. */
  lookup(serial: string, now: Date): { key: KeyObject } | { error: 'unknown-serial' | 'certificate-not-valid' } {
    const entry = this.entries.get(serial.startsWith(PUBLIC_KEY_ID_PREFIX) ? serial : normaliseSerial(serial));
    if (!entry) return { error: 'unknown-serial' };
    if ((entry.notBefore && now < entry.notBefore) || (entry.notAfter && now > entry.notAfter)) return { error: 'certificate-not-valid' };
    return { key: entry.key };
  }
}

/** Certificate serials are hex; WeChat prints them upper-case, openssl/Node may drop leading zeros. */
function normaliseSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+(?=.)/, '');
}

// ---------------------------------------------------------------------------------------------------
// Verifying what WeChat Pay (or the sandbox) signed

export interface SignedHeaders {
  serial?: string;
  signature?: string;
  timestamp?: string;
  nonce?: string;
}

export type VerifyFailure =
  | 'missing-headers'
  | 'signtest'
  | 'stale-timestamp'
  | 'unknown-serial'
  | 'certificate-not-valid'
  | 'bad-signature';

export class SignatureRejected extends Error {
  constructor(readonly reason: VerifyFailure, detail: string) {
    super(`WeChat Pay signature rejected (${reason}): ${detail}`);
    this.name = 'SignatureRejected';
  }
}

/** Picks the `Wechatpay-*` headers out of Node's (lower-cased) or fetch's headers, any case. */
export function signedHeaders(headers: Record<string, string | string[] | undefined> | Headers): SignedHeaders {
  const get = (name: string): string | undefined => {
    // Duck-typed: a fetch Headers from another realm (a test VM) fails `instanceof Headers`.
    if (typeof headers.get === 'function') return (headers as Headers).get(name) ?? undefined;
    for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) if (k.toLowerCase() === name) return Array.isArray(v) ? v[0] : v;
    return undefined;
  };
  return {
    serial: get('wechatpay-serial'),
    signature: get('wechatpay-signature'),
    timestamp: get('wechatpay-timestamp'),
    nonce: get('wechatpay-nonce'),
  };
}

/** Throws SignatureRejected unless the headers sign exactly these body bytes with a key we hold. */
export function verifySigned(keyring: Keyring, h: SignedHeaders, body: Buffer, now: Date): void {
  if (!h.serial || !h.signature || !h.timestamp || !h.nonce) throw new SignatureRejected('missing-headers', 'Wechatpay-Serial/Signature/Timestamp/Nonce required');
  // WeChat sends these on purpose to check that merchants really verify; they must never pass.
  if (h.signature.startsWith(SIGNTEST_PREFIX)) throw new SignatureRejected('signtest', 'a WECHATPAY/SIGNTEST/ probe');
  const ts = Number(h.timestamp);
  if (!/^\d+$/.test(h.timestamp) || Math.abs(now.getTime() / 1000 - ts) > MAX_CLOCK_SKEW_SECONDS) {
    throw new SignatureRejected('stale-timestamp', `timestamp ${h.timestamp} is more than ${MAX_CLOCK_SKEW_SECONDS} s from ${now.toISOString()}`);
  }
  const found = keyring.lookup(h.serial, now);
  if ('error' in found) throw new SignatureRejected(found.error, `serial ${h.serial}`);
  if (!verifyMessage(found.key, responseMessage(h.timestamp, h.nonce, body), h.signature)) {
    throw new SignatureRejected('bad-signature', `serial ${h.serial}`);
  }
}

/** The `Wechatpay-*` headers for a response or callback signed with the platform key (sandbox side). */
export function signResponseHeaders(privateKey: KeyObject, serial: string, body: Buffer | string, at: Date = new Date()): Record<string, string> {
  const timestamp = unixSeconds(at);
  const nonce = makeNonce();
  return {
    'Wechatpay-Serial': serial,
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Signature': signMessage(privateKey, responseMessage(timestamp, nonce, body)),
    'Wechatpay-Signature-Type': AUTH_SCHEMA,
  };
}

// ---------------------------------------------------------------------------------------------------
// Callback resources: AEAD_AES_256_GCM with the APIv3 key

export interface EncryptedResource {
  algorithm: 'AEAD_AES_256_GCM';
  ciphertext: string;
  associated_data: string;
  nonce: string;
  original_type?: string;
}

function apiV3KeyBytes(apiV3Key: string | Buffer): Buffer {
  const key = typeof apiV3Key === 'string' ? Buffer.from(apiV3Key, 'utf8') : apiV3Key;
  if (key.length !== 32) throw new Error(`the APIv3 key must be 32 bytes, got ${key.length}`);
  return key;
}

/** The plaintext (UTF-8) of a callback resource; throws when the key, nonce, data or tag do not match. */
export function decryptResource(apiV3Key: string | Buffer, r: Pick<EncryptedResource, 'ciphertext' | 'nonce'> & { associated_data?: string }): string {
  const data = Buffer.from(r.ciphertext, 'base64');
  if (data.length <= GCM_TAG_BYTES) throw new Error('ciphertext shorter than its 16-byte tag');
  const nonce = Buffer.from(r.nonce, 'utf8');
  if (nonce.length !== 12) throw new Error(`the GCM nonce must be 12 bytes, got ${nonce.length}`);
  const decipher = createDecipheriv('aes-256-gcm', apiV3KeyBytes(apiV3Key), nonce);
  decipher.setAAD(Buffer.from(r.associated_data ?? '', 'utf8'));
  decipher.setAuthTag(data.subarray(data.length - GCM_TAG_BYTES));
  return Buffer.concat([decipher.update(data.subarray(0, data.length - GCM_TAG_BYTES)), decipher.final()]).toString('utf8');
}

/** The sandbox's side: ciphertext || tag, base64, with a fresh 12-character nonce unless one is given. */
export function encryptResource(apiV3Key: string | Buffer, plaintext: string, associatedData: string, nonce: string = makeNonce(12)): EncryptedResource {
  const cipher = createCipheriv('aes-256-gcm', apiV3KeyBytes(apiV3Key), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { algorithm: 'AEAD_AES_256_GCM', ciphertext: body.toString('base64'), associated_data: associatedData, nonce };
}
