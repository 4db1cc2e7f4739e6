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
 * Bytes a corked connection holds before they go out without waiting for the end of the turn. Events
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

/** The connection under a WebSocket, as Node's HTTP server hands it over on upgrade (`request.socket`). */
export interface Transport {
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
}

/** Writes one text message to a socket: see `guardWrites`. */
export type SendText = (text: string) => void;

/**
 * `sendText`: how the subscriptions' hot path writes a message to a socket, through ws's public
 * `send`, for two things.
 *
 * Coalescing: the messages one socket is sent in one event-loop turn go out in one write (one per
 * FLUSH_BYTES in a long turn), by corking the connection (`transport`, the upgrade request's socket,
 * which is the one ws writes to) until the turn ends. Without it every subscription event is its own
 * syscall: 10 watchers of 10,000 ending auctions spent 1.5 s of a 3 s run in writev (CPU profile of
 * `npm run bench:auctions`). Whatever else is sent or closed on the socket goes through the same `send`,
 * so order holds. Measured (2026-12-07, a machine loaded by other work): the server thread's CPU for
 * 10 sockets × 1,000 messages of ~250 bytes sent in one turn (median of 10 rounds, 10 alternating runs)
 * is 12–23 ms corked (1.2–2.3 µs a message) and 69–135 ms not (6.9–13.5 µs); `bench:auctions`, 1,000
 * ends at one instant to 10 watchers, p99 509–1,156 ms corked against 573–2,069 ms not (6 alternating
 * runs). The frames this file once built itself and wrote to ws's private `_socket` cost 6–11 ms: ws
 * has no public way to write several messages at once, the ~1 µs a message left between the two. One
 * message per socket (one event to 2,000 sockets; `bench:fanout`'s shape) costs the same corked or
 * not, ~17–28 µs a socket, the write itself.
 *
 * A bounded backlog: the messages are not awaited (graphql-ws's own path waits for each frame's write
 * callback before it takes the next event, so a client that stops reading piles the events up, parsed,
 * in the event bus's per-subscription queues, without bound and where nothing measures them). They flow
 * into the socket's own buffer, whose size ws reports (`bufferedAmount`); past `maxBufferedBytes`, once
 * the kernel has taken what it will, the socket is closed with 1013 and takes no more messages
 * (graphql-ws sends nothing to a socket that is not OPEN). A socket's memory is then at most the limit
 * plus one message, and other sockets never wait for it.
 */
export function guardWrites(socket: WebSocket, guard: WriteGuard, transport?: Transport): SendText {
  let corked = false;
  let closing = false;
  const overLimit = () => socket.bufferedAmount > guard.maxBufferedBytes;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    transport!.uncork();
  };
  const closeSlow = () => {
    closing = true;
    const buffered = socket.bufferedAmount;
    socket.close(SLOW_SUBSCRIBER_CLOSE_CODE, SLOW_SUBSCRIBER_CLOSE_REASON);
    const timer = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    socket.once('close', () => clearTimeout(timer));
    guard.onSlowClose(buffered);
  };
  // End of the turn: what waits goes out, and a socket over its limit is closed.
  const endTurn = () => {
    uncork();
    if (!closing && socket.readyState === socket.OPEN && overLimit()) closeSlow();
  };
  return (text) => {
    if (closing || socket.readyState !== socket.OPEN) return;
    if (transport && !corked) {
      corked = true;
      transport.cork();
      setImmediate(endTurn);
    }
    // A write error also closes the socket, which ends its subscriptions: nothing waits on a callback.
    socket.send(text);
    if (corked && transport!.writableLength >= FLUSH_BYTES) {
      transport!.uncork();
      transport!.cork();
    }
    if (overLimit()) {
      // A burst from one turn may be corked here; the limit is for what the kernel will not take.
      uncork();
      if (overLimit()) closeSlow();
    }
  };
}
