import { generateKeyPairSync } from 'node:crypto';
import { CallbackRejected } from '../../src/payments/provider.js';
import { Keyring, encryptResource, signResponseHeaders } from '../../src/payments/wechat/crypto.js';
import { WechatPayProvider, rfc3339Beijing } from '../../src/payments/wechat/client.js';

// verifyCallback needs no network: callbacks are built here with the same primitives the sandbox uses.
const platform = generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_KEY_ID = 'PUB_KEY_ID_00112233445566778899aabbccddeeff';
const API_V3_KEY = 'abcdefghijklmnopqrstuvwxyz012345';
const MCHID = '1900000109';
const NOW = new Date('2026-11-23T10:00:00Z');

const provider = new WechatPayProvider({
  mchid: MCHID,
  appid: 'wx0000000000000000',
  serialNo: '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C',
  privateKey: merchant.privateKey,
  apiV3Key: API_V3_KEY,
  keyring: new Keyring().addPublicKey(PUBLIC_KEY_ID, platform.publicKey),
  clock: () => NOW,
});

const transaction = {
  mchid: MCHID,
  appid: 'wx0000000000000000',
  out_trade_no: 'D202611230001',
  transaction_id: '4200000000000000000000000001',
  trade_type: 'NATIVE',
  trade_state: 'SUCCESS',
  success_time: '2026-11-23T17:59:58+08:00',
  amount: { total: 1999, payer_total: 1999, currency: 'CNY', payer_currency: 'CNY' },
};

function callback(event: Record<string, unknown> | string, opts: { key?: string; at?: Date } = {}) {
  const body = Buffer.from(typeof event === 'string' ? event : JSON.stringify(event));
  return { headers: signResponseHeaders(platform.privateKey, PUBLIC_KEY_ID, body, opts.at ?? NOW), body };
}

function event(tx: Record<string, unknown> = transaction, overrides: Record<string, unknown> = {}, key = API_V3_KEY) {
  return {
    id: 'EV-2026112300000001',
    create_time: '2026-11-23T18:00:00+08:00',
    resource_type: 'encrypt-resource',
    event_type: 'TRANSACTION.SUCCESS',
    summary: '支付成功',
    resource: { original_type: 'transaction', ...encryptResource(key, JSON.stringify(tx), 'transaction') },
    ...overrides,
  };
}

async function status(p: Promise<unknown>): Promise<number | 'accepted'> {
  try {
    await p;
    return 'accepted';
  } catch (e) {
    if (e instanceof CallbackRejected) return e.status;
    throw e;
  }
}

test('a signed, encrypted callback decodes to a PaymentNotification', async () => {
  await expect(provider.verifyCallback(callback(event()))).resolves.toEqual({
    replayKey: expect.stringMatching(/^\d+:\w+$/),
    notificationId: 'EV-2026112300000001',
    orderNo: 'D202611230001',
    transactionId: '4200000000000000000000000001',
    state: 'PAID',
    amount: 1999,
    paidAt: new Date('2026-11-23T09:59:58Z'),
  });
});

test('headers are found whatever their case (Node lower-cases, other servers may not)', async () => {
  const cb = callback(event());
  const lower = Object.fromEntries(Object.entries(cb.headers).map(([k, v]) => [k.toLowerCase(), v]));
  expect(await status(provider.verifyCallback({ headers: lower, body: cb.body }))).toBe('accepted');
});

test('bad signature, stale or probing callbacks are 401', async () => {
  const cb = callback(event());
  expect(await status(provider.verifyCallback({ headers: cb.headers, body: Buffer.concat([cb.body, Buffer.from(' ')]) }))).toBe(401);
  expect(await status(provider.verifyCallback(callback(event(), { at: new Date(NOW.getTime() - 301_000) })))).toBe(401);
  expect(await status(provider.verifyCallback({ headers: { ...cb.headers, 'Wechatpay-Signature': `WECHATPAY/SIGNTEST/${cb.headers['Wechatpay-Signature']}` }, body: cb.body }))).toBe(401);
  expect(await status(provider.verifyCallback({ headers: { ...cb.headers, 'Wechatpay-Serial': 'PUB_KEY_ID_unknown' }, body: cb.body }))).toBe(401);
  expect(await status(provider.verifyCallback({ headers: {}, body: cb.body }))).toBe(401);
});

test('signed but malformed, foreign or undecryptable callbacks are 400', async () => {
  expect(await status(provider.verifyCallback(callback('{"id":')))).toBe(400);
  expect(await status(provider.verifyCallback(callback(event(transaction, { event_type: 'REFUND.SUCCESS' }))))).toBe(400);
  expect(await status(provider.verifyCallback(callback(event(transaction, { id: undefined }))))).toBe(400);
  expect(await status(provider.verifyCallback(callback(event(transaction, {}, 'zyxwvutsrqponmlkjihgfedcba543210'))))).toBe(400);
  expect(await status(provider.verifyCallback(callback(event({ ...transaction, mchid: '1900000999' }))))).toBe(400);
  expect(await status(provider.verifyCallback(callback(event({ ...transaction, success_time: undefined }))))).toBe(400);
});

test('a callback for another appid or paid in another currency is refused (400), naming what differs', async () => {
  const refusal = async (tx: Record<string, unknown>) => {
    const err = await provider.verifyCallback(callback(event(tx))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallbackRejected);
    return err as CallbackRejected;
  };
  expect(await refusal({ ...transaction, appid: 'wx1111111111111111' })).toMatchObject({ status: 400, message: expect.stringContaining('appid wx1111111111111111') });
  expect(await refusal({ ...transaction, appid: undefined })).toMatchObject({ status: 400, message: expect.stringContaining('appid') });
  expect(await refusal({ ...transaction, amount: { ...transaction.amount, currency: 'USD' } })).toMatchObject({ status: 400, message: expect.stringContaining('USD') });
  expect(await refusal({ ...transaction, amount: { total: 1999 } })).toMatchObject({ status: 400, message: expect.stringContaining('not CNY') });
});

test('answers in WeChat shape: 204 empty, or {"code":"FAIL","message"}', () => {
  expect(provider.accepted()).toEqual({ status: 204, contentType: 'text/plain', body: '' });
  const failed = provider.failed(500, 'Internal error');
  expect(failed.status).toBe(500);
  expect(failed.contentType).toBe('application/json');
  expect(JSON.parse(failed.body)).toEqual({ code: 'FAIL', message: 'Internal error' });
});

test('time_expire is RFC 3339 in Beijing time, whole seconds rounded down', () => {
  expect(rfc3339Beijing(new Date('2026-11-23T16:30:00.999Z'))).toBe('2026-11-24T00:30:00+08:00');
  expect(new Date(rfc3339Beijing(new Date('2026-11-23T16:30:00.999Z'))).getTime()).toBe(Date.parse('2026-11-23T16:30:00Z'));
});

test('the APIv3 key must be 32 bytes', () => {
  expect(
    () =>
      new WechatPayProvider({
        mchid: MCHID,
        appid: 'wx',
        serialNo: 'S',
        privateKey: merchant.privateKey,
        apiV3Key: 'short',
        keyring: new Keyring(),
      }),
  ).toThrow(/32 bytes/);
});
