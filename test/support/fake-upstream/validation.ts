/**
 * The rules a `POST /v1/responses` body must pass before the fake generates anything, in the order
 * the fake applies them. Stateless mode (Codex backend) first applies its own FastAPI checks.
 */
import type { JsonObject, ResponseCreateBody, ResponseItem } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import {
  badIdPrefix,
  conversationConflict,
  detail,
  encryptedContentNotVerified,
  invalidType,
  itemNotFound,
  missingParameter,
  notModelled,
  previousResponseNotFound,
  unknownParameter,
  type Rejection,
} from './errors';
import {
  CALL_KINDS,
  ID_PREFIXES,
  OUTPUT_KINDS,
  inputAsItems,
  isItemReference,
  itemType,
} from './items';
import { checkPairing } from './pairing';
import type { ReasoningSeal } from './seal';
import type { FakeResponseStore } from './store';
import type { FakeMode, StoredFakeResponse } from './types';

/** Every body parameter of `POST /v1/responses` the stateful fake accepts (§4.1, plus Codex's `client_metadata`). */
export const STATEFUL_PARAMETERS: readonly string[] = [
  'model',
  'input',
  'instructions',
  'previous_response_id',
  'conversation',
  'store',
  'stream',
  'stream_options',
  'background',
  'include',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'max_tool_calls',
  'reasoning',
  'text',
  'truncation',
  'max_output_tokens',
  'metadata',
  'prompt_cache_key',
  'prompt_cache_retention',
  'prompt_cache_options',
  'safety_identifier',
  'service_tier',
  'temperature',
  'top_p',
  'top_logprobs',
  'prompt',
  'context_management',
  'moderation',
  'user',
  'personality',
  'client_metadata',
];

/**
 * Parameters the Codex backend is observed to refuse with `{"detail":"Unsupported parameter: X"}`
 * (peers.md row 50 and edge case 10; codex-wire.md §0.2). `previous_response_id` is refused over
 * HTTP.
 */
export const STATELESS_UNSUPPORTED_PARAMETERS: readonly string[] = [
  'previous_response_id',
  'max_output_tokens',
  'max_completion_tokens',
  'max_tokens',
  'temperature',
  'top_p',
  'metadata',
  'stream_options',
  'prompt_cache_retention',
  'safety_identifier',
];

/**
 * What the stateless fake accepts: what the Codex CLI sends (fixtures `http-*.jsonl`) plus
 * `instructions` and `service_tier`. Anything else gets the same `Unsupported parameter` answer
 * (an assumption: `user`, `truncation`, `background`, `conversation`, … were not probed).
 */
export const STATELESS_ACCEPTED_PARAMETERS: readonly string[] = [
  'model',
  'input',
  'instructions',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning',
  'store',
  'stream',
  'include',
  'prompt_cache_key',
  'text',
  'client_metadata',
  'service_tier',
];

export interface ValidationContext {
  mode: FakeMode;
  store: FakeResponseStore;
  seal: ReasoningSeal;
}

/** A body that passed every rule, with its conversation expanded. */
export interface ValidRequest {
  body: ResponseCreateBody;
  /** `input` as received, as a list. */
  input: ResponseItem[];
  /** `input` with item references replaced by the items they name. */
  resolvedInput: ResponseItem[];
  /** The anchor's context and output (empty without `previous_response_id`). */
  history: ResponseItem[];
  previous: StoredFakeResponse | undefined;
  stream: boolean;
  /** Whether the response will be stored (stateful and `store` not false). */
  persist: boolean;
}

export type Validation = { ok: true; request: ValidRequest } | { ok: false; rejection: Rejection };

const fail = (rejection: Rejection): Validation => ({ ok: false, rejection });

function checkStateless(body: JsonObject): Rejection | undefined {
  if (body.store !== false) return detail(400, 'Store must be set to false', 'store');
  if (body.stream !== true) return detail(400, 'Stream must be set to true', 'stream');
  for (const key of Object.keys(body)) {
    if (
      STATELESS_UNSUPPORTED_PARAMETERS.includes(key) ||
      !STATELESS_ACCEPTED_PARAMETERS.includes(key)
    ) {
      return detail(400, `Unsupported parameter: ${key}`, 'unsupported_parameter');
    }
  }
  if (body.model === undefined) {
    return detail(
      422,
      [{ type: 'missing', loc: ['body', 'model'], msg: 'Field required', input: body }],
      'missing',
    );
  }
  return undefined;
}

