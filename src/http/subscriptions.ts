import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Context, DirectSubscriber } from '../context.js';
import { mapIterator } from '../events/iterators.js';
import { resultWithCodes } from './graphql-errors.js';

type PromiseOrValue<T> = T | Promise<T>;

/** One event's result for one operation, with its JSON once a direct subscriber has needed it. */
interface Shared {
  result: PromiseOrValue<ExecutionResult>;
  json?: string;
}

/**
 * Subscriptions whose event is one shared object (every Redis event is parsed once per instance and
 * handed to all its listeners) are executed once per (event, operation, variables, role) and the
 * result is sent to every such subscriber: 10 watchers of 10,000 ending auctions cost 10,000
 * executions, not 100,000. Authorisation happens when subscribing; payload fields must not depend on
 * who asks beyond the role. Events made per subscriber (the countdown) are executed per subscriber.
 *
 * A graphql-ws subscriber (`Context.subscriber`) gets its results written straight to its socket, each
 * shared result turned to JSON once for all of them; see `sendDirect`.
 */
const sharedResults = new WeakMap<object, Map<string, Shared>>();

export async function sharedSubscribe(args: ExecutionArgs) {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream;
  const context = args.contextValue as Context;
  const key = context.operationKey ?? '';
  const run = eventExecutor(args);
  const shared = (payload: unknown): Shared => {
    if (payload === null || typeof payload !== 'object' || !key) return { result: run(payload) };
    let results = sharedResults.get(payload);
    if (!results) sharedResults.set(payload, (results = new Map<string, Shared>()));
    let entry = results.get(key);
    if (!entry) results.set(key, (entry = { result: run(payload) }));
    return entry;
  };
  const events = stream as AsyncIterableIterator<unknown>;
  if (context.subscriber) return sendDirect(events, shared, context.subscriber);
  return mapIterator(events, (payload) => shared(payload).result);
}

/**
 * Writes each result as the graphql-ws `next` message graphql-ws would write, byte for byte
 * (`{"id":…,"type":"next","payload":…}`, the payload being the result's JSON), and hands graphql-ws an
 * iterator that yields nothing and ends when the events end: graphql-ws then sends `complete`, or
 * `error` if they failed, as before. graphql-ws's own path took 7–8 µs of the server's thread per
 * message (its `next` spreads the result, validates and stringifies the whole message, and awaits
 * a promise per send): 10 watchers of 1,000 auctions ending at one instant spent ~75 ms there (CPU
 * profile, docs/benchmarks.md "Same instant: results sent straight to the socket"). Here a shared
 * result is stringified once for every subscriber, and a message is one string concatenation.
 * In order: one event's result is sent before the next event is taken.
 */
function sendDirect(events: AsyncIterableIterator<unknown>, shared: (payload: unknown) => Shared, subscriber: DirectSubscriber): AsyncIterableIterator<never> {
  const prefix = `{"id":${JSON.stringify(subscriber.id)},"type":"next","payload":`;
  let stopped = false;
  const pumping = (async () => {
    try {
      for (;;) {
        const next = await events.next();
        if (next.done || stopped) return;
        const entry = shared(next.value);
        const result = entry.result instanceof Promise ? await entry.result : entry.result;
        if (stopped) return;
        // A result not shared (no entry kept) is stringified for this subscriber alone.
        const json = entry.json ?? (entry.json = JSON.stringify(resultWithCodes(result)));
        subscriber.send(prefix + json + '}');
      }
    } catch (err) {
      await events.return?.();
      throw err;
    }
  })();
  // Observed here too: graphql-ws may return the iterator before it ever asks for a value.
  pumping.catch(() => undefined);
  const stop = async () => {
    stopped = true;
    await events.return?.();
  };
  return {
    next: () => pumping.then(() => ({ value: undefined as never, done: true as const })),
    async return() {
      await stop();
      return { value: undefined as never, done: true };
    },
    async throw(err?: unknown) {
      await stop();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Compiled subscription operations (graphql-jit), by operation text and name: executing one event's
 * selection is a call of the compiled function, not a walk of the document by graphql-js (which
 * collects the fields and reads the directives anew for every event: 24 of the 45 ms a watcher's
 * 1,000 same-instant ends took on the server, CPU profile in docs/benchmarks.md). An operation
 * graphql-jit cannot compile runs on graphql-js.
 *
 * The texts are the clients': bounded to COMPILED_MAX operations, the least recently subscribed dropped
 * first (a client cycling through made-up operations evicts those, not the ones every watcher uses),
 * and a text over COMPILED_MAX_TEXT characters is compiled for its subscription alone, not kept: at
 * most 500 × 32 KiB = 16 MiB of keys (a message may be WS_MAX_MESSAGE_BYTES, 1 MiB), each with its
 * compiled function, itself bounded by the depth and cost limits. Real subscriptions are a few hundred
 * characters.
 */
const COMPILED_MAX = 500;
const COMPILED_MAX_TEXT = 16 * 1024;
/** Per schema (each server has its own; several run in one test process). */
const compiledBySchema = new WeakMap<GraphQLSchema, Map<string, CompiledQuery | null>>();

function eventExecutor(args: ExecutionArgs): (payload: unknown) => PromiseOrValue<ExecutionResult> {
  const byGraphqlJs = (payload: unknown) => execute({ ...args, rootValue: payload });
  const text = (args.contextValue as Context).operationText;
  if (text === undefined) return byGraphqlJs;
  let compiled = compiledBySchema.get(args.schema);
  if (!compiled) compiledBySchema.set(args.schema, (compiled = new Map<string, CompiledQuery | null>()));
  let query = compiled.get(text);
  if (query === undefined) {
    const made = compileQuery(args.schema, args.document, args.operationName ?? undefined);
    query = isCompiledQuery(made) ? made : null;
    if (text.length <= COMPILED_MAX_TEXT) {
      if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value!);
      compiled.set(text, query);
    }
  } else {
    // Most recently used last (a Map keeps insertion order): once per subscribe, not per event.
    compiled.delete(text);
    compiled.set(text, query);
  }
  if (query === null) return byGraphqlJs;
  const jit = query;
  return (payload) => jit.query(payload, args.contextValue, args.variableValues ?? {});
}
