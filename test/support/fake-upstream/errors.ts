/**
 * The error bodies the fake answers with, worded as the real API words them (sources in
 * shared/reference/responses-contract.md §2.3–2.5, §3.1; wordings not found verbatim anywhere are
 * marked "fake wording").
 */
import type { JsonObject, OpenAIErrorEnvelope } from '../../../lib/protocol/types';

/** A rejection: status, body and the code reported in the request log. */
export interface Rejection {
  status: number;
  body: JsonObject;
  /** `error.code`, or a short tag for `{"detail"}` bodies; for the request log. */
  tag: string | null;
}

export function envelope(
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
): OpenAIErrorEnvelope {
  return { error: { message, type, param, code } };
}

function invalidRequest(
  status: number,
  message: string,
  param: string | null,
  code: string | null,
): Rejection {
  return {
    status,
    body: { ...envelope(message, 'invalid_request_error', param, code) },
    tag: code,
  };
}

/** FastAPI-style `{"detail": …}` (the Codex backend's request validation). */
export function detail(status: number, value: string | unknown[], tag: string): Rejection {
  return { status, body: { detail: value }, tag };
}

// --- request shape ----------------------------------------------------------------------------

export const INVALID_JSON_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)";

export function invalidJson(): Rejection {
  return invalidRequest(400, INVALID_JSON_MESSAGE, null, null);
}

export function unknownParameter(name: string): Rejection {
  return invalidRequest(400, `Unknown parameter: '${name}'.`, name, 'unknown_parameter');
}

export function missingParameter(param: string): Rejection {
  return invalidRequest(
    400,
    `Missing required parameter: '${param}'.`,
    param,
    'missing_required_parameter',
  );
}

function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return Number.isInteger(value) ? 'an integer' : 'a decimal';
  return `a ${typeof value}`;
}

export function invalidType(param: string, expected: string, value: unknown): Rejection {
  return invalidRequest(
    400,
    `Invalid type for '${param}': expected ${expected}, but got ${jsonTypeName(value)} instead.`,
    param,
    'invalid_type',
  );
}

/** `Invalid 'input[3].id': 'call_x'. Expected an ID that begins with 'fc'.` */
export function badIdPrefix(index: number, id: string, prefix: string): Rejection {
  const param = `input[${index}].id`;
  return invalidRequest(
    400,
    `Invalid '${param}': '${id}'. Expected an ID that begins with '${prefix}'.`,
    param,
    'invalid_value',
  );
}

/** Fake wording: features the fake does not model answer 400 rather than pretend. */
export function notModelled(param: string, what: string): Rejection {
  return invalidRequest(400, `The fake upstream does not model ${what}.`, param, null);
}

/** Fake wording (the real text was not found): `previous_response_id` with `conversation`. */
export function conversationConflict(): Rejection {
  return invalidRequest(
    400,
    "Mutually exclusive parameters: 'previous_response_id' and 'conversation'. Ensure you are only providing one of: 'previous_response_id' or 'conversation'.",
    'conversation',
    null,
  );
}

// --- responses and items ----------------------------------------------------------------------

export function previousResponseNotFound(id: string): Rejection {
  return invalidRequest(
    400,
    `Previous response with id '${id}' not found.`,
    'previous_response_id',
    'previous_response_not_found',
  );
}

export function responseNotFound(id: string): Rejection {
  return invalidRequest(404, `Response with id '${id}' not found.`, null, null);
}

export function cannotCancelSynchronous(): Rejection {
  return invalidRequest(400, 'Cannot cancel a synchronous response.', null, null);
}

export const STORE_FALSE_ITEM_HINT =
  'Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.';

/**
 * 404 for an item referenced by id that the fake never persisted. With `store: false` (or in
 * stateless mode) the API adds the store hint; otherwise the short form (fake wording).
 */
export function itemNotFound(id: string, storeHint: boolean): Rejection {
  const message = storeHint
    ? `Item with id '${id}' not found. ${STORE_FALSE_ITEM_HINT}`
    : `Item with id '${id}' not found.`;
  return invalidRequest(404, message, 'input', null);
}

/** `The encrypted content gAAA...Rg== could not be verified.` (code `invalid_encrypted_content`). */
export function encryptedContentNotVerified(content: string): Rejection {
  const shown = content.length > 8 ? `${content.slice(0, 4)}...${content.slice(-4)}` : content;
  return invalidRequest(
    400,
    `The encrypted content ${shown} could not be verified.`,
    null,
    'invalid_encrypted_content',
  );
}

/** An output with no earlier unanswered call: `No tool call found for function call output with call_id X.` */
export function noToolCallFound(outputLabel: string, callId: string): Rejection {
  return invalidRequest(
    400,
    `No tool call found for ${outputLabel} with call_id ${callId}.`,
    'input',
    null,
  );
}

/** A call with no later output: `No tool output found for function call X.` */
export function noToolOutputFound(callLabel: string, callId: string): Rejection {
  return invalidRequest(400, `No tool output found for ${callLabel} ${callId}.`, 'input', null);
}

// --- auth -------------------------------------------------------------------------------------

export const MISSING_KEY_MESSAGE =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username. You can obtain an API key from https://platform.openai.com/account/api-keys.";

/** Shows only the first 3 and last 4 characters of a key (none of a short one). */
export function maskKey(key: string): string {
  if (key.length < 12) return '*'.repeat(key.length);
  return `${key.slice(0, 3)}${'*'.repeat(key.length - 7)}${key.slice(-4)}`;
}

export function missingApiKey(): Rejection {
  return {
    status: 401,
    body: { ...envelope(MISSING_KEY_MESSAGE, 'invalid_request_error') },
    tag: null,
  };
}

export function incorrectApiKey(key: string): Rejection {
  return invalidRequest(
    401,
    `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    null,
    'invalid_api_key',
  );
}

// --- routing ----------------------------------------------------------------------------------

export function invalidUrl(method: string, path: string): Rejection {
  return invalidRequest(404, `Invalid URL (${method} ${path})`, null, null);
}

// --- scripted HTTP errors -----------------------------------------------------------------------

/** A plausible OpenAI envelope for a status, used when `http_error` gives no body. */
export function defaultErrorBody(status: number): OpenAIErrorEnvelope {
  if (status === 429) {
    return envelope(
      'Rate limit reached for requests. Limit: 500, Used: 500, Requested: 1. Please try again in 120ms.',
      'requests',
      null,
      'rate_limit_exceeded',
    );
  }
  if (status === 401) {
    return envelope('Invalid Authentication', 'invalid_request_error', null, 'invalid_api_key');
  }
  if (status === 503) {
    return envelope(
      'The engine is currently overloaded, please try again later',
      'server_error',
      null,
      null,
    );
  }
  if (status >= 500) {
    return envelope(
      'The server had an error while processing your request. Sorry about that!',
      'server_error',
      null,
      null,
    );
  }
  return envelope(`Fake upstream error (HTTP ${status}).`, 'invalid_request_error', null, null);
}

/** What a CDN in front of an API answers when its origin is down. */
export function cdnErrorPage(status: number, reason: string): string {
  return [
    '<html>',
    `<head><title>${status} ${reason}</title></head>`,
    '<body>',
    `<center><h1>${status} ${reason}</h1></center>`,
    '<hr><center>cloudflare</center>',
    '</body>',
    '</html>',
    '',
  ].join('\r\n');
}
