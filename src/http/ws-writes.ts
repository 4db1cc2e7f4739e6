import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';

/**
 * The close code for a subscriber that does not read its events: 1013 "Try Again Later" (IANA's
 * WebSocket registry: the server casts off a client because of a temporary condition). graphql-ws's
 * client counts 1013 among the codes it reconnects after (`isFatalInternalCloseCode`), so a client whose
 * network stalled for a while comes back and subscribes again; 1008 would make it give up for good.
 */
export const SLOW_SUBSCRIBER_CLOSE_CODE = 1013;
export const SLOW_SUBSCRIBER_CLOSE_REASON = 'Subscriber too slow';

/**
 * How long a socket closed for its backlog may take to finish the closing handshake before it is
 * destroyed. Its close frame waits behind the backlog, so a client that never reads never answers;
 * ws would wait 30 s, holding the backlog all that time.
 */
const CLOSE_GRACE_MS = 5_000;

/**
 * Frames a corked socket holds before they go out without waiting for the end of the turn. Events
 * delivered in one long turn (1,000 auction ends committed together reach this instance's listeners in
 * one go) would otherwise all wait for its end, and the client would start reading only then.
 */
const FLUSH_BYTES = 16 * 1024;

export interface WriteGuard {
  /** The most unsent bytes a socket may hold once the kernel has taken what it will. */
  maxBufferedBytes: number;
  /** Called once per socket closed for its backlog. */
  onSlowClose: (bufferedBytes: number) => void;
}

/**
 * Wraps a server socket's `send` for two things:
 *
 * Coalescing: the frames one socket sends in one event-loop turn go out in one write (one per
 * FLUSH_BYTES in a long turn). Without it every
 * subscription event is its own syscall: 10 watchers of 10,000 ending auctions spent 1.5 s of a
 * 3 s run in writev (CPU profile of `npm run bench:auctions`).
 *
 * A bounded backlog: graphql-ws waits for each frame's write callback before it takes the next event,
 * so a client that stops reading does not stop the events: they pile up, parsed, in the event bus's
 * per-subscription queues, without bound and where nothing measures them. Here the callback is called
 * as soon as the frame is queued, so the events flow into the socket's own buffer, whose size ws reports
 * (`bufferedAmount`); past `maxBufferedBytes`, once the kernel has taken what it will, the socket is
 * closed with 1013 and stops taking frames (graphql-ws sends nothing to a socket that is not OPEN).
 * A socket's memory is then at most the limit plus one frame, and other sockets never wait for it.
 */
export function guardWrites(socket: WebSocket, guard: WriteGuard): void {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (!raw) return;
  type Send = (data: unknown, optionsOrCb?: unknown, cb?: (err?: Error) => void) => void;
  const send = socket.send.bind(socket) as Send;
  let corked = false;
  let closing = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    raw.uncork();
  };
  const overLimit = () => socket.bufferedAmount > guard.maxBufferedBytes;
  const closeSlow = () => {
    closing = true;
    const buffered = socket.bufferedAmount;
    socket.close(SLOW_SUBSCRIBER_CLOSE_CODE, SLOW_SUBSCRIBER_CLOSE_REASON);
    const timer = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    socket.once('close', () => clearTimeout(timer));
    guard.onSlowClose(buffered);
  };
  (socket as unknown as { send: Send }).send = (data, optionsOrCb, cb) => {
    const callback = (typeof optionsOrCb === 'function' ? optionsOrCb : cb) as ((err?: Error) => void) | undefined;
    const options = typeof optionsOrCb === 'function' ? undefined : optionsOrCb;
    if (closing || socket.readyState !== socket.OPEN) {
      // Not queued: ws would call back with an error; graphql-ws checks readyState before sending.
      callback?.(new Error('WebSocket is not open'));
      return;
    }
    if (!corked) {
      corked = true;
      raw.cork();
      setImmediate(() => {
        uncork();
        if (!closing && socket.readyState === socket.OPEN && overLimit()) closeSlow();
      });
    }
    // A write error also closes the socket, which ends its subscriptions: nothing waits on this callback.
    send(data, options ?? {}, () => {});
    if (corked && raw.writableLength >= FLUSH_BYTES) {
      raw.uncork();
      raw.cork();
    }
    if (overLimit()) {
      // A burst from one turn may be corked here; the limit is for what the kernel will not take.
      uncork();
      if (overLimit()) closeSlow();
    }
    callback?.();
  };
}
