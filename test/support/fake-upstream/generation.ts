/**
 * What the "model" answers: the output items of a response, decided from the content behaviour
 * (`auto`, `text`, `tool_calls`) and the request (its tools and the end of its conversation).
 */
import type { JsonObject, ResponseItem } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import { mintCallId, mintId } from './ids';
import { OUTPUT_KINDS, itemType, textOf } from './items';
import type { ReasoningSeal } from './seal';
import type { ToolCallSpec } from './types';

export type GeneratedItem =
  | { type: 'reasoning'; id: string; summary: string; encryptedContent: string | undefined }
  | { type: 'message'; id: string; text: string; chunks: number }
  | { type: 'function_call'; id: string; callId: string; name: string; arguments: string }
  | { type: 'custom_tool_call'; id: string; callId: string; name: string; input: string };

/** The content part of a behaviour, once wrappers are peeled off. */
export type ContentSpec =
  | { kind: 'auto'; reasoning?: boolean; forceCall?: boolean }
  | { kind: 'text'; text: string; chunks?: number; reasoning?: boolean }
  | { kind: 'tool_calls'; calls: ToolCallSpec[]; text?: string; reasoning?: boolean };

export interface GenerationInput {
  body: JsonObject;
  /** History and input, references resolved. */
  conversation: ResponseItem[];
  seal: ReasoningSeal;
}

export const AUTO_TEXT = 'Hello from the fake upstream.';
export const REASONING_SUMMARY = 'Considering what the user asked for.';
const SHELL_TOOLS = ['exec_command', 'shell_command', 'shell', 'local_shell'];

interface FunctionTool {
  name: string;
  parameters: JsonObject | undefined;
}

function functionTools(body: JsonObject): FunctionTool[] {
  if (!Array.isArray(body.tools)) return [];
  const tools: FunctionTool[] = [];
  for (const tool of body.tools) {
    if (!isJsonObject(tool) || tool.type !== 'function' || typeof tool.name !== 'string') continue;
    tools.push({
      name: tool.name,
      parameters: isJsonObject(tool.parameters) ? tool.parameters : undefined,
    });
  }
  return tools;
}

function sampleValue(schema: unknown): unknown {
  const type = isJsonObject(schema) ? schema.type : undefined;
  if (type === 'number' || type === 'integer') return 1;
  if (type === 'boolean') return true;
  if (type === 'array') return [];
  if (type === 'object') return {};
  return 'test';
}

/** `{"cmd":"echo hi"}` for Codex's `exec_command`; otherwise a sample of the required fields. */
export function sampleArguments(parameters: JsonObject | undefined): string {
  const properties = isJsonObject(parameters?.properties) ? parameters.properties : {};
  if ('cmd' in properties) return JSON.stringify({ cmd: 'echo hi' });
  if (isJsonObject(properties.command)) {
    return JSON.stringify({
      command: properties.command.type === 'array' ? ['bash', '-lc', 'echo hi'] : 'echo hi',
    });
  }
  const required = Array.isArray(parameters?.required) ? parameters.required : [];
  const args: JsonObject = {};
  for (const name of required) {
    if (typeof name === 'string') args[name] = sampleValue(properties[name]);
  }
  return JSON.stringify(args);
}

function pickTool(body: JsonObject): FunctionTool | undefined {
  const tools = functionTools(body);
  return SHELL_TOOLS.map((name) => tools.find((t) => t.name === name)).find(Boolean) ?? tools[0];
}

/** Whether the conversation's last item asks for a turn (a user, developer or system message). */
function endsWithPrompt(conversation: ResponseItem[]): boolean {
  const last = conversation[conversation.length - 1];
  if (last === undefined) return false;
  return itemType(last) === 'message' && last.role !== 'assistant';
}

function lastToolOutput(conversation: ResponseItem[]): ResponseItem | undefined {
  const last = conversation[conversation.length - 1];
  if (last === undefined) return undefined;
  const type = itemType(last);
  return type !== undefined && type in OUTPUT_KINDS ? last : undefined;
}

function reasoningItem(input: GenerationInput): GeneratedItem {
  const id = mintId('rs');
  const include = Array.isArray(input.body.include) ? input.body.include : [];
  return {
    type: 'reasoning',
    id,
    summary: REASONING_SUMMARY,
    encryptedContent: include.includes('reasoning.encrypted_content')
      ? input.seal.seal(id, REASONING_SUMMARY)
      : undefined,
  };
}

function message(text: string, chunks = 3): GeneratedItem {
  return { type: 'message', id: mintId('msg'), text, chunks };
}

function call(spec: ToolCallSpec): GeneratedItem {
  const callId = spec.call_id ?? mintCallId();
  if (spec.type === 'custom') {
    return {
      type: 'custom_tool_call',
      id: mintId('ctc'),
      callId,
      name: spec.name,
      input: spec.input ?? '',
    };
  }
  return {
    type: 'function_call',
    id: mintId('fc'),
    callId,
    name: spec.name,
    arguments: spec.arguments ?? '{}',
  };
}

/** The call `auto` makes: to the request's shell tool (or first function tool). */
export function autoCall(body: JsonObject): ToolCallSpec {
  const tool = pickTool(body);
  return tool
    ? { name: tool.name, arguments: sampleArguments(tool.parameters) }
    : { name: 'exec_command', arguments: JSON.stringify({ cmd: 'echo hi' }) };
}

/** The output items for a content behaviour. */
export function generate(content: ContentSpec, input: GenerationInput): GeneratedItem[] {
  const items: GeneratedItem[] = [];
  if (content.reasoning) items.push(reasoningItem(input));
  switch (content.kind) {
    case 'text':
      items.push(message(content.text, content.chunks));
      break;
    case 'tool_calls':
      if (content.text !== undefined) items.push(message(content.text));
      items.push(...content.calls.map(call));
      break;
    case 'auto': {
      const output = lastToolOutput(input.conversation);
      if (content.forceCall) {
        items.push(call(autoCall(input.body)));
      } else if (output !== undefined) {
        const said = textOf(output.output).trim().slice(0, 60);
        items.push(message(said ? `The tool returned: ${said}` : 'The tool returned nothing.'));
      } else if (endsWithPrompt(input.conversation) && pickTool(input.body)) {
        items.push(call(autoCall(input.body)));
      } else {
        items.push(message(AUTO_TEXT));
      }
      break;
    }
  }
  return items;
}
