import { fc, test as fcTest } from '@fast-check/jest';
import {
  applyToolSchemaSanitizing,
  ROOT_FORBIDDEN_KEYWORDS,
  sanitizeToolParameters,
  sanitizeTools,
} from '../../lib/profiles/tool-schema';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

describe('sanitizeToolParameters', () => {
  it('leaves a valid object schema untouched (same object)', () => {
    const schema = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    const result = sanitizeToolParameters(schema);
    expect(result.schema).toBe(schema);
    expect(result.changes).toEqual([]);
  });

  it('folds a root anyOf of objects: every property kept, only common requirements', () => {
    const schema = deepFreeze({
      anyOf: [
        {
          type: 'object',
          properties: { query: { type: 'string' }, limit: { type: 'integer' } },
          required: ['query', 'limit'],
        },
        {
          type: 'object',
          properties: { query: { type: 'string' }, cursor: { type: 'string' } },
          required: ['query'],
        },
      ],
    });
    const result = sanitizeToolParameters(schema);
    expect(result.schema).toEqual({
      type: 'object',
      properties: {
        query: { type: 'string' },
        limit: { type: 'integer' },
        cursor: { type: 'string' },
      },
      required: ['query'],
    });
    expect(result.changes).toEqual(['anyOf', 'type']);
  });

  it('folds a root oneOf the same way, keeping the root properties first', () => {
    const schema = {
      type: 'object',
      properties: { mode: { type: 'string' } },
      oneOf: [{ required: ['mode'] }, { properties: { x: { type: 'number' } }, required: ['x'] }],
    };
    expect(sanitizeToolParameters(schema).schema).toEqual({
      type: 'object',
      properties: { mode: { type: 'string' }, x: { type: 'number' } },
    });
  });

  it('folds a root allOf: properties merged, requirements united', () => {
    const schema = {
      allOf: [
        { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] },
        { type: 'object', properties: { b: { type: 'string' } }, required: ['b'] },
      ],
    };
    expect(sanitizeToolParameters(schema).schema).toEqual({
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'string' } },
      required: ['a', 'b'],
    });
  });

  it('removes root enum, not and const', () => {
    const schema = {
      type: 'object',
      properties: {},
      enum: [{}],
      not: { required: ['x'] },
      const: {},
    };
    const result = sanitizeToolParameters(schema);
    expect(result.schema).toEqual({ type: 'object', properties: {} });
    expect(result.changes).toEqual(['enum', 'not', 'const']);
  });

  it('adds the missing root type, and narrows a nullable object', () => {
    expect(sanitizeToolParameters({ properties: { a: {} } }).schema).toEqual({
      type: 'object',
      properties: { a: {} },
    });
    expect(sanitizeToolParameters({ type: ['object', 'null'], properties: {} }).schema).toEqual({
      type: 'object',
      properties: {},
    });
  });

  it('keeps nested combinators (only the root is the upstream business)', () => {
    const schema = {
      type: 'object',
      properties: { value: { anyOf: [{ type: 'string' }, { type: 'number' }] } },
    };
    expect(sanitizeToolParameters(schema).schema).toBe(schema);
  });

  it('leaves a non-object root alone (nothing sensible to do)', () => {
    const schema = { type: 'string', enum: ['a', 'b'] };
    expect(sanitizeToolParameters(schema).schema).toBe(schema);
    expect(sanitizeToolParameters(undefined).schema).toBeUndefined();
  });
});

