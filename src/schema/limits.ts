import {
  GraphQLError,
  Kind,
  getOperationAST,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/**
 * Refuses hostile operations before they run: too many fragment definitions, too deep (nested
 * selections), too costly (every field costs 1; the children of a field taking `first` count `first`
 * times, with the request's value of a `first: $n`; a connection without `first` and a bid list count
 * 20). One function for HTTP (`answerOverHttp`, before Apollo) and graphql-ws (`onSubscribe`), run
 * before graphql's own validation: the work here is linear in the document, and the cap on repeated
 * keys below keeps what graphql's validation then does linear too.
 *
 * Every operation in the document is checked, not only the one asked for, and every fragment no
 * operation spreads: graphql validates them all. Each operation has its own cost; a document holding
 * an operation the server would refuse is refused, whichever operation it names.
 *
 * Repeated keys: graphql's OverlappingFieldsCanBeMerged compares, pairwise, the fields that merge under
 * one response key, and their children merged the same way, across fragments too. 1,249 copies of
 * `me { id }` at one level (12 KB, 4,998 tokens, cost 2,498) held the server ~100 ms per request in
 * that rule alone; 20 `__schema` each holding 20 `types { name }` (20 per level, 400 merged one level
 * down, 6 KB) 96 ms. So the fields merging under one key, merged as graphql and execution merge them
 * (fragments and inline fragments of a level included, children of same-key fields merged), number at
 * most MAX_SAME_KEY: the pairs graphql compares are then at most MAX_SAME_KEY / 2 per field.
 * A fragment spread twice at one level counts once, as graphql counts it; one reached along two
 * paths (A and B both spreading C) counts once per path, an upper bound.
 *
 * Aliases count: a field asked for under a second, third… response key at one level (`a: me { id }
 * b: me { id }`) runs its resolver again each time, and costs ALIAS_COST more per extra key. Without
 * this, 2,000 aliases of `me { id }` cost 4,000, passed the limit of 5,000 and made 2,000 database
 * reads (1.6 s of the server for one request); with it they cost 23,990. A plain rename
 * (`auctionId: id`, each field once) costs nothing more, and fields repeated under one key merge into
 * one execution (graphql's own rule), so neither is charged.
 *
 * The work is bounded by the document's size. Each fragment is costed once, at its first spread, and
 * its cost, depth and top-level keys are reused at every other spread: re-walking it at each spread was
 * exponential (32 levels of fragments each spreading two of the next, 2.5 KB, held the event loop
 * more than 10 s). The walk stops as soon as a limit is passed. A fragment hands its level one key per
 * field name plus a count of its other keys, not its whole key set: an exact union of the key sets
 * reachable through fragments is not computable in time linear in the document, and the count can only
 * charge more, and only for a fragment holding aliases of a field that its level holds too.
 *
 * Kept rather than graphql-armor's cost-limit: that one is a validation rule (it cannot see a
 * `first: $n`'s value), weighs fields by depth rather than by page size, and costs a fragment more
 * than the same fields inlined (graphql-armor#474, #529). graphql-js's own `maxTokens` bounds the
 * document before all of this.
 */
export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
  maxFragments: number;
}

/** What one check did: `visits` (selections walked, keys merged) is bounded by a small multiple of the document's tokens. */
export interface LimitStats {
  visits: number;
  /** The cost, exact unless `stopped` (then what was counted when the walk stopped, already over a limit). */
  cost: number;
  depth: number;
  stopped: boolean;
}

const DEFAULT_LIST_SIZE = 20;
/** GraphQL's Int is 32 bits: a larger `first` fails its coercion, so it cannot cost more than this. */
const MAX_INT = 2 ** 31 - 1;
/** A resolver run costs about 10 scalar fields (0.8 ms per `me` against 0.1 ms per `serverTime`, measured). */
export const ALIAS_COST = 10;
/**
 * Fields merging under one response key. Queries a client writes repeat a key a handful of times
 * (a field beside fragments that ask for it too); at 20, graphql's comparisons of one document stay
 * below 10 per field (the 1,249 copies above made 780,000).
 */
export const MAX_SAME_KEY = 20;

/**
 * The fields merging under each response key of one level, and their children merged: what graphql's
 * OverlappingFieldsCanBeMerged compares. A fragment's shape is shared by every level it is spread on
 * (`shared`): a level copies a shared map before adding to it, so merging costs the keys two levels
 * have in common, not the fragment's size.
 */
