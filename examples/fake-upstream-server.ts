/**
 * The repository's fake Responses API (test/support/fake-upstream) as a standalone server, for
 * trying the relay without an OpenAI account: docker compose runs it as the `upstream` service.
 * It enforces the real API's rules (tool-call pairing, store=false, the Codex backend's checks)
 * with the real error wordings, and answers like a tiny model: a function tool offered after a
 * user message gets a call, a tool output gets a text.
 *
 *   npx tsx examples/fake-upstream-server.ts            # stateless (Codex-like), port 9000
 *   FAKE_MODE=stateful PORT=9001 npx tsx examples/fake-upstream-server.ts
 *
 * Environment: PORT (9000), HOST (0.0.0.0), FAKE_MODE (`stateless` | `stateful`, default
 * stateless), FAKE_SPARSE (`true`: `response.completed` carries `output: []` like the Codex
 * backend; default true in stateless mode), FAKE_ACCOUNT (the account name sealing reasoning).
 * A request may script its own answer in the `x-fake-script` header (see the fake's README).
 */
import { startFakeUpstream, type FakeMode } from '../test/support/fake-upstream';

export async function startFakeUpstreamServer(env: NodeJS.ProcessEnv = process.env) {
  const mode: FakeMode = env.FAKE_MODE === 'stateful' ? 'stateful' : 'stateless';
  const sparse = env.FAKE_SPARSE === undefined ? mode === 'stateless' : env.FAKE_SPARSE === 'true';
  return startFakeUpstream({
    mode,
    sparseCompletion: sparse,
    name: env.FAKE_ACCOUNT ?? 'demo-account',
    host: env.HOST ?? '0.0.0.0',
    port: Number(env.PORT ?? 9000),
  });
}

if (require.main === module) {
  startFakeUpstreamServer().then(
    (fake) => {
      process.stdout.write(`fake Responses upstream (${fake.mode}) listening on ${fake.url}\n`);
      const stop = (): void => {
        void fake.close().then(() => process.exit(0));
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (error: unknown) => {
      process.stderr.write(`fake upstream: ${String(error)}\n`);
      process.exit(1);
    },
  );
}
