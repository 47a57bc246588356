/**
 * Example (c): a gateway in front of the ChatGPT Codex backend (the `codex` profile).
 *
 * The backend (`https://chatgpt.com/backend-api/codex/responses`) only streams, stores nothing
 * (`store: false`, no `previous_response_id`), refuses every parameter it does not know with
 * `{"detail":"Unsupported parameter: …"}`, sends `response.completed` with an empty `output`, and
 * emits vendor events (`codex.rate_limits`) the openai SDK rejects. With the middlewares below,
 * any client works against it: the Codex CLI over HTTP or WebSocket, the openai SDK with plain
 * `responses.create` calls and `previous_response_id`, other agents.
 *
 * The Codex CLI, pointed at this gateway (`~/.codex/config.toml`):
 *
 *   model_provider = "relay"
 *   [model_providers.relay]
 *   name = "responses-relay"
 *   base_url = "http://127.0.0.1:8080/v1"
 *   wire_api = "responses"
 *   env_key = "RELAY_API_KEY"        # sent as Authorization: Bearer …, forwarded upstream
 *   supports_websockets = true
 *
 * The same gateway, ready-made: `npx responses-relay --profile codex --upstream https://chatgpt.com`.
 *
 *   npx tsx examples/codex-backend.ts
 *
 * runs it against the repository's fake Codex-like upstream and prints what each client saw.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import OpenAI from 'openai';
import {
  attachWebSocketBridge,
  bridgeSession,
  codexProfile,
  errorEnvelope,
  MemorySessionStore,
  prewarmResponder,
  profilePathRewrite,
  relayErrorHandler,
  relayProxy,
  responsesRoutes,
  responseChaining,
  retryGuard,
  sseCompletion,
  upstreamProfile,
  type SessionStore,
} from '../lib';
import type { JsonObject } from '../lib/protocol/types';
import { startFakeUpstream } from '../test/support/fake-upstream';

export interface CodexGatewayOptions {
  /** The backend's origin. @default 'https://chatgpt.com' */
  upstream?: string;
  store: SessionStore;
  tenantSecret: string;
}

/** The gateway: an HTTP server with the Responses routes and the WebSocket bridge. */
export function createCodexGateway(options: CodexGatewayOptions): http.Server {
  const profile = codexProfile();
  const app = express();
  app.post(
    responsesRoutes(), // /v1/responses, /responses, /codex/v1/responses
    errorEnvelope({ provider: 'codex' }),
    responseChaining({
      store: options.store,
      upstreamMode: 'stateless', // the backend keeps nothing: the relay keeps the conversation
      tenantSecret: options.tenantSecret,
      session: bridgeSession(), // Codex's session-id header, and WebSocket connections
    }),
    upstreamProfile(profile), // only what the backend accepts; stream: true, store: false
    sseCompletion(), // full output in response.completed, one terminal event
    retryGuard(),
    prewarmResponder(), // Codex's WebSocket prewarm (generate: false), answered locally
    relayProxy({
      target: options.upstream ?? 'https://chatgpt.com',
      proxy: { pathRewrite: profilePathRewrite(profile) }, // → /backend-api/codex/responses
    }),
  );
  app.use(relayErrorHandler());
  const server = http.createServer(app);
  attachWebSocketBridge(server, { path: responsesRoutes(), handler: app, logger: false });
  return server;
}

/** Runs the gateway against the fake backend and prints what each client saw. */
export async function runCodexBackendExample(
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<{ lines: string[] }> {
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    print(line);
  };
  const backend = await startFakeUpstream({ mode: 'stateless', sparseCompletion: true });
  const server = createCodexGateway({
    upstream: backend.url,
    store: new MemorySessionStore(),
    tenantSecret: 'example-tenant-secret',
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  try {
    const client = new OpenAI({ apiKey: 'chatgpt-access-token', baseURL: base, maxRetries: 0 });

    // A plain, non-streaming request with parameters the backend refuses.
    const first = await client.responses.create({
      model: 'gpt-5.5',
      input: 'Say hello.',
      temperature: 0.2,
      max_output_tokens: 500,
    });
    const sent = backend.requests.at(-1)?.body as JsonObject;
    say(
      `sdk   responses.create (no stream, temperature, max_output_tokens) → ${first.status}: "${first.output_text}"`,
    );
    say(
      `      the backend got: stream=${String(sent.stream)} store=${String(sent.store)}, ` +
        `input as a list, no temperature/max_output_tokens: ${!('temperature' in sent) && !('max_output_tokens' in sent)}`,
    );

    // A continuation: the backend would refuse previous_response_id; the relay expands it.
    const second = await client.responses.create({
      model: 'gpt-5.5',
      previous_response_id: first.id,
      input: 'And in French?',
    });
    const expanded = backend.requests.at(-1)?.body as JsonObject;
    say(
      `sdk   previous_response_id → ${second.status}; the backend got ${(expanded.input as unknown[]).length} items ` +
        `and ${'previous_response_id' in expanded ? 'an anchor (!)' : 'no anchor'}`,
    );

    // A streamed turn: the SDK sees a full response.completed although the backend sent output: [].
    const streamed = await client.responses
      .stream({ model: 'gpt-5.5', input: 'Count to three.' })
      .finalResponse();
    say(
      `sdk   responses.stream → finalResponse() has ${streamed.output.length} output item(s) (the backend sent none)`,
    );
    return { lines };
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await backend.close();
  }
}

if (require.main === module) {
  runCodexBackendExample().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`example failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
