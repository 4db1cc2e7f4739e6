import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import type { Providers } from '../../payments/registry.js';
import {
  CallbackRejected,
  type CallbackAnswer,
  type PaymentProvider,
  type ProviderNotification,
  type RawCallback,
  type RefundNotification,
} from '../../payments/provider.js';
import type { PaymentRecorder } from './record.js';
import type { RefundService } from '../refunds/service.js';

/** A provider's delivery as it came over HTTP: the path's provider name, the headers and the exact bytes. */
export interface Delivery extends RawCallback {
  /** The `:provider` segment of the path, as sent (looked up, never trusted). */
  provider: string;
  /** The sender's address, for the logs of a refusal. */
  ip?: string;
}

/** What every kind of provider delivery (payment callbacks, refund notifications) carries for the checks here. */
interface Notice {
  notificationId: string;
  replayKey: string | null;
}

/** One kind of delivery: its name in logs, its replay keys' space in Redis, and the provider's verifier for it. */
interface DeliveryKind<N extends Notice> {
  what: string;
  replaySpace: string;
  verify: (provider: PaymentProvider) => ((raw: RawCallback) => Promise<N>) | undefined;
}

/** What checking a delivery needs: the providers, the Redis connection its replay keys live in, and a log. */
export interface DeliveryChecks {
  providers: Providers;
  redis: Redis;
  redisPrefix: string;
  log: Logger;
}

const refusal = (status: number, message: string): CallbackAnswer => ({ status, contentType: 'application/json', body: JSON.stringify({ code: 'FAIL', message }) });

/**
 * The steps every provider delivery shares, before its own settling: find the provider by the path's
 * name, verify the delivery over its raw bytes, refuse a replay. Returns the verified notification, or
 * the answer that ends the delivery here.
 * - An unknown name (looked up in an allowlist, so `constructor` is a name like any other), the sandbox
 *   while PAYMENTS_SANDBOX is off, or a provider without this kind of delivery: 404, the name not echoed.
 * - A forged, stale or probe delivery: the provider's own refusal (401/400), logged.
 * - The same signed delivery seen before (its timestamp and nonce) is a replay, refused: remembered for
 *   15 minutes, well past the 300 s after which its timestamp alone refuses it. Redis away: not checked
 *   (the notification id still makes a second delivery change nothing).
 */
async function checkDelivery<N extends Notice>(
  { providers, redis, redisPrefix, log }: DeliveryChecks,
  delivery: Delivery,
  kind: DeliveryKind<N>,
): Promise<{ provider: PaymentProvider; notification: N } | { answer: CallbackAnswer }> {
  const name = delivery.provider;
  const provider = await providers.byName(name).catch((err) => {
    log.error({ err, provider: name }, `payment provider unavailable for a ${kind.what}`);
    return undefined;
  });
  const verify = provider ? kind.verify(provider) : undefined;
  if (provider === null || (provider && !verify)) return { answer: refusal(404, 'No such payment provider') };
  if (provider === undefined || !verify) return { answer: refusal(503, 'Payment provider not ready') };
  let notification: N;
  try {
    notification = await verify({ headers: delivery.headers, body: delivery.body });
  } catch (err) {
    if (err instanceof CallbackRejected) {
      log.warn({ provider: name, reason: err.message, ip: delivery.ip }, `${kind.what} refused`);
      return { answer: provider.failed(err.status, err.message) };
    }
    log.error({ err, provider: name }, `${kind.what} could not be read`);
    return { answer: provider.failed(500, 'Internal error') };
  }
  if (notification.replayKey) {
    const fresh = await redis.set(`${redisPrefix}:${kind.replaySpace}:${name}:${notification.replayKey}`, '1', 'EX', 900, 'NX').catch(() => 'OK');
    if (fresh === null) {
      log.warn({ provider: name, reason: 'replayed delivery', notificationId: notification.notificationId, ip: delivery.ip }, `${kind.what} refused`);
      return { answer: provider.failed(401, kind.replaySpace === 'callback' ? 'Replayed callback' : 'Replayed notification') };
    }
  }
  return { provider, notification };
}

