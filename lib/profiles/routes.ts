/**
 * Route aliases. Clients reach "the Responses endpoint" under several paths depending on how
 * their base URL was configured: the SDK's `{baseURL}/responses` with or without `/v1`, Codex's
 * `{base_url}/responses` with `base_url = …/codex/v1` (peers.md row 53). A gateway mounts the relay
 * on all of them and rewrites the path to the one its upstream serves (`profilePathRewrite`).
 */
import type { UpstreamProfile } from './types';

/** The default aliases of `POST …/responses`. */
export const RESPONSES_ROUTES: readonly string[] = [
  '/v1/responses',
  '/responses',
  '/codex/v1/responses',
];

export interface ResponsesRoutesOptions {
  /**
   * Replaces the default list.
   * @default RESPONSES_ROUTES
   * @example ['/v1/responses']
   */
  routes?: readonly string[];
  /**
   * Added to the list (e.g. the upstream's own path, to accept Codex-backend-shaped URLs).
   * @default []
   * @example ['/backend-api/codex/responses', '/openai/v1/responses']
   */
  extraRoutes?: readonly string[];
}

/** The alias paths, deduplicated, each starting with `/` and without a trailing slash. */
export function responsesRoutes(options: ResponsesRoutesOptions = {}): string[] {
  const all = [...(options.routes ?? RESPONSES_ROUTES), ...(options.extraRoutes ?? [])];
  const normalized = all.map((route) => {
    const withSlash = route.startsWith('/') ? route : `/${route}`;
    return withSlash.length > 1 ? withSlash.replace(/\/+$/, '') : withSlash;
  });
  return [...new Set(normalized)];
}

/**
 * Mounts `handlers` for `POST` on every alias of `router` (an Express app or Router), and
 * returns the paths.
 *
 * @example
 * ```ts
 * mountResponsesRoutes(app, [upstreamProfile('codex'), relayProxy({ target, proxy: {
 *   pathRewrite: profilePathRewrite(codexProfile()) } })]);
 * ```
 */
export function mountResponsesRoutes<H>(
  router: { post(path: string[], ...handlers: H[]): unknown },
  handlers: readonly H[],
  options: ResponsesRoutesOptions = {},
): string[] {
  const paths = responsesRoutes(options);
  router.post(paths, ...handlers);
  return paths;
}

/**
 * A `pathRewrite` function for http-proxy-middleware that sends every alias to the profile's
 * upstream `path`, keeping the query string. Without a `path` the request path is kept. Use it
 * with a `target` that is an origin (`https://chatgpt.com`), not a base path.
 */
export function profilePathRewrite(
  profile: Pick<UpstreamProfile, 'path'>,
): (path: string) => string {
  const target = profile.path;
  return (path: string) => {
    if (target === undefined) return path;
    const query = path.indexOf('?');
    return query === -1 ? target : `${target}${path.slice(query)}`;
  };
}
