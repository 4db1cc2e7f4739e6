import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * What every log line written while serving one HTTP request carries, whichever module writes it (a
 * resolver, a service, a payment callback, the SQL it runs): the request id. Entered once per request
 * by the HTTP server (src/http/request-id.ts) and read by the logger's `mixin` (src/logger.ts), so no
 * function has to pass it along.
 */
export interface RequestScope {
  requestId: string;
}

export const requestScope = new AsyncLocalStorage<RequestScope>();

/** The id of the request being served here, if any (jobs, timers started at boot and sockets have none). */
export function currentRequestId(): string | undefined {
  return requestScope.getStore()?.requestId;
}