describe('sanitizeTools', () => {
  const bad = { anyOf: [{ type: 'object', properties: { a: { type: 'string' } } }] };

  it('rewrites only the tools that need it and keeps the others by identity', () => {
    const good = { type: 'function', name: 'ok', parameters: { type: 'object', properties: {} } };
    const custom = { type: 'custom', name: 'apply_patch', format: { type: 'grammar' } };
    const tools = deepFreeze([good, { type: 'function', name: 'search', parameters: bad }, custom]);
    const result = sanitizeTools(tools);
    expect(result.tools).not.toBe(tools);
    const out = result.tools as unknown[];
    expect(out[0]).toBe(good);
    expect(out[2]).toBe(custom);
    expect(out[1]).toEqual({
      type: 'function',
      name: 'search',
      parameters: { type: 'object', properties: { a: { type: 'string' } } },
    });
    expect(result.changed).toEqual([{ tool: 'search', changes: ['anyOf', 'type'] }]);
  });

  it('returns the same array when no tool changes', () => {
    const tools = [
      { type: 'web_search' },
      { type: 'function', name: 'f', parameters: { type: 'object' } },
    ];
    expect(sanitizeTools(tools).tools).toBe(tools);
  });

  it('turns strict off for a folded strict tool', () => {
    const result = sanitizeTools([{ type: 'function', name: 'f', strict: true, parameters: bad }]);
    expect((result.tools as Array<Record<string, unknown>>)[0]?.strict).toBe(false);
    expect(result.changed[0]?.changes).toContain('strict');
  });

  it('handles the Chat Completions tool shape', () => {
    const result = sanitizeTools([{ type: 'function', function: { name: 'g', parameters: bad } }]);
    expect(result.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'g',
          parameters: { type: 'object', properties: { a: { type: 'string' } } },
        },
      },
    ]);
    expect(result.changed).toEqual([{ tool: 'g', changes: ['anyOf', 'type'] }]);
  });

  it('applyToolSchemaSanitizing returns the body itself when nothing changed', () => {
    const body = {
      model: 'm',
      tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }],
    };
    expect(applyToolSchemaSanitizing(body)).toBe(body);
    const changed = applyToolSchemaSanitizing({
      ...body,
      tools: [{ type: 'function', name: 'f', parameters: bad }],
    });
    expect(
      (changed.tools as Array<{ parameters: Record<string, unknown> }>)[0]?.parameters.anyOf,
    ).toBeUndefined();
  });
});

// Random schemas: roots with any mix of forbidden keywords and object/non-object branches.
const leaf = fc.constantFrom({ type: 'string' }, { type: 'integer' }, { enum: ['a'] }, {});
const objectBranch = fc.record(
  {
    type: fc.constant('object'),
    properties: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), leaf),
    required: fc.subarray(['a', 'b', 'c', 'd']),
  },
  { requiredKeys: ['properties'] },
);
const branch = fc.oneof(objectBranch, leaf);
const rootArb = fc.record(
  {
    type: fc.constantFrom('object', ['object', 'null']),
    properties: fc.dictionary(fc.constantFrom('a', 'e'), leaf),
    anyOf: fc.array(branch, { maxLength: 3 }),
    oneOf: fc.array(branch, { maxLength: 3 }),
    allOf: fc.array(branch, { maxLength: 3 }),
    enum: fc.constant([{}]),
    not: fc.constant({ required: ['a'] }),
  },
  { requiredKeys: [] },
);

fcTest.prop([rootArb])(
  'a sanitized root is an object schema without forbidden keywords, requires only its own properties, never mutates, and is stable',
  (root) => {
    const frozen = deepFreeze(structuredClone(root));
    const result = sanitizeToolParameters(frozen);
    const schema = result.schema as Record<string, unknown>;
    expect(frozen).toEqual(root);
    expect(schema.type).toBe('object');
    for (const keyword of ROOT_FORBIDDEN_KEYWORDS) expect(schema).not.toHaveProperty(keyword);
    const properties = Object.keys(
      (schema.properties as Record<string, unknown> | undefined) ?? {},
    );
    const ownRequired = (root as { required?: string[] }).required ?? [];
    for (const name of (schema.required as string[] | undefined) ?? []) {
      expect([...properties, ...ownRequired]).toContain(name);
    }
    expect(sanitizeToolParameters(schema).schema).toBe(schema);
  },
);
