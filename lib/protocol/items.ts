/**
 * Item helpers: normalising a request's `input`, classifying tool calls and their outputs, the
 * synthetic "aborted" outputs used by the `repair` policy, and turning a Response's output items
 * into input items for a replay. Pure functions; they never mutate what they are given.
 *
 * ## Pairing keys (see reference/responses-contract.md §2.1–2.3, §6)
 *
 * A call and its output are tied by a key. Every key is a non-empty string; an item whose key is
 * missing (or not a string) cannot take part in pairing and is classified as `other` — the API
 * rejects such an item with a schema error of its own, which is not ours to imitate.
 *
 * | kind           | call item              | call key          | output item(s)                                   | output key                      |
 * | -------------- | ---------------------- | ----------------- | ------------------------------------------------ | ------------------------------- |
 * | `function`     | `function_call`        | `call_id`         | `function_call_output`                           | `call_id`                       |
 * | `custom`       | `custom_tool_call`     | `call_id`         | `custom_tool_call_output`                        | `call_id`                       |
 * | `local_shell`  | `local_shell_call`     | `call_id` ?? `id` | `local_shell_call_output`, `function_call_output` | `call_id` ?? `id`               |
 * | `shell`        | `shell_call`           | `call_id`         | `shell_call_output`                              | `call_id`                       |
 * | `apply_patch`  | `apply_patch_call`     | `call_id`         | `apply_patch_call_output`                        | `call_id`                       |
 * | `computer`     | `computer_call`        | `call_id`         | `computer_call_output`                           | `call_id`                       |
 * | `tool_search`  | `tool_search_call`     | `call_id`         | `tool_search_output`                             | `call_id`                       |
 * | `mcp_approval` | `mcp_approval_request` | `id`              | `mcp_approval_response`                          | `approval_request_id`           |
 *
 * Decisions, and why:
 * - **`local_shell_call` → `call_id`, falling back to `id`.** That is what the Codex client does
 *   (`call_id.or(id)` in codex-rs), and the API names the `call_…` value in its error
 *   (`No tool output found for local shell call call_PjdhYGAM7q52HL13WF8slGn9.`).
 * - **`local_shell_call_output` → `call_id`, falling back to `id`.** In openai 6.49 the output has
 *   no `call_id`; its `id` is documented as "the unique ID of the local shell tool call generated
 *   by the model", i.e. the call's `call_id` (openai-agents-python builds it exactly so). Later
 *   SDK schemas (openai-python#3923) add a separate required `call_id`; when present it wins.
 * - **A `function_call_output` also answers a `local_shell_call`.** Codex has no
 *   `local_shell_call_output` item at all: it answers a local shell call with a
 *   `function_call_output` carrying the `call_id`, and pairs the two as one "function" family.
 * - **`tool_search_call` / `tool_search_output` pair only for client execution.** An item with
 *   `execution: "server"` is run by the API, which puts the output in the same response; such
 *   items are classified `other`. A missing `execution` is treated as client execution.
 * - **`mcp_approval_request.id` ↔ `mcp_approval_response.approval_request_id`.** These ids live in
 *   their own namespace (see {@link pairingNamespace}); `mcp_call` carries its own output and is
 *   never a pair. `program` / `program_output` are not modelled (no {@link CallKind} for them).
 * - Otherwise every kind accepts only its own output type: a `function_call_output` whose
 *   `call_id` names a `custom_tool_call` is an orphan.
 */
import type { JsonObject, ResponseInput, ResponseItem } from './types';
import { isJsonObject } from './types';

/** The families of client-executed tool calls whose outputs must be paired. */
export type CallKind =
  | 'function'
  | 'custom'
  | 'local_shell'
  | 'shell'
  | 'apply_patch'
  | 'computer'
  | 'tool_search'
  | 'mcp_approval';

/** Static facts about one call kind. */
export interface CallKindInfo {
  readonly kind: CallKind;
  /** The `type` of the call item. */
  readonly callType: string;
  /** The `type` of the output item of the same family. */
  readonly outputType: string;
  /** How the API's error messages name the call (`No tool output found for <callWords> <id>.`). */
  readonly callWords: string;
  /** How the API's error messages name the output (`No tool call found for <outputWords> with call_id <id>.`). */
  readonly outputWords: string;
}

