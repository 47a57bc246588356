/**
 * Tool schema sanitizing for strict upstreams. OpenAI-style validators require a function tool's
 * `parameters` to be a JSON Schema whose root is `type: "object"` and carries none of `oneOf`,
 * `anyOf`, `allOf`, `enum`, `not` at the top level — a rule schema generators (zod unions, pydantic
 * discriminated models) routinely break. Only the root is rewritten; nested schemas are the
 * client's business.
 *
 * Root combinators are folded rather than just deleted, so the model still sees every argument:
 * - `allOf` of object schemas: their `properties` are merged, `required` is the union;
 * - `anyOf` / `oneOf` of object schemas: their `properties` are merged, `required` is what every
 *   branch requires;
 * - `enum`, `const`, `not`: removed.
 * A strict tool (`strict: true`) whose schema had to be folded is sent with `strict: false`,
 * since the folded schema no longer meets strict mode's "every property required" rule.
 *
 * Nothing is mutated: changed tools are new objects, untouched tools keep their identity.
 */
import { isJsonObject, type JsonObject, type ResponseCreateBody } from '../protocol/types';

/** Root keywords a strict upstream refuses. */
export const ROOT_FORBIDDEN_KEYWORDS: readonly string[] = [
  'oneOf',
  'anyOf',
  'allOf',
  'enum',
  'not',
  'const',
];

/** The result of sanitizing one schema root. */
export interface SchemaSanitizeResult {
  /** The schema to send (the same object when nothing changed). */
  schema: unknown;
  /** What was done, e.g. `['anyOf', 'type']` (keywords folded/removed, `type` added). */
  changes: string[];
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter((entry): entry is string => typeof entry === 'string');
}

