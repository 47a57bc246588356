import { isOpenAIErrorEnvelope, isPreviousResponseNotFound } from '../../lib/protocol/errors';
import {
  RELAY_ERRORS,
  type RelayError,
  isRelayError,
  relayError,
  toRelayError,
  type RelayErrorKind,
} from '../../lib/protocol/relay-errors';
import { classifyStatus } from '../../lib/protocol/retry-hints';
import { REDACTED } from '../../lib/protocol/sanitize';

const KINDS = Object.keys(RELAY_ERRORS) as RelayErrorKind[];

/** Sample details for every placeholder any template uses. */
const SAMPLE = {
  id: 'resp_abc',
  limit: 1024,
  contentType: 'text/plain',
  type: 'response.append',
  callKind: 'function',
  callId: 'call_1',
};

function make(kind: RelayErrorKind): RelayError {
  return (relayError as (k: RelayErrorKind, d?: object) => RelayError)(kind, SAMPLE);
}

describe('the registry', () => {
  it.each(KINDS)('%s has a coherent entry', (kind) => {
    const spec = RELAY_ERRORS[kind];
    expect(spec.status).toBeGreaterThanOrEqual(400);
    expect(spec.status).toBeLessThan(600);
    expect(spec.type).toBe(spec.status >= 500 ? 'server_error' : 'invalid_request_error');
    expect(spec.message.length).toBeGreaterThan(10);
    if (spec.code !== null) expect(spec.code).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  it.each(KINDS)('%s renders a complete envelope with no placeholder left', (kind) => {
    const error = make(kind);
    const envelope = error.toEnvelope();
    expect(isOpenAIErrorEnvelope(envelope)).toBe(true);
    expect(Object.keys(envelope.error)).toEqual(['message', 'type', 'param', 'code']);
    expect(envelope.error.message).not.toMatch(/\{[A-Za-z_]+\}|\(unknown\)/);
    expect(error.status).toBe(RELAY_ERRORS[kind].status);
  });

  it('only previous_response_not_found reads as previous_response_not_found', () => {
    const matching = KINDS.filter((kind) => isPreviousResponseNotFound(make(kind).toEnvelope()));
    expect(matching).toEqual(['previous_response_not_found']);
  });

  it('uses retryable statuses only for conditions that may clear by themselves', () => {
    const retryable = KINDS.filter((kind) => classifyStatus(RELAY_ERRORS[kind].status).retry);
    expect(retryable.sort()).toEqual(
      [
        'internal_error',
        'store_unavailable',
        'stream_incomplete',
        'upstream_invalid_response',
        'upstream_timeout',
        'upstream_unreachable',
      ].sort(),
    );
  });
});

describe('exact envelopes', () => {
  it('previous_response_not_found is byte for byte OpenAI’s', () => {
    const error = relayError('previous_response_not_found', { id: 'resp_stale' });
    expect(error.status).toBe(400);
    expect(JSON.stringify(error.toEnvelope())).toBe(
      '{"error":{"message":"Previous response with id \'resp_stale\' not found.","type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}',
    );
  });

  it('response_not_found is a 404 with null param and code', () => {
    const error = relayError('response_not_found', { id: 'resp_x' });
    expect(error.status).toBe(404);
    expect(error.toEnvelope()).toEqual({
      error: {
        message: "Response with id 'resp_x' not found.",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
    expect(error.code).toBe('response_not_found');
    expect(error.envelopeCode).toBeNull();
  });

  it('payload_too_large is a 400 on input (Codex would retry a 413)', () => {
    expect(relayError('payload_too_large', { limit: 33554432 }).toEnvelope()).toEqual({
      error: {
        message:
          'The request body is larger than the limit of 33554432 bytes. Shorten or compact the input and try again.',
        type: 'invalid_request_error',
        param: 'input',
        code: 'payload_too_large',
      },
    });
  });

  it('invalid_json adds the sentence of a reason', () => {
    expect(relayError('invalid_json').toEnvelope().error).toEqual({
      message: 'We could not parse the JSON body of your request.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_json',
    });
    expect(relayError('invalid_json', { reason: 'not_an_object' }).message).toBe(
      'We could not parse the JSON body of your request. The body must be a JSON object.',
    );
  });

  it('unsupported_media_type is a 400 naming the content type', () => {
    const error = relayError('unsupported_media_type', { contentType: 'text/plain' });
    expect(error.status).toBe(400);
    expect(error.message).toBe(
      "Unsupported content type 'text/plain': send the request body as application/json.",
    );
  });

  it('store_unavailable is 503 server_error relay_store_unavailable', () => {
    const error = relayError('store_unavailable');
    expect([error.status, error.type, error.code, error.param]).toEqual([
      503,
      'server_error',
      'relay_store_unavailable',
      null,
    ]);
  });

  it.each<[RelayErrorKind, number, string]>([
    ['upstream_unreachable', 502, 'relay_upstream_unreachable'],
    ['upstream_timeout', 504, 'relay_upstream_timeout'],
    ['internal_error', 500, 'server_error'],
    ['stream_incomplete', 502, 'server_error'],
  ])('%s is %i with code %s', (kind, status, code) => {
    const error = make(kind);
    expect(error.status).toBe(status);
    expect(error.type).toBe('server_error');
    expect(error.toEnvelope().error.code).toBe(code);
  });

  it('tool pairing errors use OpenAI’s wording', () => {
    expect(
      relayError('no_tool_output_found', { callKind: 'function', callId: 'call_X' }).message,
    ).toBe('No tool output found for function call call_X.');
    expect(
      relayError('no_tool_call_found', { callKind: 'custom tool', callId: 'call_x' }).toEnvelope(),
    ).toEqual({
      error: {
        message: 'No tool call found for custom tool call output with call_id call_x.',
        type: 'invalid_request_error',
        param: 'input',
        code: null,
      },
    });
  });

  it('history caps are clear 400s that do not look like a missing anchor', () => {
    const error = relayError('history_too_large', { id: 'resp_1', limit: 1000 });
    expect(error.status).toBe(400);
    expect(error.param).toBeNull();
    expect(error.message).toBe(
      "The conversation history of 'resp_1' is larger than the relay's limit of 1000 bytes. Start a new conversation or compact it.",
    );
    expect(relayError('chain_too_deep', { id: 'resp_1', limit: 50 }).code).toBe(
      'relay_chain_too_deep',
    );
  });
});

describe('RelayError', () => {
  it('is an Error with a name, a statusCode and a JSON form without stack or cause', () => {
    const cause = new Error('ECONNREFUSED 10.0.0.1:6379 password=hunter2');
    const error = relayError('store_unavailable', { cause });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('RelayError');
    expect(error.statusCode).toBe(503);
    expect(error.cause).toBe(cause);
    const json = JSON.stringify(error);
    expect(json).toBe(JSON.stringify(error.toEnvelope()));
    expect(json).not.toMatch(/hunter2|at |stack/);
  });

  it('takes a param override and extra headers', () => {
    const error = relayError('store_unavailable', { headers: { 'retry-after': '1' }, param: 'x' });
    expect(error.headers).toEqual({ 'retry-after': '1' });
    expect(error.param).toBe('x');
    expect(error.toErrorBody().param).toBe('x');
    expect(relayError('store_unavailable').headers).toBeUndefined();
  });

  it('scrubs and bounds placeholder values', () => {
    const error = relayError('unsupported_media_type', {
      contentType: 'text/plain; token=sk-proj-AbCdEf0123456789xyz',
    });
    expect(error.message).toBe(
      `Unsupported content type 'text/plain; token=${REDACTED}': send the request body as application/json.`,
    );
    const long = relayError('previous_response_not_found', { id: 'r'.repeat(1000) });
    expect(long.message.length).toBeLessThan(300);
  });

  it('fills a missing placeholder from untyped callers with a marker', () => {
    const error = (relayError as (k: string, d?: object) => RelayError)('response_not_found');
    expect(error.message).toBe("Response with id '(unknown)' not found.");
  });

  it('checks its details at compile time', () => {
    // @ts-expect-error the id is required
    expect(() => relayError('previous_response_not_found')).not.toThrow();
    // @ts-expect-error unknown reason
    expect(() => relayError('invalid_json', { reason: 'nope' })).not.toThrow();
    // @ts-expect-error store_unavailable has no reasons
    expect(() => relayError('store_unavailable', { reason: 'x' })).not.toThrow();
  });
});

describe('isRelayError / toRelayError', () => {
  it('recognises relay errors, also from another copy of the package', () => {
    expect(isRelayError(relayError('internal_error'))).toBe(true);
    const foreign = Object.assign(new Error('x'), {
      name: 'RelayError',
      kind: 'internal_error',
      toEnvelope: () => ({}),
    });
    expect(isRelayError(foreign)).toBe(true);
    expect(isRelayError(new Error('x'))).toBe(false);
    expect(isRelayError({ name: 'RelayError' })).toBe(false);
  });

  it('keeps a RelayError as it is', () => {
    const error = relayError('upstream_timeout');
    expect(toRelayError(error)).toBe(error);
  });

  it("maps express.json()'s errors", () => {
    const parse = Object.assign(new SyntaxError('Unexpected token } in JSON at position 9'), {
      type: 'entity.parse.failed',
      status: 400,
      body: '{"key":"sk-secret"}',
    });
    const parsed = toRelayError(parse);
    expect(parsed.kind).toBe('invalid_json');
    expect(parsed.message).toBe(
      'We could not parse the JSON body of your request. The body is not valid JSON.',
    );
    expect(parsed.message).not.toContain('sk-secret');

    const big = toRelayError(
      Object.assign(new Error('request entity too large'), {
        type: 'entity.too.large',
        limit: 100,
      }),
    );
    expect(big.kind).toBe('payload_too_large');
    expect(big.message).toContain('limit of 100 bytes');

    const charset = toRelayError(
      Object.assign(new Error('unsupported charset "LATIN9"'), {
        type: 'charset.unsupported',
        charset: 'latin9',
      }),
    );
    expect(charset.kind).toBe('unsupported_media_type');
    expect(charset.message).toContain("'latin9'");
  });

  it('turns anything else into internal_error, keeping it only as the cause', () => {
    const boom = new Error('TypeError at /srv/app.js:12 with Bearer abc');
    const error = toRelayError(boom);
    expect(error.kind).toBe('internal_error');
    expect(error.cause).toBe(boom);
    expect(JSON.stringify(error.toEnvelope())).not.toMatch(/srv|Bearer/);
    expect(toRelayError('a string').kind).toBe('internal_error');
    expect(toRelayError(undefined).kind).toBe('internal_error');
  });
});