function info(
  kind: CallKind,
  callType: string,
  outputType: string,
  callWords: string,
  outputWords: string,
): CallKindInfo {
  return Object.freeze({ kind, callType, outputType, callWords, outputWords });
}

/**
 * Every call kind. The wordings for `function`, `custom`, `local_shell`, `shell`, `apply_patch`
 * and `tool_search` calls are observed API messages (responses-contract.md §2.3); the others
 * follow the same template and are not verified against the API.
 */
export const CALL_KINDS: Readonly<Record<CallKind, CallKindInfo>> = Object.freeze({
  function: info(
    'function',
    'function_call',
    'function_call_output',
    'function call',
    'function call output',
  ),
  custom: info(
    'custom',
    'custom_tool_call',
    'custom_tool_call_output',
    'custom tool call',
    'custom tool call output',
  ),
  local_shell: info(
    'local_shell',
    'local_shell_call',
    'local_shell_call_output',
    'local shell call',
    'local shell call output',
  ),
  shell: info('shell', 'shell_call', 'shell_call_output', 'shell call', 'shell call output'),
  apply_patch: info(
    'apply_patch',
    'apply_patch_call',
    'apply_patch_call_output',
    'apply patch call',
    'apply patch call output',
  ),
  computer: info(
    'computer',
    'computer_call',
    'computer_call_output',
    'computer call',
    'computer call output',
  ),
  tool_search: info(
    'tool_search',
    'tool_search_call',
    'tool_search_output',
    'tool search call',
    'tool search output',
  ),
  mcp_approval: info(
    'mcp_approval',
    'mcp_approval_request',
    'mcp_approval_response',
    'mcp approval request',
    'mcp approval response',
  ),
});

const KIND_BY_CALL_TYPE = new Map<string, CallKind>();
const KIND_BY_OUTPUT_TYPE = new Map<string, CallKind>();
for (const entry of Object.values(CALL_KINDS)) {
  KIND_BY_CALL_TYPE.set(entry.callType, entry.kind);
  KIND_BY_OUTPUT_TYPE.set(entry.outputType, entry.kind);
}

/** The item types of calls that need an output, in {@link CALL_KINDS} order. */
export const CALL_ITEM_TYPES: readonly string[] = Object.freeze([...KIND_BY_CALL_TYPE.keys()]);
/** The item types of tool outputs, in {@link CALL_KINDS} order. */
export const CALL_OUTPUT_ITEM_TYPES: readonly string[] = Object.freeze([
  ...KIND_BY_OUTPUT_TYPE.keys(),
]);

/** What {@link classifyItem} says about an item. */
export type ItemClass =
  | { role: 'call'; kind: CallKind; key: string }
  | { role: 'output'; kind: CallKind; key: string }
  | { role: 'other' };

const OTHER: ItemClass = Object.freeze({ role: 'other' });

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** The `type` of an item (`message` for an easy-form `{role, content}` message without one). */
export function itemType(item: unknown): string | undefined {
  if (!isJsonObject(item)) return undefined;
  if (typeof item.type === 'string') return item.type;
  if (item.type == null && typeof item.role === 'string') return 'message';
  return undefined;
}

/**
 * Whether an item is a call, a call's output, or anything else, with its kind and pairing key
 * (see the table at the top of this file). Never throws, whatever the value.
 */
export function classifyItem(item: unknown): ItemClass {
  if (!isJsonObject(item) || typeof item.type !== 'string') return OTHER;
  const callKind = KIND_BY_CALL_TYPE.get(item.type);
  if (callKind !== undefined) {
    if (callKind === 'tool_search' && item.execution === 'server') return OTHER;
    const key = callKey(callKind, item);
    return key === undefined ? OTHER : { role: 'call', kind: callKind, key };
  }
  const outputKind = KIND_BY_OUTPUT_TYPE.get(item.type);
  if (outputKind !== undefined) {
    if (outputKind === 'tool_search' && item.execution === 'server') return OTHER;
    const key = outputKey(outputKind, item);
    return key === undefined ? OTHER : { role: 'output', kind: outputKind, key };
  }
  return OTHER;
}