/** Defines an own member (safe for names such as `__proto__`, which JSON may carry). */
function setOwn(target: JsonObject, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function isObjectSchema(schema: unknown): schema is JsonObject {
  if (!isJsonObject(schema)) return false;
  const type = schema.type;
  if (type === undefined) return isJsonObject(schema.properties) || Array.isArray(schema.required);
  return type === 'object' || (Array.isArray(type) && type.includes('object'));
}

/** Folds the branches of a root combinator into `target`. `mode`: how `required` combines. */
function fold(target: JsonObject, branches: unknown[], mode: 'union' | 'intersection'): void {
  const properties: JsonObject = isJsonObject(target.properties) ? { ...target.properties } : {};
  const ownRequired = stringList(target.required) ?? [];
  let combined: string[] | undefined;
  let described = isJsonObject(target.properties);
  for (const branch of branches) {
    if (!isObjectSchema(branch)) {
      // A non-object branch can never be a function's arguments: nothing is required.
      if (mode === 'intersection') combined = [];
      continue;
    }
    if (isJsonObject(branch.properties)) {
      described = true;
      for (const [name, schema] of Object.entries(branch.properties)) {
        if (!Object.hasOwn(properties, name)) setOwn(properties, name, schema);
      }
    }
    const required = stringList(branch.required) ?? [];
    if (combined === undefined) combined = [...required];
    else if (mode === 'union') combined = [...new Set([...combined, ...required])];
    else combined = combined.filter((name) => required.includes(name));
  }
  if (described) target.properties = properties;
  // A folded requirement is kept only for a property the merged schema describes.
  const folded = (combined ?? []).filter((name) => Object.hasOwn(properties, name));
  const required = [...new Set([...ownRequired, ...folded])];
  if (required.length > 0) target.required = required;
  else delete target.required;
}

/**
 * Makes a function tool's `parameters` root acceptable to a strict upstream. Returns the same
 * object when it already is (or when it is not an object at all: nothing can be done).
 */
export function sanitizeToolParameters(schema: unknown): SchemaSanitizeResult {
  if (!isJsonObject(schema)) return { schema, changes: [] };
  const present = ROOT_FORBIDDEN_KEYWORDS.filter((keyword) => Object.hasOwn(schema, keyword));
  const type = schema.type;
  const typeFix =
    type === undefined || (Array.isArray(type) && type.includes('object') && type.length > 1);
  if (present.length === 0 && !typeFix) return { schema, changes: [] };
  if (type !== undefined && !typeFix && type !== 'object') {
    // A root that is not an object schema cannot describe arguments; leave it to the upstream.
    return { schema, changes: [] };
  }
  const out: JsonObject = { ...schema };
  for (const keyword of present) delete out[keyword];
  if (Array.isArray(schema.allOf)) fold(out, schema.allOf, 'union');
  const alternatives = [
    ...(Array.isArray(schema.anyOf) ? schema.anyOf : []),
    ...(Array.isArray(schema.oneOf) ? schema.oneOf : []),
  ];
  if (alternatives.length > 0) fold(out, alternatives, 'intersection');
  const changes: string[] = [...present];
  if (typeFix) {
    out.type = 'object';
    changes.push('type');
  }
  return { schema: out, changes };
}

/** What happened to one tool. */
export interface ToolSanitizeChange {
  /** The tool's name (or `#index` when it has none). */
  tool: string;
  changes: string[];
}

/** The result of sanitizing a `tools` array. */
export interface ToolsSanitizeResult {
  /** The array to send (the same array when no tool changed). */
  tools: unknown;
  changed: ToolSanitizeChange[];
}

function sanitizeTool(tool: unknown): { tool: unknown; changes: string[] } {
  if (!isJsonObject(tool) || tool.type !== 'function') return { tool, changes: [] };
  // The Responses shape (`parameters` on the tool) or the Chat Completions shape (`function`).
  if (Object.hasOwn(tool, 'parameters')) {
    const result = sanitizeToolParameters(tool.parameters);
    if (result.changes.length === 0) return { tool, changes: [] };
    const out: JsonObject = { ...tool, parameters: result.schema };
    const folded = result.changes.some((change) => change !== 'type');
    if (folded && tool.strict === true) {
      out.strict = false;
      result.changes.push('strict');
    }
    return { tool: out, changes: result.changes };
  }
  const fn = tool.function;
  if (isJsonObject(fn) && Object.hasOwn(fn, 'parameters')) {
    const result = sanitizeToolParameters(fn.parameters);
    if (result.changes.length === 0) return { tool, changes: [] };
    const inner: JsonObject = { ...fn, parameters: result.schema };
    const folded = result.changes.some((change) => change !== 'type');
    if (folded && fn.strict === true) {
      inner.strict = false;
      result.changes.push('strict');
    }
    return { tool: { ...tool, function: inner }, changes: result.changes };
  }
  return { tool, changes: [] };
}

function toolName(tool: unknown, index: number): string {
  if (isJsonObject(tool)) {
    if (typeof tool.name === 'string') return tool.name;
    if (isJsonObject(tool.function) && typeof tool.function.name === 'string')
      return tool.function.name;
  }
  return `#${index}`;
}

/** Sanitizes every function tool of a `tools` array (see {@link sanitizeToolParameters}). */
export function sanitizeTools(tools: unknown): ToolsSanitizeResult {
  if (!Array.isArray(tools)) return { tools, changed: [] };
  const changed: ToolSanitizeChange[] = [];
  let out: unknown[] | undefined;
  tools.forEach((tool, index) => {
    const result = sanitizeTool(tool);
    if (result.changes.length === 0) return;
    out ??= [...tools];
    out[index] = result.tool;
    changed.push({ tool: toolName(tool, index), changes: result.changes });
  });
  return { tools: out ?? tools, changed };
}

/** Applies {@link sanitizeTools} to `body.tools`; returns `body` itself when nothing changed. */
export function applyToolSchemaSanitizing(body: ResponseCreateBody): ResponseCreateBody {
  if (!Array.isArray(body.tools)) return body;
  const result = sanitizeTools(body.tools);
  if (result.changed.length === 0) return body;
  return { ...body, tools: result.tools as unknown[] };
}