type Shape = Map<string, Group>;
interface Group {
  count: number;
  children?: Shape;
  /** `children` belongs to a fragment's summary (or to another level): copy before adding to it. */
  shared: boolean;
}

/** A field name's response keys at one level: those seen, and the extra keys counted by the fragments that merged into it. */
type Keys = Map<string, { keys: Set<string>; extra: number }>;

/** One selection level being counted: a field's (or the operation's) selection set, or a fragment's top level. */
interface Level {
  /** The fields' costs, nested levels' included, not yet this level's alias surcharge. */
  cost: number;
  /** Levels below this one. */
  depth: number;
  /** Absolute depth (the operation's selections are at 1) and the product of the enclosing lists' sizes. */
  at: number;
  scale: number;
  /** Set on a field's or the operation's selection set: its alias surcharge is final there. A fragment's top level hands it on. */
  charged: boolean;
  keys?: Keys;
  /** Fragments already merged here: a second spread adds its cost again but no keys. */
  spreads?: Set<string>;
  shape: Shape;
}

/** A fragment costed once: its top level's cost, depth and keys. */
interface Summary {
  cost: number;
  depth: number;
  keys?: Keys;
  shape: Shape;
}

export function limitErrors(
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> | null | undefined,
  limits: QueryLimits,
  stats: LimitStats = { visits: 0, cost: 0, depth: 0, stopped: false },
): GraphQLError[] {
  const fragments = new Map<string, FragmentDefinitionNode>();
  let count = 0;
  for (const def of document.definitions) {
    stats.visits++;
    if (def.kind !== Kind.FRAGMENT_DEFINITION) continue;
    count++;
    if (!fragments.has(def.name.value)) fragments.set(def.name.value, def); // a second of one name is graphql's to report
  }
  if (count > limits.maxFragments) {
    return [new GraphQLError(`Document has ${count} fragments; the limit is ${limits.maxFragments}`, { extensions: { code: 'QUERY_TOO_COMPLEX' } })];
  }
  // The operation asked for first (its numbers are the ones `stats` keeps), then the others, then the
  // fragments none of them spread: graphql validates them all.
  const asked = getOperationAST(document, operationName);
  const roots: Array<OperationDefinitionNode | FragmentDefinitionNode> = asked ? [asked] : [];
  for (const def of document.definitions) if (def.kind === Kind.OPERATION_DEFINITION && def !== asked) roots.push(def);
  roots.push(...fragments.values());
  const walk = new Walk(fragments, aliasedNames(document, stats), limits, stats);
  for (const root of roots) {
    const isOperation = root.kind === Kind.OPERATION_DEFINITION;
    if (!isOperation && walk.summarised(root.name.value)) continue; // walked where it is spread
    const { cost, depth } = walk.root(root.selectionSet, isOperation ? variableValues(root, variables) : new Map<string, unknown>());
    const measured = { cost: walk.stopped ? walk.spent : cost, depth: walk.stopped ? walk.deepest : depth };
    if (root === asked || walk.stopped || walk.repeated !== undefined) Object.assign(stats, measured, { stopped: walk.stopped });
    const stopped = walk.stopped ? ' (counting stopped once past it)' : '';
    if (measured.depth > limits.maxDepth) {
      return [new GraphQLError(`Query is ${measured.depth} levels deep; the limit is ${limits.maxDepth}${stopped}`, { nodes: [root], extensions: { code: 'QUERY_TOO_DEEP' } })];
    }
    if (measured.cost > limits.maxCost) {
      return [new GraphQLError(`Query costs ${measured.cost}; the limit is ${limits.maxCost}${stopped}`, { nodes: [root], extensions: { code: 'QUERY_TOO_COSTLY' } })];
    }
    if (walk.repeated !== undefined) {
      const key = walk.repeated.length > 40 ? `${walk.repeated.slice(0, 40)}…` : walk.repeated;
      return [
        new GraphQLError(`Query asks for "${key}" more than ${MAX_SAME_KEY} times at one level (fragments included); the limit is ${MAX_SAME_KEY}`, {
          nodes: [root],
          extensions: { code: 'QUERY_TOO_COMPLEX' },
        }),
      ];
    }
  }
  return [];
}

/**
 * Field names asked for under more than one response key anywhere in the document: only these can
 * cost an alias surcharge, so only their keys are tracked (none, in a document without aliases).
 */