function callKey(kind: CallKind, item: JsonObject): string | undefined {
  switch (kind) {
    case 'mcp_approval':
      return nonEmptyString(item.id);
    case 'local_shell':
      return nonEmptyString(item.call_id) ?? nonEmptyString(item.id);
    default:
      return nonEmptyString(item.call_id);
  }
}

function outputKey(kind: CallKind, item: JsonObject): string | undefined {
  switch (kind) {
    case 'mcp_approval':
      return nonEmptyString(item.approval_request_id);
    case 'local_shell':
      return nonEmptyString(item.call_id) ?? nonEmptyString(item.id);
    default:
      return nonEmptyString(item.call_id);
  }
}

/** The kind of a call item, or `undefined` when the item is not a pairable call. */
export function callKindOf(item: unknown): CallKind | undefined {
  const c = classifyItem(item);
  return c.role === 'call' ? c.kind : undefined;
}

/** The kind of an output item, or `undefined` when the item is not a pairable output. */
export function outputKindOf(item: unknown): CallKind | undefined {
  const c = classifyItem(item);
  return c.role === 'output' ? c.kind : undefined;
}

/** Whether an item is a pairable tool call (it has a kind and a key). */
export function isCallItem(item: unknown): boolean {
  return classifyItem(item).role === 'call';
}

/** Whether an item is a pairable tool output (it has a kind and a key). */
export function isCallOutputItem(item: unknown): boolean {
  return classifyItem(item).role === 'output';
}

/**
 * The id space a kind's keys live in: tool `call_id`s share one space (a `call_id` is unique
 * across call types), MCP approval request ids (`mcpr_…`) another.
 */
export function pairingNamespace(kind: CallKind): 'call' | 'approval' {
  return kind === 'mcp_approval' ? 'approval' : 'call';
}

/**
 * Whether an output of family `outputKind` answers a call of kind `callKind`: the same family,
 * or a `function_call_output` answering a `local_shell_call` (what the Codex client sends).
 */
export function outputAnswers(callKind: CallKind, outputKind: CallKind): boolean {
  return callKind === outputKind || (callKind === 'local_shell' && outputKind === 'function');
}

/** The text every synthetic output carries. */
export const ABORTED_OUTPUT_TEXT = 'aborted';

/**
 * A synthetic output of the matching type for an unanswered call, saying the call was aborted
 * (DESIGN §5, the `repair` policy). `undefined` when `call` is not a pairable call. Fields, from
 * the openai 6.49 input item types:
 * - `function_call_output` / `custom_tool_call_output`: `call_id`, `output: "aborted"`;
 * - `local_shell_call_output`: `id` = the call's key (the 6.49 schema: `id` + `output`, no
 *   `call_id`), `output: "aborted"`;
 * - `shell_call_output`: `call_id`, one chunk `{stdout: "", stderr: "aborted",
 *   outcome: {type: "exit", exit_code: 1}}`;
 * - `apply_patch_call_output`: `call_id`, `status: "failed"`, `output: "aborted"`;
 * - `computer_call_output`: `call_id`, `output: {type: "computer_screenshot"}` (there is no
 *   screenshot to send; the API may still want an `image_url` or `file_id`);
 * - `tool_search_output`: `call_id`, `execution: "client"`, `tools: []`;
 * - `mcp_approval_response`: `approval_request_id`, `approve: false`.
 */
export function abortedOutputFor(call: unknown): ResponseItem | undefined {
  const c = classifyItem(call);
  if (c.role !== 'call') return undefined;
  const key = c.key;
  switch (c.kind) {
    case 'function':
      return { type: 'function_call_output', call_id: key, output: ABORTED_OUTPUT_TEXT };
    case 'custom':
      return { type: 'custom_tool_call_output', call_id: key, output: ABORTED_OUTPUT_TEXT };
    case 'local_shell':
      return { type: 'local_shell_call_output', id: key, output: ABORTED_OUTPUT_TEXT };
    case 'shell':
      return {
        type: 'shell_call_output',
        call_id: key,
        output: [
          { stdout: '', stderr: ABORTED_OUTPUT_TEXT, outcome: { type: 'exit', exit_code: 1 } },
        ],
      };
    case 'apply_patch':
      return {
        type: 'apply_patch_call_output',
        call_id: key,
        status: 'failed',
        output: ABORTED_OUTPUT_TEXT,
      };
    case 'computer':
      return {
        type: 'computer_call_output',
        call_id: key,
        output: { type: 'computer_screenshot' },
      };
    case 'tool_search':
      return { type: 'tool_search_output', call_id: key, execution: 'client', tools: [] };
    case 'mcp_approval':
      return { type: 'mcp_approval_response', approval_request_id: key, approve: false };
  }
}

