/**
 * Example (a): adding the relay to a gateway you already run.
 *
 * The gateway: an Express app with its own API-key check that proxies everything under /v1 to
 * the OpenAI API with one http-proxy-middleware instance. The change: the relay's middlewares on
 * `POST /v1/responses` only, in the documented order, in front of a proxy built from the same
 * options plus `...relayProxyOptions()` (which lets the retry guard issue a request again).
 * Every other route — `GET /v1/responses/{id}`, `/v1/models`, `/v1/embeddings` … — is served by
 * the gateway's own proxy exactly as before.
 *
 *   npx tsx examples/existing-gateway.ts
 *
 * runs it against the repository's fake upstream (api.openai.com-like: it stores responses) and
 * prints what happens. To run it for real, call `createGateway({ upstream:
 * 'https://api.openai.com', … })` and `listen()` on the app.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createProxyMiddleware, type Options } from 'http-proxy-middleware';
import OpenAI from 'openai';
import {
  errorEnvelope,
  MemorySessionStore,
  relayErrorHandler,
  relayProxyOptions,
  responseChaining,
  retryGuard,
  sseCompletion,
  type SessionStore,
} from '../lib';
import { startFakeUpstream } from '../test/support/fake-upstream';

export interface GatewayOptions {
  /** The upstream origin, e.g. `https://api.openai.com`. */
  upstream: string;
  /** The gateway's API keys (its own access control, unchanged by the relay). */
  apiKeys: ReadonlySet<string>;
  /** Conversation ownership records (use a `RedisSessionStore` with several instances). */
  store: SessionStore;
  /** HMAC key of tenant ids. */
  tenantSecret: string;
}

export function createGateway(options: GatewayOptions): express.Express {
  const app = express();

  // ── The gateway as it was ─────────────────────────────────────────────────────────────────
  const requireKey = (req: Request, res: Response, next: NextFunction): void => {
    const key = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
    if (key !== undefined && options.apiKeys.has(key)) return next();
    res.status(401).json({
      error: {
        message: 'Unknown API key.',
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
  };
  app.use('/v1', requireKey);
  const proxyOptions: Options<IncomingMessage, ServerResponse> = {
    target: options.upstream,
    changeOrigin: true,
  };
  const proxy = createProxyMiddleware({ ...proxyOptions, pathFilter: '/v1' });

  // ── Added: the relay, on the Responses route only ─────────────────────────────────────────
  app.post(
    '/v1/responses',
    errorEnvelope({ provider: 'openai' }),
    responseChaining({
      store: options.store,
      upstreamMode: 'stateful',
      tenantSecret: options.tenantSecret,
    }),
    sseCompletion(),
    retryGuard({ maxAttempts: 3, baseDelayMs: 100 }),
    createProxyMiddleware({ ...proxyOptions, ...relayProxyOptions() }),
  );

  // ── The gateway as it was ─────────────────────────────────────────────────────────────────
  app.use(proxy);
  app.use(relayErrorHandler());
  return app;
}

export interface ExampleResult {
  lines: string[];
}

/** Runs the gateway against the fake upstream and prints what each step shows. */
export async function runExistingGatewayExample(
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<ExampleResult> {
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    print(line);
  };
  const upstream = await startFakeUpstream({ mode: 'stateful', requireAuth: true });
  const keys = { alice: 'sk-gw-alice-000000000000', bob: 'sk-gw-bob-111111111111' };
  const app = createGateway({
    upstream: upstream.url,
    apiKeys: new Set(Object.values(keys)),
    store: new MemorySessionStore(),
    tenantSecret: 'example-tenant-secret',
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  try {
    const alice = new OpenAI({ apiKey: keys.alice, baseURL: base, maxRetries: 0 });
    const bob = new OpenAI({ apiKey: keys.bob, baseURL: base, maxRetries: 0 });
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'get_weather',
        strict: false,
        parameters: { type: 'object', properties: { city: { type: 'string' } } },
      },
    ];

    // 1. A tool loop on the Responses route (through the relay).
    upstream.script(
      { kind: 'http_error', status: 502 },
      { kind: 'tool_calls', calls: [{ name: 'get_weather', arguments: '{"city":"Paris"}' }] },
    );
    const first = await alice.responses.create({
      model: 'gpt-5.5',
      input: 'Weather in Paris?',
      tools,
    });
    const call = first.output.find((item) => item.type === 'function_call');
    if (call?.type !== 'function_call') throw new Error('expected a function call');
    say(`alice  turn 1 → ${call.name}(${call.arguments}) in ${first.id}`);
    say('       (the upstream answered 502 first: the relay retried, alice saw one answer)');
    const second = await alice.responses.create({
      model: 'gpt-5.5',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '18°C, clear' }],
      tools,
    });
    say(`alice  turn 2 → "${second.output_text}"`);

    // 2. Ownership: another tenant of the same gateway cannot continue alice's conversation.
    const stolen = await bob.responses
      .create({ model: 'gpt-5.5', previous_response_id: second.id, input: 'What did alice ask?' })
      .then(
        () => 'continued (unexpected)',
        (error: unknown) =>
          `${(error as { status?: number }).status} ${(error as { code?: string }).code}`,
      );
    say(`bob    continuing alice's ${second.id.slice(0, 13)}… → ${stolen}`);

    // 3. Every other route is the gateway's own proxy, untouched.
    const retrieved = await alice.responses.retrieve(first.id);
    say(`alice  GET /v1/responses/{id} (the gateway's own proxy) → ${retrieved.status}`);

    // 4. Errors on the Responses route are OpenAI envelopes, whatever the upstream sent.
    upstream.script(
      { kind: 'html_error', status: 502 },
      { kind: 'html_error', status: 502 },
      { kind: 'html_error', status: 502 },
    );
    const failure = await alice.responses.create({ model: 'gpt-5.5', input: 'hi' }).then(
      () => undefined,
      (error: unknown) => error as { status?: number; message?: string },
    );
    say(`alice  upstream HTML 502 (3 attempts) → ${failure?.status}: ${failure?.message ?? ''}`);
    return { lines };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await upstream.close();
  }
}

if (require.main === module) {
  runExistingGatewayExample().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`example failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
