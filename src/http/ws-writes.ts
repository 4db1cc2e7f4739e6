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

/** Writes one text message to a socket: see `guardWrites`. */
export type SendText = (text: string) => void;

/** The bytes of a server's (unmasked) text frame header for a payload of `length` bytes. */
const headerBytes = (length: number) => (length > 65_535 ? 10 : length > 125 ? 4 : 2);

/**
 * Wraps a server socket's `send` for two things, and returns `sendText`, a cheaper way to send text
 * messages for the subscriptions' hot path (undefined when the socket cannot have it).
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
 *
 * `sendText` frames its messages itself, all those of one turn (up to FLUSH_BYTES) into one buffer
 * written at once: ws's `send` costs a frame header, a string write and the stream's bookkeeping per
 * message, ~3 µs of the server's thread each, 30 ms for 10 watchers of 1,000 auctions ending at one
 * instant (CPU profile, docs/benchmarks.md). The frames are those ws would write: text, final, no
 * mask, no compression (the server negotiates no extension; with one, `sendText` is ws's `send`).
 * Order holds: whatever else is sent or closed on the socket first writes the frames waiting here.
 */
export function guardWrites(socket: WebSocket, guard: WriteGuard): SendText | undefined {
  const raw = (socket as unknown as { _socket?: Socket })._socket;
  if (!raw) return undefined;
  type Send = (data: unknown, optionsOrCb?: unknown, cb?: (err?: Error) => void) => void;
  const send = socket.send.bind(socket) as Send;
  const close = socket.close.bind(socket);
  let corked = false;
  let closing = false;
  let turnEnd = false;
  let texts: string[] = [];
  let textBytes = 0;
  const overLimit = () => socket.bufferedAmount > guard.maxBufferedBytes;
  const closeSlow = () => {
    closing = true;
    texts = [];
    const buffered = socket.bufferedAmount;
    socket.close(SLOW_SUBSCRIBER_CLOSE_CODE, SLOW_SUBSCRIBER_CLOSE_REASON);
    const timer = setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    socket.once('close', () => clearTimeout(timer));
    guard.onSlowClose(buffered);
  };
  const writeTexts = () => {
    if (texts.length === 0) return;
    const batch = texts;
    texts = [];
    textBytes = 0;
    if (closing || socket.readyState !== socket.OPEN) return;
    const lengths = batch.map((t) => Buffer.byteLength(t));
    let total = 0;
    for (const n of lengths) total += headerBytes(n) + n;
    const frames = Buffer.allocUnsafe(total);
    let at = 0;
    for (let i = 0; i < batch.length; i++) {
      const n = lengths[i]!;
      frames[at] = 0x81; // final fragment, text
      if (n <= 125) {
        frames[at + 1] = n;
      } else if (n <= 65_535) {
        frames[at + 1] = 126;
        frames.writeUInt16BE(n, at + 2);
      } else {
        frames[at + 1] = 127;
        frames.writeUInt32BE(Math.floor(n / 2 ** 32), at + 2);
        frames.writeUInt32BE(n >>> 0, at + 6);
      }
      at += headerBytes(n);
      at += frames.write(batch[i]!, at, n, 'utf8');
    }
    raw.write(frames);
  };
  // End of the turn: what waits goes out, and a socket over its limit is closed.
  const endTurn = () => {
    turnEnd = false;
    writeTexts();
    if (corked) {
      corked = false;
      raw.uncork();
    }
    if (!closing && socket.readyState === socket.OPEN && overLimit()) closeSlow();
  };
  const atTurnEnd = () => {
    if (turnEnd) return;
    turnEnd = true;
    setImmediate(endTurn);
  };
  (socket as unknown as { send: Send }).send = (data, optionsOrCb, cb) => {
    const callback = (typeof optionsOrCb === 'function' ? optionsOrCb : cb) as ((err?: Error) => void) | undefined;
    const options = typeof optionsOrCb === 'function' ? undefined : optionsOrCb;
    if (closing || socket.readyState !== socket.OPEN) {
      // Not queued: ws would call back with an error; graphql-ws checks readyState before sending.
      callback?.(new Error('WebSocket is not open'));
      return;
    }
    writeTexts();
    if (!corked) {
      corked = true;
      raw.cork();
      atTurnEnd();
    }
    // A write error also closes the socket, which ends its subscriptions: nothing waits on this callback.
    send(data, options ?? {}, () => {});
    if (corked && raw.writableLength >= FLUSH_BYTES) {
      raw.uncork();
      raw.cork();
    }
    if (overLimit()) {
      // A burst from one turn may be corked here; the limit is for what the kernel will not take.
      if (corked) {
        corked = false;
        raw.uncork();
      }
      if (overLimit()) closeSlow();
    }
    callback?.();
  };
  (socket as unknown as { close: typeof close }).close = (...args) => {
    writeTexts();
    close(...args);
  };
  if (socket.extensions !== '') return (text) => socket.send(text);
  return (text) => {
    if (closing || socket.readyState !== socket.OPEN) return;
    texts.push(text);
    textBytes += text.length;
    // Near the limit the frames go one by one, so a socket closed for its backlog holds at most one
    // frame past it, as with ws's `send`.
    if (textBytes >= FLUSH_BYTES || socket.bufferedAmount + textBytes > guard.maxBufferedBytes) {
      writeTexts();
      if (corked) {
        raw.uncork();
        raw.cork();
      }
      if (overLimit()) closeSlow();
    } else {
      atTurnEnd();
    }
  };
}