/**
 * The request's `input` as a list of items: a string becomes one user message
 * (`[{type: "message", role: "user", content: <string>}]`), `undefined`/`null` an empty list, a
 * list a shallow copy of itself (the items are not copied).
 */
export function normalizeInput(input: ResponseInput | null | undefined): ResponseItem[] {
  if (typeof input === 'string') return [{ type: 'message', role: 'user', content: input }];
  if (Array.isArray(input)) return input.slice();
  return [];
}

function withoutKeys(item: JsonObject, keys: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(item)) if (!keys.includes(k)) out[k] = v;
  return out;
}

function stripCreatedBy<T>(value: T): T {
  if (!isJsonObject(value) || !('created_by' in value)) return value;
  return withoutKeys(value, ['created_by']) as T;
}

/**
 * One Response output item as an input item for a replay, or `null` when it cannot be replayed
 * without changing its meaning. The rules are those of the SDK's `toResponseInputItem`
 * (responses-contract.md §2.2):
 * - `created_by` is removed from every item (and from each chunk of a `shell_call_output`);
 * - `additional_tools` is kept only with `role: "developer"`;
 * - a `computer_call_output` with `status: "failed"` is dropped;
 * - a `custom_tool_call_output` with a `status` other than `completed` is dropped, and `status`
 *   is removed from the ones kept.
 *
 * Unlike the SDK, an item of an unknown type is kept as it is (a relay forwards what it does
 * not know), and every other field is kept. The input is never mutated: an item that needs no
 * change is returned as the same object.
 */
export function toInputItem(item: ResponseItem): ResponseItem | null {
  if (!isJsonObject(item)) return null;
  switch (item.type) {
    case 'additional_tools':
      return item.role === 'developer' ? stripCreatedBy(item) : null;
    case 'computer_call_output':
      return item.status === 'failed' ? null : stripCreatedBy(item);
    case 'custom_tool_call_output':
      if ('status' in item && item.status !== 'completed') return null;
      return withoutKeys(item, ['created_by', 'status']) as ResponseItem;
    case 'shell_call_output': {
      const stripped = stripCreatedBy(item);
      if (!Array.isArray(stripped.output)) return stripped;
      const output = stripped.output.map((chunk: unknown) => stripCreatedBy(chunk));
      const changed = output.some((chunk, i) => chunk !== (stripped.output as unknown[])[i]);
      return changed ? ({ ...stripped, output } as ResponseItem) : stripped;
    }
    default:
      return stripCreatedBy(item);
  }
}

/**
 * Response output items (as streamed in `response.output_item.done` or listed in
 * `response.output`) turned into input items for a replay with {@link toInputItem}; the items it
 * rejects are left out. Codex-shaped items come back unchanged: Codex itself replays exactly the
 * items of `output_item.done` (codex-wire.md §0.4).
 */
export function toInputItems(outputItems: readonly ResponseItem[]): ResponseItem[] {
  const out: ResponseItem[] = [];
  for (const item of outputItems) {
    const converted = toInputItem(item);
    if (converted !== null) out.push(converted);
  }
  return out;
}

/**
 * A reasoning item that a `store: false` upstream could only look up by id (it has an `id` and
 * no `encrypted_content`): answered 404 "Items are not persisted when `store` is set to false".
 */
export function isUnpersistedReasoning(item: unknown): boolean {
  if (!isJsonObject(item) || item.type !== 'reasoning') return false;
  const encrypted = item.encrypted_content;
  return (
    typeof item.id === 'string' &&
    item.id !== '' &&
    (typeof encrypted !== 'string' || encrypted === '')
  );
}