const PAYMENT_CALLBACK: DeliveryKind<ProviderNotification> = { what: 'payment callback', replaySpace: 'callback', verify: (p) => p.verifyCallback.bind(p) };
// Alipay answers its refunds at once and has no refund notifications: no verifier, so 404 there.
const REFUND_NOTIFICATION: DeliveryKind<RefundNotification> = { what: 'refund notification', replaySpace: 'refund-notify', verify: (p) => p.verifyRefundCallback?.bind(p) };

/**
 * What providers deliver to this server, each answered in the provider's own shape; the HTTP routes
 * only hand over the bytes and write the answer.
 * - Payment callbacks (`POST /api/payments/:provider/notify`): verified over the raw bytes, applied
 *   once (by notification id and by transaction id) in one transaction.
 * - Refund notifications (`POST /api/payments/:provider/refund-notify`, WeChat Pay and the sandbox,
 *   which announce a refund's end; Alipay has none, so 404 there): verified and decrypted the same
 *   way, then settled once through RefundService (a notification for a refund already settled, by the
 *   provider's answer or refund-reconciliation, changes nothing).
 */
export class PaymentCallbacks {
  constructor(
    private readonly checks: DeliveryChecks,
    private readonly recorder: PaymentRecorder,
    private readonly refunds: Pick<RefundService, 'settleNotified'>,
  ) {}

  /** Never throws: every outcome is an answer the provider understands (a failure asks it to send again). */
  async paid(delivery: Delivery): Promise<CallbackAnswer> {
    const checked = await checkDelivery(this.checks, delivery, PAYMENT_CALLBACK);
    if ('answer' in checked) return checked.answer;
    const { provider, notification } = checked;
    const { log } = this.checks;
    const name = delivery.provider;
    if (notification.state !== 'PAID') {
      log.info({ provider: name, orderNo: notification.orderNo, state: notification.state }, 'payment callback without a payment: nothing to do');
      return provider.accepted();
    }
    try {
      // Answered at commit: the events go out meanwhile (the outbox sweep covers a crash before that).
      const { outcome } = await this.recorder.record({ provider: provider.name, paid: notification, source: 'CALLBACK' });
      log.info(
        { provider: name, orderNo: notification.orderNo, transactionId: notification.transactionId, notificationId: notification.notificationId, outcome: outcome.outcome },
        'payment callback applied',
      );
      return provider.accepted();
    } catch (err) {
      // Not applied: the provider sends it again (WeChat for about a day, Alipay 8 times in 25 h).
      log.error({ err, provider: name, orderNo: notification.orderNo }, 'payment callback not applied; the provider will retry');
      return provider.failed(500, 'Internal error');
    }
  }

  /** Never throws, as `paid`. */
  async refunded(delivery: Delivery): Promise<CallbackAnswer> {
    const checked = await checkDelivery(this.checks, delivery, REFUND_NOTIFICATION);
    if ('answer' in checked) return checked.answer;
    const { provider, notification } = checked;
    const { log } = this.checks;
    const name = delivery.provider;
    try {
      const outcome = await this.refunds.settleNotified(provider.name, notification);
      const fields = { provider: name, outRefundNo: notification.outRefundNo, state: notification.state, notificationId: notification.notificationId, outcome };
      if (outcome === 'UNKNOWN') log.warn(fields, 'refund notification for no refund of ours: nothing to do');
      else log.info(fields, 'refund notification applied');
      return provider.accepted();
    } catch (err) {
      // Not applied: the provider sends it again, and refund-reconciliation asks meanwhile.
      log.error({ err, provider: name, outRefundNo: notification.outRefundNo }, 'refund notification not applied; the provider will retry');
      return provider.failed(500, 'Internal error');
    }
  }
}