function checkTypes(body: JsonObject): Rejection | undefined {
  if (body.model === undefined) return missingParameter('model');
  if (typeof body.model !== 'string') return invalidType('model', 'a string', body.model);
  if (body.input !== undefined && typeof body.input !== 'string' && !Array.isArray(body.input)) {
    return invalidType('input', 'one of a string or array of input items', body.input);
  }
  for (const key of ['store', 'stream', 'parallel_tool_calls', 'background']) {
    if (body[key] !== undefined && body[key] !== null && typeof body[key] !== 'boolean') {
      return invalidType(key, 'a boolean', body[key]);
    }
  }
  for (const key of ['tools', 'include']) {
    if (body[key] !== undefined && body[key] !== null && !Array.isArray(body[key])) {
      return invalidType(key, 'an array', body[key]);
    }
  }
  for (const key of ['previous_response_id', 'instructions']) {
    if (body[key] !== undefined && body[key] !== null && typeof body[key] !== 'string') {
      return invalidType(key, 'a string', body[key]);
    }
  }
  return undefined;
}

function checkStatefulParameters(body: JsonObject): Rejection | undefined {
  for (const key of Object.keys(body)) {
    if (!STATEFUL_PARAMETERS.includes(key)) return unknownParameter(key);
  }
  return undefined;
}

/** Checks one input item; returns the item the conversation continues with (references resolved). */
function checkItem(
  raw: unknown,
  index: number,
  body: JsonObject,
  ctx: ValidationContext,
): { rejection: Rejection } | { item: ResponseItem } {
  const reject = (rejection: Rejection) => ({ rejection });
  if (!isJsonObject(raw)) return reject(invalidType(`input[${index}]`, 'an object', raw));
  const item = raw as ResponseItem;
  const storeHint = ctx.mode === 'stateless' || body.store === false;
  if (isItemReference(item)) {
    const id = item.id as string;
    const found = ctx.mode === 'stateful' ? ctx.store.item(id) : undefined;
    return found ? { item: found } : reject(itemNotFound(id, storeHint));
  }
  const type = itemType(item);
  if (type === undefined) return reject(missingParameter(`input[${index}].type`));
  if (item.id !== undefined && item.id !== null) {
    if (typeof item.id !== 'string') {
      return reject(invalidType(`input[${index}].id`, 'a string', item.id));
    }
    const prefix = ID_PREFIXES[type];
    if (prefix !== undefined && !item.id.startsWith(prefix)) {
      return reject(badIdPrefix(index, item.id, prefix));
    }
  }
  const needsCallId =
    type in CALL_KINDS || (type in OUTPUT_KINDS && type !== 'local_shell_call_output');
  const nullableCallId = type === 'tool_search_call' || type === 'tool_search_output';
  if (needsCallId && !nullableCallId && typeof item.call_id !== 'string') {
    return reject(missingParameter(`input[${index}].call_id`));
  }
  if (type === 'reasoning') {
    const encrypted = item.encrypted_content;
    if (typeof encrypted === 'string' && encrypted !== '') {
      if (!ctx.seal.verify(encrypted)) return reject(encryptedContentNotVerified(encrypted));
    } else if (typeof item.id === 'string') {
      // Without its encrypted content a reasoning item is looked up by id.
      const found = ctx.mode === 'stateful' ? ctx.store.item(item.id) : undefined;
      if (found === undefined) return reject(itemNotFound(item.id, storeHint));
    }
  }
  return { item };
}

/** Applies every rule to a parsed body. */
export function validateCreate(parsed: unknown, ctx: ValidationContext): Validation {
  if (!isJsonObject(parsed)) return fail(invalidType('body', 'an object', parsed));
  const body = parsed as ResponseCreateBody;

  if (ctx.mode === 'stateless') {
    const rejection = checkStateless(body);
    if (rejection) return fail(rejection);
  } else {
    const rejection = checkStatefulParameters(body);
    if (rejection) return fail(rejection);
  }
  const typeRejection = checkTypes(body);
  if (typeRejection) return fail(typeRejection);

  if (ctx.mode === 'stateful') {
    if (body.conversation !== undefined && body.conversation !== null) {
      return fail(
        typeof body.previous_response_id === 'string'
          ? conversationConflict()
          : notModelled('conversation', 'the Conversations API'),
      );
    }
    if (body.background === true) return fail(notModelled('background', 'background mode'));
  }

  let previous: StoredFakeResponse | undefined;
  if (typeof body.previous_response_id === 'string') {
    previous = ctx.store.get(body.previous_response_id);
    if (previous === undefined) return fail(previousResponseNotFound(body.previous_response_id));
  }

  const input = typeof body.input === 'string' ? inputAsItems(body.input) : [];
  const resolvedInput: ResponseItem[] = [];
  if (Array.isArray(body.input)) {
    for (const [index, raw] of body.input.entries()) {
      const checked = checkItem(raw, index, body, ctx);
      if ('rejection' in checked) return fail(checked.rejection);
      input.push(raw as ResponseItem);
      resolvedInput.push(checked.item);
    }
  } else {
    resolvedInput.push(...input);
  }

  const history = previous ? [...previous.context, ...previous.output] : [];
  const pairing = checkPairing([...history, ...resolvedInput]);
  if (pairing) return fail(pairing);

  return {
    ok: true,
    request: {
      body,
      input,
      resolvedInput,
      history,
      previous,
      stream: body.stream === true,
      persist: ctx.mode === 'stateful' && body.store !== false,
    },
  };
}