function aliasedNames(document: DocumentNode, stats: LimitStats): Set<string> {
  const first = new Map<string, string>();
  const aliased = new Set<string>();
  const visit = (set: SelectionSetNode): void => {
    for (const sel of set.selections) {
      stats.visits++;
      if (sel.kind === Kind.FIELD) {
        const key = sel.alias?.value ?? sel.name.value;
        const seen = first.get(sel.name.value);
        if (seen === undefined) first.set(sel.name.value, key);
        else if (seen !== key) aliased.add(sel.name.value);
      }
      if (sel.kind !== Kind.FRAGMENT_SPREAD && sel.selectionSet) visit(sel.selectionSet);
    }
  };
  for (const def of document.definitions) {
    if (def.kind === Kind.OPERATION_DEFINITION || def.kind === Kind.FRAGMENT_DEFINITION) visit(def.selectionSet);
  }
  return aliased;
}

/** The operation's variables as sent, or their defaults in the document: where a `first: $n` finds its page size. */
function variableValues(operation: OperationDefinitionNode, variables: Record<string, unknown> | null | undefined): Map<string, unknown> {
  const values = new Map<string, unknown>();
  for (const def of operation.variableDefinitions ?? []) {
    const name = def.variable.name.value;
    if (variables && Object.hasOwn(variables, name)) values.set(name, variables[name]);
    else if (def.defaultValue?.kind === Kind.INT) values.set(name, Number(def.defaultValue.value));
  }
  return values;
}

class Walk {
  /** The current root's cost counted so far, each part times its enclosing lists' sizes: never more than its cost. */
  spent = 0;
  /** The deepest level of the current root reached, absolute. */
  deepest = 1;
  /** Set once a limit is passed: the walk ends there. */
  stopped = false;
  /** A response key found more than MAX_SAME_KEY times at one level: shapes are no longer merged. */
  repeated: string | undefined;
  /** Fragments costed so far; null while one is being costed (a spread of it then is a cycle, which graphql reports). */
  private readonly summaries = new Map<string, Summary | null>();
  /** The current root's variables (a fragment is costed with those of the root that spreads it first). */
  private variables = new Map<string, unknown>();

  constructor(
    private readonly fragments: Map<string, FragmentDefinitionNode>,
    private readonly aliased: Set<string>,
    private readonly limits: QueryLimits,
    private readonly stats: LimitStats,
  ) {}

  /** An operation, or a fragment no operation spreads, walked as one: its own cost and depth. */
  root(set: SelectionSetNode, variables: Map<string, unknown>): { cost: number; depth: number } {
    this.variables = variables;
    this.spent = 0;
    this.deepest = 1;
    const { cost, depth } = this.selectionSet(set, 1, 1);
    return { cost, depth: 1 + depth };
  }

  summarised(name: string): boolean {
    return this.summaries.has(name);
  }

  /** A field's (or the operation's) selection set at absolute depth `at`: its cost, surcharge included, the levels below it, and its shape. */
  private selectionSet(set: SelectionSetNode, at: number, scale: number): { cost: number; depth: number; shape: Shape } {
    const level: Level = { cost: 0, depth: 0, at, scale, charged: true, shape: new Map() };
    this.collect(set, level);
    let surcharge = 0;
    for (const { keys, extra } of level.keys?.values() ?? []) surcharge += keys.size - 1 + extra;
    return { cost: level.cost + ALIAS_COST * surcharge, depth: level.depth, shape: level.shape };
  }

  private collect(set: SelectionSetNode, level: Level): void {
    for (const sel of set.selections) {
      if (this.stopped) return;
      this.stats.visits++;
      if (sel.kind === Kind.FIELD) this.field(sel, level);
      else if (sel.kind === Kind.INLINE_FRAGMENT) this.collect(sel.selectionSet, level);
      else this.spread(sel.name.value, level);
    }
  }

  private field(node: FieldNode, level: Level): void {
    const name = node.name.value;
    const key = node.alias?.value ?? name;
    if (this.aliased.has(name)) this.addKey(level, name, key, 0);
    if (name !== '__typename') {
      this.spend(level.scale);
      level.cost += 1;
    }
    if (!node.selectionSet) {
      this.merge(level.shape, key, 1, undefined, false);
      return;
    }
    if (!this.reach(level.at + 1)) return;
    const size = this.listSize(node);
    const inner = this.selectionSet(node.selectionSet, level.at + 1, level.scale * size);
    level.cost += inner.cost * size;
    level.depth = Math.max(level.depth, 1 + inner.depth);
    this.merge(level.shape, key, 1, inner.shape, false);
  }

