/**
 * Async iterator helpers that pass `return()` straight to their source. (An async generator cannot:
 * its `return()` waits until it reaches a `yield`, so an unsubscribe would hang until the next event.)
 */
function wrap<T>(source: AsyncIterator<unknown>, next: () => Promise<IteratorResult<T>>): AsyncIterableIterator<T> {
  return {
    next,
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(err?: unknown) {
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

export function mapIterator<T, U>(source: AsyncIterator<T>, fn: (value: T) => U | Promise<U>): AsyncIterableIterator<U> {
  return wrap<U>(source, async (): Promise<IteratorResult<U>> => {
    const r = await source.next();
    return r.done ? { value: undefined, done: true } : { value: await fn(r.value), done: false };
  });
}

export function filterIterator<T>(source: AsyncIterator<T>, keep: (value: T) => boolean): AsyncIterableIterator<T> {
  return wrap(source, async () => {
    for (;;) {
      const r = await source.next();
      if (r.done || keep(r.value)) return r;
    }
  });
}
