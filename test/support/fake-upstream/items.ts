/**
 * What the fake knows about items: which types are tool calls and which are their outputs (with
 * the words the API uses for them in its errors), which id prefix each type must have, and how an
 * `input` becomes a list of items.
 */
import type { JsonObject, ResponseItem } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import { mintId } from './ids';

/** A call type: its family (pairs it with outputs) and how the API names it in errors. */
export interface CallKind {
  family: string;
  label: string;
}

/** Client-executed calls that must be answered by an output with the same `call_id`. */
export const CALL_KINDS: Readonly<Record<string, CallKind>> = {
  function_call: { family: 'function', label: 'function call' },
  custom_tool_call: { family: 'custom', label: 'custom tool call' },
  apply_patch_call: { family: 'apply_patch', label: 'apply patch call' },
  local_shell_call: { family: 'local_shell', label: 'local shell call' },
  shell_call: { family: 'shell', label: 'shell call' },
  tool_search_call: { family: 'tool_search', label: 'tool search call' },
  computer_call: { family: 'computer', label: 'computer call' },
};

/** The outputs, labelled as in `No tool call found for <label> with call_id X.` */
export const OUTPUT_KINDS: Readonly<Record<string, CallKind>> = {
  function_call_output: { family: 'function', label: 'function call output' },
  custom_tool_call_output: { family: 'custom', label: 'custom tool call output' },
  apply_patch_call_output: { family: 'apply_patch', label: 'apply patch call output' },
  local_shell_call_output: { family: 'local_shell', label: 'local shell call output' },
  shell_call_output: { family: 'shell', label: 'shell call output' },
  tool_search_output: { family: 'tool_search', label: 'tool search output' },
  computer_call_output: { family: 'computer', label: 'computer call output' },
};

/**
 * Id prefixes the API checks on input items that carry an `id` (observed:
 * `Expected an ID that begins with 'fc'` / `'msg'` / `'rs'` / `'ctc'` / `'ws'`).
 */
export const ID_PREFIXES: Readonly<Record<string, string>> = {
  message: 'msg',
  function_call: 'fc',
  custom_tool_call: 'ctc',
  reasoning: 'rs',
  web_search_call: 'ws',
};

/** Prefixes given to input items the fake stores without an id. */
const STORED_ID_PREFIXES: Readonly<Record<string, string>> = {
  message: 'msg',
  function_call_output: 'fco',
  custom_tool_call_output: 'ctco',
};

/** The type of an input item (`message` for the easy form `{role, content}`). */
export function itemType(item: JsonObject): string | undefined {
  if (typeof item.type === 'string') return item.type;
  if (typeof item.role === 'string') return 'message';
  return undefined;
}

/** `{type: "item_reference", id}`, or an item with nothing but an `id`. */
export function isItemReference(item: JsonObject): boolean {
  if (item.type === 'item_reference') return true;
  if (item.type !== undefined && item.type !== null) return false;
  return typeof item.id === 'string' && Object.keys(item).every((k) => k === 'id' || k === 'type');
}

/** A string input is one user message. */
export function inputAsItems(input: unknown): ResponseItem[] {
  if (typeof input === 'string') {
    return [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: input }] }];
  }
  if (Array.isArray(input)) return input.filter(isJsonObject) as ResponseItem[];
  return [];
}

/**
 * How an input item is kept by the stateful fake: messages get the full form (`type`,
 * `content` parts, `status`) and items without an id get one, as `input_items` lists them.
 */
export function storedInputItem(item: ResponseItem): ResponseItem {
  const type = itemType(item) ?? 'item';
  const stored: ResponseItem = { ...item, type };
  if (type === 'message') {
    const role = typeof item.role === 'string' ? item.role : 'user';
    const partType = role === 'assistant' ? 'output_text' : 'input_text';
    if (typeof item.content === 'string') {
      stored.content = [{ type: partType, text: item.content }];
    }
    if (stored.status === undefined) stored.status = 'completed';
  }
  if (typeof stored.id !== 'string') {
    stored.id = mintId(STORED_ID_PREFIXES[type] ?? 'item');
  }
  return stored;
}

/** The text of a message item's parts, or of an output. */
export function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    return value
      .map((part) => (isJsonObject(part) && typeof part.text === 'string' ? part.text : ''))
      .join('');
  }
  return '';
}
