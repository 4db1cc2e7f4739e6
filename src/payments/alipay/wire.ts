/**
 * What every Alipay call of ours shares (../alipay.ts for payments, ./refunds.ts for refunds): amounts
 * in integer cents, Beijing time, and the sorting of what the gateway answers into "try again later"
 * (ProviderUnavailable) and Alipay's own business errors (AlipayApiError).
 */
import { AlipayRequestError, type AlipaySdkCommonResult } from 'alipay-sdk';
import { ProviderUnavailable } from '../provider.js';

export const SUCCESS = '10000';
/** "Service currently unavailable": any sub_code under it is Alipay's own failure. */
export const SERVICE_UNAVAILABLE = '20000';
/** Retry-later sub codes (AQC. is a spelling Alipay's own docs list for trade.cancel). */
export const SYSTEM_ERRORS = new Set(['ACQ.SYSTEM_ERROR', 'AQC.SYSTEM_ERROR']);
export const TRADE_NOT_EXIST = 'ACQ.TRADE_NOT_EXIST';

/** One signed gateway call with its `biz_content`, transport and system errors already sorted (AlipayProvider.call). */
export type AlipayExec = (method: string, bizContent: Record<string, unknown>) => Promise<AlipaySdkCommonResult>;

/** An Alipay answer that is neither success, "no such trade" nor a system error: `code`/`subCode` are Alipay's. */
export class AlipayApiError extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
    readonly subCode: string | null,
    message: string,
  ) {
    super(`${method}: ${message}`);
    this.name = 'AlipayApiError';
  }
}

// ---- amounts ----

/** 1234 → "12.34", in integers only (no float on the way). */
export function centsToYuan(cents: number): string {
  if (!Number.isSafeInteger(cents) || cents <= 0) throw new RangeError(`Alipay: amount must be positive integer cents, got ${cents}`);
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/** "1234.56" → 123456, "0.01" → 1, "12.3" → 1230; anything else (negative, 3 decimals, "1e3") → null. */
export function yuanToCents(value: unknown): number | null {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string') return null;
  const m = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text.trim());
  if (!m) return null;
  const cents = Number(m[1]) * 100 + Number((m[2] ?? '').padEnd(2, '0'));
  return Number.isSafeInteger(cents) ? cents : null;
}

// ---- Beijing time ----

/** Asia/Shanghai is UTC+8 with no daylight saving since 1991, so a fixed offset is exact. */
const BEIJING_OFFSET_MS = 8 * 3600_000;

/** "yyyy-MM-dd HH:mm:ss" in Asia/Shanghai. */
export function toBeijingTime(at: Date): string {
  return new Date(at.getTime() + BEIJING_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** The inverse; null unless the text is a real "yyyy-MM-dd HH:mm:ss" time. */
export function fromBeijingTime(text: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(text)) return null;
  const at = new Date(`${text.replace(' ', 'T')}+08:00`);
  // Round trip: refuses 2024-02-30 and 25:00:00, which Date would roll over.
  return Number.isNaN(at.getTime()) || toBeijingTime(at) !== text ? null : at;
}

// ---- errors ----

export function describe(res: AlipaySdkCommonResult): string {
  return [res.code, res.msg, res.sub_code, res.sub_msg].filter((s) => s !== undefined && s !== '').join(' ');
}

export function businessError(method: string, res: AlipaySdkCommonResult): AlipayApiError {
  return new AlipayApiError(method, String(res.code), res.sub_code ? String(res.sub_code) : null, describe(res));
}

/**
 * What `exec` throws, sorted. The SDK (4.14.0) marks neither case with a code, only with its message:
 * "HttpClient Request error: …" (refused, reset, timeout) and "HTTP 请求错误, status: 502".
 */
export function transportError(method: string, err: unknown): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof AlipayRequestError) {
    if (message.startsWith('HttpClient Request error')) {
      return new ProviderUnavailable(`${method}: Alipay unreachable: ${message}`, err);
    }
    const status = /^HTTP 请求错误, status: (\d{3})/.exec(message);
    if (status) {
      return Number(status[1]) >= 500
        ? new ProviderUnavailable(`${method}: Alipay answered HTTP ${status[1]}`, err)
        : new AlipayApiError(method, `HTTP_${status[1]}`, null, `Alipay answered HTTP ${status[1]}`);
    }
  }
  // A response that failed verification (bad or missing sign, unparsable, or an unsigned
  // error_response) is never read as a trade state.
  return new AlipayApiError(method, 'INVALID_RESPONSE', null, `response refused: ${message}${rawError(err)}`);
}

/** An unsigned gateway `error_response` still says what went wrong; shown for the logs, never trusted. */
function rawError(err: unknown): string {
  if (!(err instanceof AlipayRequestError) || !err.responseDataRaw) return '';
  try {
    const body = JSON.parse(err.responseDataRaw) as { error_response?: AlipaySdkCommonResult };
    return body.error_response ? ` (unsigned error_response: ${describe(body.error_response)})` : '';
  } catch {
    return '';
  }
}

