import { createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Keyring,
  SignatureRejected,
  buildAuthorization,
  decryptResource,
  encryptResource,
  loadPrivateKey,
  loadPublicKey,
  parseAuthorization,
  readPem,
  requestMessage,
  signMessage,
  signResponseHeaders,
  verifySigned,
  type SignedHeaders,
  type VerifyFailure,
} from '../../src/payments/wechat/crypto.js';

/*
 * Fixtures made once with the openssl CLI (OpenSSL 3.0.19) and committed, so the vectors do not come
 * from the code under test:
 *   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out merchant.pem
 *   openssl dgst -sha256 -sign merchant.pem msg.txt | base64 -w0            (msg.txt = REQUEST below)
 *   openssl req -x509 -newkey rsa:2048 -nodes -keyout cert-key.pem -out cert.pem -days 3650 \
 *     -subj "/C=CN/O=Tenpay.com/OU=Tenpay.com CA Center/CN=Tenpay.com Root CA" \
 *     -set_serial 0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1
 * The AES-GCM vector was made with Python's `cryptography` (AESGCM.encrypt), another implementation.
 */
const MERCHANT_KEY = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDnpAq8mqSeJ3/+
/wvU7/sEKp+8g6xroVoydXJyCjOAoTurNxOKPXO1OOJ/sSRO7fyvmLNqL8Giy566
n+AtPBcCkBHDGGHsjsv/43VpTDOLbqzYPOqvL6THov74fcI1wLn9INpw/+HLEIpN
PjebccL5QlKJyWEU+oPG2wnS5pcrLD01rCPan/i+UksYD2aByqG5K6V4bRNr1FKT
5dWkad0e40tAj1P0vyu9XKj88FqC5whDxeXM24EAB+EjSz6L3RbBBbB5oUVfRVjy
vuf5lixJPA+ByL0hO5bDj43XoN6vr5DrxcxNubGAQiNcYdeGqAoXlpiY+vxod1rY
O6OMkDZfAgMBAAECggEAXWDInz0rzUGZHH9OErnnE8fm+sSN1hmGVb74srYgCuN0
PVIHg3vAUDatP9J2E4dmjJbfBJhZ07mHtC3M3g9SK0tOjbofh5AM9ouIAjmgsb2c
2dK8vIBVSdEQPbXce3TExSDgThsot4Zkaj0Bh501fuvYgAj5JM7UHm6gKC+iktkP
La66M3YbAuwODIrnhhKnfffZZhZuXrcuworm3qZHiiUXWBwnsLF0lOEe7yeagifD
uWhRAxFeCahZu0EpGtPxUOPyQn0CWVTowrMUqtyb/USuZxrWMJZZcUk+zspi2yDB
Ttn5Y4Elmg19C9JQVA2nySbchghEQKViISgX4vuWqQKBgQD6nD6vE9Lb74jvCt1V
KX0d+SXV9f4ldzaFIWG9/Kb4ZoWrJT/14rH0P/m0ueYyqzZAVECrgpgInmoAsoDy
Iu9QtOvDeXElU+wUfEld1+u6fmWa2pKUA8WJ23cRRBYPfxnrlmOmzysNMR9GRBIK
/0g9BWTO2kMx1BXPpN5jwRWgTQKBgQDsn1vXQ4wZB0TW57wIhH9Ebfvf8cDud7n1
ASpqzMGaU3KvzXIx+4VeuyTN5/y8/kh9HhSYyIBLFwxlpKH8D3/W13ZxxNMQZEVz
U8ywFniet2ImXC36uZc/gGpsoFJKf+uaAAMEd1oy0+DpnwJEkJ5e9LEeJVjCPz+N
rRGFfoanWwKBgC1cFmRt/B5ezrQljUYaylCghd6iNavmVfHmxuAyWK5hMBR4G4mP
zJHe+n1hoG7PWnRuS34/lvEIaztRE9G/zP0YoguxcW9GL1bN4CGiMUKCGjXbFejA
fgKjvHtdjXikkrZ3c/X/TVWH7Jc1PubKqfKRhVuDWeIs9v2sY6w+iIGJAoGAFI7r
7dIClBIbmwhbP+ozHIDpx1U7y/w+/dhyFQFhOMVTS47wAwO1XLupwPIM9WaqaaR5
aaTR8LQ58YLSSBIYq1PhCJVvORddKV34hLwPEssgDfEoVYZWa7/+fx2WyL5AfArQ
OE0eWxgpjGKyUb62480irlnUUlwoa2jEAvMxQ80CgYEAhU5PcvyVZPr+uw88Pz6Z
6xMpcYrLp3uXs8iT1Fj3nfHmFLCo6+AFJOJOR1k76lsB/0D76/uX+RBSGm9lZBth
za14O/v4mEhtahVGS0lGoNxPAeOEaXLKabTgQ1PExH5CuGC+UYyOmErb3jv9tIzE
ST8eNnvEjkhg5nBaI8chPO8=
-----END PRIVATE KEY-----`;
const CERT_KEY = `-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC1uSMF9ULHkD1G
BZ9486C4ip/MOK19PPXdbJZDTXfGmxwYVXjVUpq4pynLaC0FL2gG5j7v6r5Uchto
bCBEKYx4pabmgCWJNOU/1TERef8vcC4D5JyKCYslnbIAKN4n1ytQvrk5KyBFDFhs
h/iZ/cS7wZYLR0x7qz4sAu78j+GRCY1NV4EB/caS/RV4Hvrmd1E7xHIoUjTRm9jX
/Fxg/dhbjVP5jt/mb61fi3aQQQQwfE6THmIOL9WhThqkHaU2kjMjVwH2miAYum9Q
FtrSpfQJf69ARSkm2CCQeXnJNV5GkxhSSchbmdIZgoeKGW5sjMA0ZE6XmEkDLBeU
yu4Ed3AhAgMBAAECggEAGuFcBGVvRNzEVjITu6JHW7TUXAg65W5vLJsuLkjBwbov
nDaHGABO4acxyqRKGzJperJz4deWjXWO3Kc4g0ylZN1ABGg1Oof9VzAJFj2LrpqI
kUvaOfLycb8oqtcLZtea+9J9IdnhZ+/3uR9zJGLXcdx5/jNu5VDYcqMryGaHZlrE
UWkrOGHScF3qhuytYPrlnDCwBjoz+XpeXEk7CdQccMwzqcZzn48jC4VO1ulqhc66
bkDtwt24evF5N7aRnYlG+nM3Qm8uEKtrnjwQUURrG/5sxVhmW1sYDW7MO6TV9B52
ZAkHY52JD2nXUrWJvrWRnJAC5PHRWwDmindfunadDwKBgQDhg7nEKpcU469fXwWc
wun+/szTNOOLlOlWgYYImQ9DsKXzyEdZYVg4cRunRXSPucXas7gad2DctQDpTfgG
eFMS0kGtzdwDvC8Pukg72EALBAxuAdbF1OgCMqGDV/zpy4YGiAAi0GOIiPnM96bl
UHdkVjkqDoUo5sJuFA8r4ve1lwKBgQDOSfHEh3JPMmmYn14iTceEUoRPin7bWX+8
ZS6b2InVOTTVs+JVh29ekrs4banGTusn7d7G/CTT34sgqNkc5yDhW/0rRZKSy38Z
dKODeYFH1ffoF+cA/2k3t5pKxI1qImzC/ohsiyOksbxJsPlRJBghyiKVWHqjzCB0
X80LuFNvBwKBgQCTOWzwfSGO+KnIKH/AfJtI5s2PYSrgOEIxQHPhbxNBDLT6txil
aGCw0F7OUBCtuAlMIyIg3Si2TdCff1BZ4PnTAsLwFcH6CkPrD6ESuLXuuyDmPHsb
QkiJDsbUuX+ank0MPINiNwuT2mDCiDdD48leDtBY/Yu/TQ9Hz/6rlwxCVwKBgEVD
tMbtR6dp4OTbFetkvEokvsJKWV/jRC2It8aiRV1vsNrUZHmdWPqjP/OpdqjcVL76
cqPTg7YUSA22Q/gdbv/cODxwRs+9PjbY4BJEGPF62Zt3cxv1pmmL32Wda3IojuZG
Op5fdZ9WAkeoAX6KJQQrb8M/iyY2YutQQ3Pc9z6/AoGAT+hturSBxj66M0zPssgD
6iHo2aEZOfdQG1R9+5juUPVKNVqeqwES4g6ropsgb/fbwskFXkaqeVUEcqFwVEZT
Yh5hKwtiIxgy5kYfKIs3ahZOeqCyjorwGucMpQG7gaB1VAnDo2G5JYzdDAiyQ0rt
SukYguPQSUHOUCOjf6PmjKo=
-----END PRIVATE KEY-----`;
const PLATFORM_CERT = `-----BEGIN CERTIFICATE-----
MIIDnTCCAoWgAwIBAgIUUVfwnv3Alt4V6+gaRwV6cjLxuOEwDQYJKoZIhvcNAQEL
BQAwXjELMAkGA1UEBhMCQ04xEzARBgNVBAoMClRlbnBheS5jb20xHTAbBgNVBAsM
FFRlbnBheS5jb20gQ0EgQ2VudGVyMRswGQYDVQQDDBJUZW5wYXkuY29tIFJvb3Qg
Q0EwHhcNMjYxMTIzMTcwMzAwWhcNMzYxMTIwMTcwMzAwWjBeMQswCQYDVQQGEwJD
TjETMBEGA1UECgwKVGVucGF5LmNvbTEdMBsGA1UECwwUVGVucGF5LmNvbSBDQSBD
ZW50ZXIxGzAZBgNVBAMMElRlbnBheS5jb20gUm9vdCBDQTCCASIwDQYJKoZIhvcN
AQEBBQADggEPADCCAQoCggEBALW5IwX1QseQPUYFn3jzoLiKn8w4rX089d1slkNN
d8abHBhVeNVSmrinKctoLQUvaAbmPu/qvlRyG2hsIEQpjHilpuaAJYk05T/VMRF5
/y9wLgPknIoJiyWdsgAo3ifXK1C+uTkrIEUMWGyH+Jn9xLvBlgtHTHurPiwC7vyP
4ZEJjU1XgQH9xpL9FXge+uZ3UTvEcihSNNGb2Nf8XGD92FuNU/mO3+ZvrV+LdpBB
BDB8TpMeYg4v1aFOGqQdpTaSMyNXAfaaIBi6b1AW2tKl9Al/r0BFKSbYIJB5eck1
XkaTGFJJyFuZ0hmCh4oZbmyMwDRkTpeYSQMsF5TK7gR3cCECAwEAAaNTMFEwHQYD
VR0OBBYEFJJciNTHlRkABci1jncXCDxyL2ZuMB8GA1UdIwQYMBaAFJJciNTHlRkA
Bci1jncXCDxyL2ZuMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZIhvcNAQELBQADggEB
AKu76nujaRTg6RxyJxuxeFw3CdB8zkbTiI8vCPjmw/0lERC3JZPI51Ge9CuAp1fi
/PK/k+FaiqvlOuB9gmYDiGDATO4IwKSkEPgjBkzRDzv8OqmAS40uTYseTTWpsNPt
aVUpfB9g0wc9DQZcpuEZvqkMQBlwyj+i809U/ctNVW3R1jwFz9LS3CaXkxlRIpxW
znGCAMiyHk3zQVgI2gAh33AJ8ou3y9MMoxVxJJMH1MqHAeQGx0t7Y40eXXJNKSUl
z+zOmr9TknwmFROO7XDG8Y/yiq/rlpQYVua0gyz6KCWAJaVDG99YRPodRwTcd2+1
1mp3sA7BsvCl//17CeszV/g=
-----END CERTIFICATE-----`;
const CERT_SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';

const REQUEST_BODY =
  '{"appid":"wxd678efh567hg6787","mchid":"1230000109","description":"Image形象店-深圳腾大-QQ公仔","out_trade_no":"1217752501201407033233368018","notify_url":"https://www.weixin.qq.com/wxpay/pay.php","amount":{"total":100,"currency":"CNY"}}';
const REQUEST_SIGNATURE = 'BXYavoCH3p+SLHkSX9r0/colr5dwept8eRdM68U9+w5YuPdTjOdjIHbDvQiAmWiSyHZ7TGKDpEm2/NPCLFyk3o8TPYNPjWj2NADXF/ZItH5OO27KpHlD/AjYvNiEfo0uavn7hw8CR1z/0h/xIT62IaQAd1G5QvdVGawfmQslSfXNMusUlDG4ZkgtGZ36cuYrz7S4NNYytARIvmLy5lPpoylsEbnPwFXCO4pY/sLVim4MW7zWDyTlkh7aSE5DeFVAccgHdapAVzMX1IZ7BQflco6NknM6kCiX31zhutCw221aKkPygV97WEQKfJN4fFqPDCUomieXa5d18YZnw/X9XQ==';

const GCM_KEY = '0123456789abcdefghijABCDEFGHIJ01';
const GCM_NONCE = 'fixedNonce12';
const GCM_PLAINTEXT =
  '{"mchid":"1230000109","out_trade_no":"D20261123000001","transaction_id":"4200000001202611230000000001","trade_state":"SUCCESS","amount":{"total":1999,"payer_total":1999,"currency":"CNY"},"success_time":"2026-11-23T18:00:00+08:00"}';
const GCM_CIPHERTEXT = 'nurjZ5OqYm/vukDCkDrAjB5sGx3BGB2zxwuXabpHC+ErNtU8GlkprVOZzeiGULkZLIM2IPoS7OsljYNuv878TcHDVgKxuVbq6Og8M0YagRwv5C5YcZvDhQWT/ASdDoFNgBQt1uv6bzoZHq0vlgP5AT07uRggaocJOb0Q+znhgWjICANrP24TM3Sdga3HZL627rZUVgwp+TXCs9+fmFAdSYO73z7Sj5+FUYC4/MFNEQVkEE2GFIpzZJjXvj2M9FfZT5n9fpoeJcgplCsB34oKGMh6paw9gmCwYhAy+PPVPR6+DooEoY+BcaU2AZ6NRS/4wvXCWT/x';

const merchantKey = loadPrivateKey(MERCHANT_KEY);
const certKey = loadPrivateKey(CERT_KEY);
const PUBLIC_KEY_ID = 'PUB_KEY_ID_0114232134912410000000000000000000';
/** Inside the certificate's validity (it starts the day it was made). */
const NOW = new Date(new X509Certificate(PLATFORM_CERT).validFromDate.getTime() + 24 * 3600_000);

function keyring(): Keyring {
  const k = new Keyring().addPublicKey(PUBLIC_KEY_ID, createPublicKey(merchantKey).export({ type: 'spki', format: 'pem' }).toString());
  expect(k.addCertificate(PLATFORM_CERT)).toBe(CERT_SERIAL);
  return k;
}

/** Headers as WeChat would send them, from the Wechatpay-* names. */
function headersOf(h: Record<string, string>): SignedHeaders {
  return { serial: h['Wechatpay-Serial'], signature: h['Wechatpay-Signature'], timestamp: h['Wechatpay-Timestamp'], nonce: h['Wechatpay-Nonce'] };
}

function rejection(fn: () => void): VerifyFailure | 'accepted' {
  try {
    fn();
    return 'accepted';
  } catch (e) {
    if (e instanceof SignatureRejected) return e.reason;
    throw e;
  }
}

describe('request signature', () => {
  test('matches the openssl vector (SHA256withRSA, PKCS#1 v1.5, base64)', () => {
    const message = requestMessage('POST', '/v3/pay/transactions/native', '1554208460', '593BEC0C930BF1AFEB40B4A08C8FB242', REQUEST_BODY);
    expect(message.toString('utf8')).toBe(`POST\n/v3/pay/transactions/native\n1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n${REQUEST_BODY}\n`);
    expect(signMessage(merchantKey, message)).toBe(REQUEST_SIGNATURE);
  });

  test('the Authorization header carries it, and parses back', async () => {
    const header = await buildAuthorization({
      mchid: '1230000109',
      serialNo: '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C',
      privateKey: merchantKey,
      method: 'POST',
      pathAndQuery: '/v3/pay/transactions/native',
      body: REQUEST_BODY,
      timestamp: '1554208460',
      nonce: '593BEC0C930BF1AFEB40B4A08C8FB242',
    });
    expect(header).toBe(
      `WECHATPAY2-SHA256-RSA2048 mchid="1230000109",nonce_str="593BEC0C930BF1AFEB40B4A08C8FB242",timestamp="1554208460",serial_no="1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C",signature="${REQUEST_SIGNATURE}"`,
    );
    expect(parseAuthorization(header)).toEqual({
      mchid: '1230000109',
      nonce_str: '593BEC0C930BF1AFEB40B4A08C8FB242',
      timestamp: '1554208460',
      serial_no: '1DDE55AD98ED71D6EDD4A4A16996DE7B47773A8C',
      signature: REQUEST_SIGNATURE,
    });
    expect(parseAuthorization('Bearer abc')).toBeNull();
  });

  test('a GET signs an empty body', () => {
    expect(requestMessage('get', '/v3/pay/transactions/out-trade-no/X1?mchid=1', '1', 'N').toString()).toBe('GET\n/v3/pay/transactions/out-trade-no/X1?mchid=1\n1\nN\n\n');
  });
});

describe('keys are PEM text or a path', () => {
  test('text, one-line text with \\n escapes, and a file all load', () => {
    const dir = mkdtempSync(join(tmpdir(), 'wechatpay-'));
    try {
      const path = join(dir, 'apiclient_key.pem');
      writeFileSync(path, MERCHANT_KEY);
      for (const input of [MERCHANT_KEY, MERCHANT_KEY.replace(/\n/g, '\\n'), path, ` ${path}\n`]) {
        expect(signMessage(loadPrivateKey(input), 'x')).toBe(signMessage(merchantKey, 'x'));
      }
      writeFileSync(join(dir, 'cert.pem'), PLATFORM_CERT);
      expect(readPem(join(dir, 'cert.pem'))).toBe(PLATFORM_CERT);
      // A certificate given as a "public key" yields the key inside it.
      expect(loadPublicKey(PLATFORM_CERT).export({ type: 'spki', format: 'pem' })).toEqual(createPublicKey(certKey).export({ type: 'spki', format: 'pem' }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('verifying responses and callbacks', () => {
  const ts = Math.floor(NOW.getTime() / 1000);
  // Spaces and non-ASCII as WeChat sends them: verification must use these bytes, not a re-serialisation.
  const raw = Buffer.from('{"code_url": "weixin://wxpay/bizpayurl?pr=abc",  "summary":"支付成功"}');

  function signedBy(key = merchantKey, serial = PUBLIC_KEY_ID, at = NOW, body: Buffer = raw): SignedHeaders {
    return headersOf(signResponseHeaders(key, serial, body, at));
  }

  test('the raw bytes verify; the same JSON re-serialised does not', () => {
    const h = signedBy();
    expect(rejection(() => verifySigned(keyring(), h, raw, NOW))).toBe('accepted');
    const reserialised = Buffer.from(JSON.stringify(JSON.parse(raw.toString())));
    expect(rejection(() => verifySigned(keyring(), h, reserialised, NOW))).toBe('bad-signature');
  });

  test('the 300 s window holds both ways', () => {
    const at = (offsetSeconds: number): Date => new Date((ts + offsetSeconds) * 1000);
    const h = signedBy();
    expect(rejection(() => verifySigned(keyring(), h, raw, at(300)))).toBe('accepted');
    expect(rejection(() => verifySigned(keyring(), h, raw, at(-300)))).toBe('accepted');
    expect(rejection(() => verifySigned(keyring(), h, raw, at(301)))).toBe('stale-timestamp');
    expect(rejection(() => verifySigned(keyring(), h, raw, at(-301)))).toBe('stale-timestamp');
    expect(rejection(() => verifySigned(keyring(), { ...h, timestamp: `${ts}.5` }, raw, NOW))).toBe('stale-timestamp');
  });

  test('WECHATPAY/SIGNTEST/ probes and missing headers are refused', () => {
    const h = signedBy();
    expect(rejection(() => verifySigned(keyring(), { ...h, signature: `WECHATPAY/SIGNTEST/${h.signature}` }, raw, NOW))).toBe('signtest');
    expect(rejection(() => verifySigned(keyring(), { ...h, nonce: undefined }, raw, NOW))).toBe('missing-headers');
  });

  test('the keyring picks the WeChat Pay public key and a platform certificate by serial, at once', () => {
    const k = keyring();
    expect(k.serials().sort()).toEqual([CERT_SERIAL, PUBLIC_KEY_ID].sort());
    expect(rejection(() => verifySigned(k, signedBy(merchantKey, PUBLIC_KEY_ID), raw, NOW))).toBe('accepted');
    expect(rejection(() => verifySigned(k, signedBy(certKey, CERT_SERIAL), raw, NOW))).toBe('accepted');
    // Serials in lower case or with a leading zero are the same certificate.
    expect(rejection(() => verifySigned(k, signedBy(certKey, `0${CERT_SERIAL.toLowerCase()}`), raw, NOW))).toBe('accepted');
    // The right signature under the other serial is wrong: the serial decides the key.
    expect(rejection(() => verifySigned(k, signedBy(merchantKey, CERT_SERIAL), raw, NOW))).toBe('bad-signature');
    expect(rejection(() => verifySigned(k, signedBy(certKey, PUBLIC_KEY_ID), raw, NOW))).toBe('bad-signature');
    expect(rejection(() => verifySigned(k, signedBy(certKey, 'ABCDEF'), raw, NOW))).toBe('unknown-serial');
  });

  test("a platform certificate outside its validity is refused; the public key never expires", () => {
    const cert = new X509Certificate(PLATFORM_CERT);
    const before = new Date(cert.validFromDate.getTime() - 60_000);
    const after = new Date(cert.validToDate.getTime() + 60_000);
    for (const now of [before, after]) {
      expect(rejection(() => verifySigned(keyring(), signedBy(certKey, CERT_SERIAL, now), raw, now))).toBe('certificate-not-valid');
      expect(rejection(() => verifySigned(keyring(), signedBy(merchantKey, PUBLIC_KEY_ID, now), raw, now))).toBe('accepted');
    }
  });

  test('a public key id must look like one', () => {
    expect(() => new Keyring().addPublicKey('5157F09E', createPublicKey(merchantKey))).toThrow(/PUB_KEY_ID_/);
  });
});

describe('AEAD_AES_256_GCM callback resources', () => {
  test('decrypts the fixed vector (ciphertext || 16-byte tag, base64)', () => {
    expect(decryptResource(GCM_KEY, { ciphertext: GCM_CIPHERTEXT, nonce: GCM_NONCE, associated_data: 'transaction' })).toBe(GCM_PLAINTEXT);
  });

  test('encryption matches the vector and round-trips', () => {
    expect(encryptResource(GCM_KEY, GCM_PLAINTEXT, 'transaction', GCM_NONCE)).toEqual({
      algorithm: 'AEAD_AES_256_GCM',
      ciphertext: GCM_CIPHERTEXT,
      associated_data: 'transaction',
      nonce: GCM_NONCE,
    });
    const r = encryptResource(GCM_KEY, '{"中文":"支付成功"}', '');
    expect(r.nonce).toHaveLength(12);
    expect(decryptResource(GCM_KEY, r)).toBe('{"中文":"支付成功"}');
  });

  test('a tampered tag, ciphertext, associated data or key is refused', () => {
    const bytes = Buffer.from(GCM_CIPHERTEXT, 'base64');
    const flip = (i: number): string => {
      const copy = Buffer.from(bytes);
      copy[i] = copy[i] ^ 1;
      return copy.toString('base64');
    };
    const base = { ciphertext: GCM_CIPHERTEXT, nonce: GCM_NONCE, associated_data: 'transaction' };
    expect(() => decryptResource(GCM_KEY, { ...base, ciphertext: flip(bytes.length - 1) })).toThrow();
    expect(() => decryptResource(GCM_KEY, { ...base, ciphertext: flip(0) })).toThrow();
    expect(() => decryptResource(GCM_KEY, { ...base, associated_data: 'refund' })).toThrow();
    expect(() => decryptResource('0123456789abcdefghijABCDEFGHIJ02', base)).toThrow();
    expect(() => decryptResource('short', base)).toThrow(/32 bytes/);
  });
});
