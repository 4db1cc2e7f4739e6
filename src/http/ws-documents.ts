import type { DocumentNode } from 'graphql';

/** Texts kept at most, and the longest text kept: see `ValidDocuments`. */
const KEPT_MAX = 100;
const KEPT_MAX_TEXT = 2 * 1024;

/**
 * Subscription documents that passed graphql's validation, by their text, so a text every subscriber
 * of an auction sends is parsed and validated once, not once each. Validation was 2.6 s and parsing
 * 0.3 s of the server's ~12 s of CPU while 2,000 subscribers of one auction connected (1.3 ms a
 * subscribe: graphql's visitor through every rule; CPU profile of `bench/fanout-accept.ts`). The
 * per-subscribe checks that depend on more than the text (depth and cost against the variables, NUL
 * characters in them) still run every time, the limits before validation as before.
 *
 * The texts are the clients': only texts that validated get in, at most KEPT_MAX of them, the least
 * recently used dropped first, and a text over KEPT_MAX_TEXT characters is never kept. A parsed
 * document is ~60 bytes per character of its text (with graphql's locations, which errors need), so
 * at most ~12 MiB; real subscriptions are a few hundred characters (~10 KB each).
 */
export class ValidDocuments {
  private readonly kept = new Map<string, DocumentNode>();

  constructor(
    private readonly max = KEPT_MAX,
    private readonly maxText = KEPT_MAX_TEXT,
  ) {}

  /** The document of a text that validated, now the most recently used. */
  get(text: string): DocumentNode | undefined {
    const document = this.kept.get(text);
    if (document !== undefined) {
      this.kept.delete(text);
      this.kept.set(text, document);
    }
    return document;
  }

  /** Keeps a document graphql has just validated without errors. */
  add(text: string, document: DocumentNode): void {
    if (text.length > this.maxText || this.kept.has(text)) return;
    if (this.kept.size >= this.max) this.kept.delete(this.kept.keys().next().value!);
    this.kept.set(text, document);
  }

  get size(): number {
    return this.kept.size;
  }
}
