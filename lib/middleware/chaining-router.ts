/**
 * Upstream affinity (DESIGN.md §3): a continuation must reach the upstream (account, instance)
 * that holds its anchor, while new conversations may be spread. The chaining middleware and the
 * ownership guard pin a request to the upstream recorded with its anchor; `chainingRouter` is a
 * ready `router` for http-proxy-middleware that honours the pin and round-robins the rest, and
 * remembers which upstream it chose so the new response is stored with it.
 *
 * Upstreams are named (`"a"`, `"org-2"`, …): the name is what the store records, the URL can
 * change without breaking stored chains.
 */
import type { IncomingMessage } from 'node:http';

const PINNED = new WeakMap<IncomingMessage, string>();
const ROUTED = new WeakMap<IncomingMessage, string>();

/** Pins a request to the named upstream (the one that produced its anchor). */
export function pinUpstream(req: IncomingMessage, name: string): void {
  PINNED.set(req, name);
}

/** The upstream a request is pinned to, if any. */
export function pinnedUpstream(req: IncomingMessage): string | undefined {
  return PINNED.get(req);
}

/** Records the upstream that serves a request (what a router chose). */
export function recordRoutedUpstream(req: IncomingMessage, name: string): void {
  ROUTED.set(req, name);
}

/** The upstream a router chose for a request, if a router ran. */
export function routedUpstream(req: IncomingMessage): string | undefined {
  return ROUTED.get(req);
}

/** Something that is told when a pin cannot be honoured. */
export interface RouterLogger {
  warn(details: Record<string, unknown>, message: string): void;
}

export interface ChainingRouterOptions {
  /**
   * The upstreams by name, in round-robin order: `{ a: 'https://…', b: 'https://…' }` or
   * `[{ name: 'a', url: 'https://…' }, …]`.
   */
  upstreams: Readonly<Record<string, string>> | ReadonlyArray<{ name: string; url: string }>;
  /**
   * Chooses the upstream of a request that is not pinned (a new conversation).
   * @default round-robin over `upstreams`
   */
  pick?: (req: IncomingMessage, names: readonly string[]) => string;
  /** Told when a request is pinned to a name that is not configured (it is then spread). */
  logger?: RouterLogger;
}

/** An http-proxy-middleware `router` function, with what it knows. */
export interface ChainingRouter {
  (req: IncomingMessage): string;
  /** The configured names, in order. */
  readonly names: readonly string[];
  /** The URL of a name, or `undefined`. */
  urlOf(name: string): string | undefined;
  /** The name chosen for `req` (after the router ran). */
  chosen(req: IncomingMessage): string | undefined;
}

function entriesOf(upstreams: ChainingRouterOptions['upstreams']): Array<[string, string]> {
  if (Array.isArray(upstreams)) {
    return (upstreams as ReadonlyArray<{ name: string; url: string }>).map((u) => [u.name, u.url]);
  }
  return Object.entries(upstreams as Record<string, string>);
}

/**
 * A `router` for `createProxyMiddleware`: a request pinned by the chaining middleware (or the
 * ownership guard) goes to the upstream holding its anchor; any other request goes to the next
 * upstream in round-robin order. The choice is recorded, so the chaining middleware stores the new
 * response with the name of the upstream that produced it. The router runs once per client request
 * (retries reuse the first attempt's target), so the pin also holds across retries.
 *
 * @example
 * const router = chainingRouter({ upstreams: { a: 'https://api.openai.com', b: 'https://eu.example' } });
 * app.post('/v1/responses', express.json(), responseChaining({ store, upstreamMode: 'stateful' }),
 *   createProxyMiddleware({ router, changeOrigin: true, ...relayProxyOptions() }));
 */
export function chainingRouter(options: ChainingRouterOptions): ChainingRouter {
  const entries = entriesOf(options.upstreams);
  if (entries.length === 0) throw new TypeError('chainingRouter: options.upstreams is empty');
  const urls = new Map<string, string>();
  for (const [name, url] of entries) {
    if (typeof name !== 'string' || name === '' || typeof url !== 'string' || url === '') {
      throw new TypeError('chainingRouter: every upstream needs a non-empty name and url');
    }
    if (urls.has(name)) throw new TypeError(`chainingRouter: upstream '${name}' is listed twice`);
    urls.set(name, url);
  }
  const names = Object.freeze([...urls.keys()]);
  let next = 0;
  const roundRobin = (): string => {
    const name = names[next % names.length] as string;
    next = (next + 1) % names.length;
    return name;
  };
  const pick = options.pick ?? (() => roundRobin());

  const router = ((req: IncomingMessage): string => {
    const pinned = PINNED.get(req);
    let name: string | undefined;
    if (pinned !== undefined) {
      if (urls.has(pinned)) name = pinned;
      else
        options.logger?.warn(
          { upstream: pinned },
          'chaining router: pinned upstream is not configured',
        );
    }
    if (name === undefined) {
      const chosen = pick(req, names);
      name = urls.has(chosen) ? chosen : roundRobin();
    }
    ROUTED.set(req, name);
    return urls.get(name) as string;
  }) as ChainingRouter;
  Object.defineProperty(router, 'names', { value: names });
  router.urlOf = (name) => urls.get(name);
  router.chosen = (req) => ROUTED.get(req);
  return router;
}