  private spread(name: string, level: Level): void {
    const known = this.summaries.has(name);
    const summary = known ? this.summaries.get(name) : this.summarise(name, level);
    if (!summary) return; // unknown, or a cycle: graphql's own rules report both
    // Costed at its first spread; at another, its cost counts again, at this level's scale.
    if (known) {
      if (!this.reach(level.at + summary.depth)) return;
      this.spend(summary.cost * level.scale);
    }
    level.cost += summary.cost;
    level.depth = Math.max(level.depth, summary.depth);
    if (level.spreads?.has(name)) return; // its keys are here already
    (level.spreads ??= new Set()).add(name);
    // One key per field name (the first), the others counted: what a level can merge in constant time.
    for (const [field, { keys, extra }] of summary.keys ?? []) {
      this.stats.visits++;
      this.addKey(level, field, keys.values().next().value!, keys.size - 1 + extra);
    }
    for (const [key, group] of summary.shape) this.merge(level.shape, key, group.count, group.children, true);
  }

  /** Costs a fragment once, at its first spread (whose depth and scale count what it holds). */
  private summarise(name: string, at: Level): Summary | null {
    const def = this.fragments.get(name);
    this.summaries.set(name, null);
    if (!def) return null;
    const top: Level = { cost: 0, depth: 0, at: at.at, scale: at.scale, charged: false, shape: new Map() };
    this.collect(def.selectionSet, top);
    const summary = { cost: top.cost, depth: top.depth, keys: top.keys, shape: top.shape };
    this.summaries.set(name, summary);
    return summary;
  }

  /** One more response key (and `extra` counted by a fragment) for a field name at a level: each beyond the first costs ALIAS_COST. */
  private addKey(level: Level, field: string, key: string, extra: number): void {
    const keys = (level.keys ??= new Map() as Keys);
    const known = keys.get(field);
    let added = extra;
    if (!known) keys.set(field, { keys: new Set([key]), extra });
    else {
      if (!known.keys.has(key)) {
        known.keys.add(key);
        added++;
      }
      known.extra += extra;
    }
    // A fragment's top level is charged where it is spread.
    if (level.charged && added > 0) this.spend(ALIAS_COST * added * level.scale);
  }

  /**
   * Adds `count` fields under `key`, with their children merged (`shared`: a fragment's, left as they
   * are), to a shape this level owns. Where both sides have children, they merge one level down,
   * the level's own copied first if shared: the work is the keys the two sides have in common.
   */
  private merge(shape: Shape, key: string, count: number, children: Shape | undefined, shared: boolean): void {
    if (this.repeated !== undefined) return;
    this.stats.visits++;
    const group = shape.get(key);
    if (!group) {
      shape.set(key, { count, children, shared });
      if (count > MAX_SAME_KEY) this.repeated = key;
      return;
    }
    group.count += count;
    if (group.count > MAX_SAME_KEY) {
      this.repeated = key;
      return;
    }
    if (!children) return;
    if (!group.children) {
      group.children = children;
      group.shared = shared;
      return;
    }
    if (group.shared) {
      const copy: Shape = new Map();
      for (const [k, g] of group.children) {
        this.stats.visits++;
        copy.set(k, { count: g.count, children: g.children, shared: true });
      }
      group.children = copy;
      group.shared = false;
    }
    for (const [k, g] of children) this.merge(group.children, k, g.count, g.children, shared || g.shared);
  }

  /** Whether a level at this absolute depth is within the limit; past it, the walk stops. */
  private reach(at: number): boolean {
    this.deepest = Math.max(this.deepest, at);
    if (at > this.limits.maxDepth) this.stopped = true;
    return !this.stopped;
  }

  private spend(cost: number): void {
    this.spent += cost;
    if (this.spent > this.limits.maxCost) this.stopped = true;
  }

  /** How many times a field's children run: its `first` (the request's value of a variable), or a default page. */
  private listSize(field: FieldNode): number {
    const first = field.arguments?.find((a) => a.name.value === 'first')?.value;
    const value = first?.kind === Kind.INT ? Number(first.value) : first?.kind === Kind.VARIABLE ? this.variables.get(first.name.value) : undefined;
    if (typeof value === 'number' && Number.isInteger(value)) return Math.min(MAX_INT, Math.max(1, value));
    // No `first`, or one graphql will refuse or replace by the argument's default (20 on every connection).
    if (first || field.name.value === 'bids') return DEFAULT_LIST_SIZE;
    const isConnection = field.selectionSet?.selections.some((s) => s.kind === Kind.FIELD && s.name.value === 'edges');
    return isConnection ? DEFAULT_LIST_SIZE : 1;
  }
}
