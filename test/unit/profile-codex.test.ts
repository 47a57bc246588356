import { fc, test as fcTest } from '@fast-check/jest';
import { createProfileContext } from '../../lib/profiles/clients';
import { CODEX_BACKEND_PATH, codexProfile } from '../../lib/profiles/codex';
import {
  CODEX_ACCEPTED_FIELDS,
  CODEX_REFUSED_FIELDS,
  CODEX_STATEFUL_FIELDS,
} from '../../lib/profiles/fields';
import { diffBodies } from '../../lib/profiles/registry';
import type { ResponseCreateBody } from '../../lib/protocol/types';
import { exchangesOf, fixtureNames, loadFixture } from '../support/fixtures';

const CODEX_HEADERS = {
  originator: 'codex_exec',
  'user-agent': 'codex_exec/0.169.0 (Debian 12.0.0; x86_64)',
};

function prepare(body: ResponseCreateBody, options = {}, headers = {}) {
  const context = createProfileContext(headers);
  const profile = codexProfile(options);
  const out = profile.prepareRequest?.(body, context) ?? body;
  return { out, notes: context.notes };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}

/** A Droid/Factory-like `openai` SDK request: everything the public API allows, some of it odd. */
function droidLikeBody(): ResponseCreateBody {
  return {
    model: 'gpt-5.5',
    instructions: 'You are Droid, an AI software engineering agent.',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'List the files.' }] },
      { type: 'reasoning', id: 'rs_stale', summary: [{ type: 'summary_text', text: 'thinking' }] },
      { type: 'additional_tools', tools: [{ type: 'function', name: 'late_tool' }] },
    ],
    tools: [
      {
        type: 'function',
        name: 'edit_file',
        description: 'Edit or create a file',
        parameters: {
          anyOf: [
            {
              type: 'object',
              properties: { path: { type: 'string' }, patch: { type: 'string' } },
              required: ['path', 'patch'],
            },
            {
              type: 'object',
              properties: { path: { type: 'string' }, content: { type: 'string' } },
              required: ['path', 'content'],
            },
          ],
        },
        strict: false,
      },
      { type: 'function', name: 'ls', parameters: { type: 'object', properties: {} } },
    ],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    reasoning: { effort: 'max', summary: 'auto' },
    temperature: 1,
    top_p: 0.95,
    max_output_tokens: 32000,
    metadata: { session: 'droid-1' },
    user: 'droid-user',
    safety_identifier: 'sid',
    prompt_cache_retention: '24h',
    stream: true,
    stream_options: { include_obfuscation: false },
    store: false,
    include: ['reasoning.encrypted_content'],
    text: { verbosity: 'medium' },
  };
}

describe('codex profile: data', () => {
  const profile = codexProfile();
  it('is a stateless upstream at the backend path, with vendor events passed to Codex only', () => {
    expect(profile.name).toBe('codex');
    expect(profile.upstreamMode).toBe('stateless');
    expect(profile.vendorEvents).toBe('auto');
    expect(profile.path).toBe(CODEX_BACKEND_PATH);
    expect(profile.isVendorEvent?.('codex.rate_limits')).toBe(true);
    expect(profile.isVendorEvent?.('response.metadata')).toBe(true);
    expect(profile.isVendorEvent?.('response.completed')).toBe(false);
  });
});

describe('codex profile: prepareRequest', () => {
  it('forces stream and store, sets empty instructions, strips what the backend refuses', () => {
    const body = deepFreeze({
      model: 'gpt-5.5',
      input: 'hi',
      temperature: 0.3,
      max_output_tokens: 10,
      metadata: { a: 'b' },
      user: 'u',
      top_p: 1,
      safety_identifier: 's',
      prompt_cache_retention: 'in_memory',
      stream_options: { include_obfuscation: true },
      truncation: 'auto',
    });
    const { out } = prepare(body);
    expect(out).toEqual({
      model: 'gpt-5.5',
      input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }],
      stream: true,
      store: false,
      instructions: '',
    });
  });

  it('maps effort, folds tool schemas and drops unpersisted reasoning for a Droid-like client', () => {
    const body = deepFreeze(droidLikeBody());
    const { out, notes } = prepare(body);
    for (const key of CODEX_REFUSED_FIELDS) expect(out).not.toHaveProperty(key);
    expect(out).not.toHaveProperty('stream_options');
    expect(out.reasoning).toEqual({ effort: 'xhigh', summary: 'auto' });
    expect(out.instructions).toBe(body.instructions);
    const tools = out.tools as Array<Record<string, unknown>>;
    expect(tools[0]?.parameters).toEqual({
      type: 'object',
      properties: {
        path: { type: 'string' },
        patch: { type: 'string' },
        content: { type: 'string' },
      },
      required: ['path'],
    });
    expect(tools[1]).toBe((body.tools as unknown[])[1]);
    const input = out.input as Array<Record<string, unknown>>;
    expect(input.map((item) => item.type ?? item.role)).toEqual(['user', 'additional_tools']);
    expect(notes.map((note) => note.code)).toEqual([
      'dropped_unpersisted_reasoning',
      'sanitized_tool_schema',
    ]);
    expect(diffBodies(body, out)).toEqual({
      removed: [
        'temperature',
        'top_p',
        'max_output_tokens',
        'metadata',
        'user',
        'safety_identifier',
        'prompt_cache_retention',
        'stream_options',
      ],
      added: [],
      changed: ['input', 'tools', 'reasoning'],
    });
  });

  it('never adds fields the client omitted besides stream, store and instructions', () => {
    const { out } = prepare({ model: 'm', input: [] });
    expect(Object.keys(out).sort()).toEqual(['input', 'instructions', 'model', 'store', 'stream']);
  });

  it('keeps the fields that carry conversation state for the chaining middleware', () => {
    const body = { model: 'm', input: [], previous_response_id: 'resp_1', conversation: 'conv_1' };
    const { out } = prepare(body);
    expect(out.previous_response_id).toBe('resp_1');
    expect(out.conversation).toBe('conv_1');
  });

  it('keeps null instructions from being sent, and never overrides given ones', () => {
    expect(prepare({ model: 'm', input: [], instructions: null }).out.instructions).toBe('');
    expect(prepare({ model: 'm', input: [], instructions: 'be brief' }).out.instructions).toBe(
      'be brief',
    );
    expect(prepare({ model: 'm', input: [] }, { defaultInstructions: 'x' }).out.instructions).toBe(
      'x',
    );
    expect(
      prepare({ model: 'm', input: [] }, { defaultInstructions: false }).out,
    ).not.toHaveProperty('instructions');
  });

  it('off/none removes the reasoning block; unknown efforts become medium with a note', () => {
    expect(prepare({ model: 'm', input: [], reasoning: { effort: 'off' } }).out).not.toHaveProperty(
      'reasoning',
    );
    const unknown = prepare({ model: 'm', input: [], reasoning: { effort: 'ludicrous' } });
    expect(unknown.out.reasoning).toEqual({ effort: 'medium' });
    expect(unknown.notes[0]?.code).toBe('unknown_effort');
    expect(
      prepare(
        { model: 'm', input: [], reasoning: { effort: 'none' } },
        { effort: { none: 'none' } },
      ).out.reasoning,
    ).toEqual({
      effort: 'none',
    });
  });

  it('options: allowFields, stripFields, and switching transformations off', () => {
    const body = {
      model: 'm',
      input: [],
      prompt_cache_options: { mode: 'implicit' },
      service_tier: 'flex',
    };
    const { out } = prepare(body, {
      allowFields: ['prompt_cache_options'],
      stripFields: ['service_tier'],
    });
    expect(out.prompt_cache_options).toEqual({ mode: 'implicit' });
    expect(out).not.toHaveProperty('service_tier');
    const raw = droidLikeBody();
    const off = prepare(raw, {
      effort: false,
      sanitizeToolSchemas: false,
      dropUnpersistedReasoning: false,
    }).out;
    expect(off.reasoning).toBe(raw.reasoning);
    expect(off.tools).toBe(raw.tools);
    expect(off.input).toBe(raw.input);
  });

  describe('every Codex CLI request in the fixtures', () => {
    const requests: Array<[string, ResponseCreateBody]> = [];
    for (const name of fixtureNames()) {
      exchangesOf(loadFixture(name)).forEach((exchange, index) => {
        requests.push([`${name} #${index} (${exchange.transport})`, exchange.request]);
      });
    }

    it.each(requests)('%s passes as Codex sent it', (label, request) => {
      const body = deepFreeze(request);
      const { out, notes } = prepare(body, {}, CODEX_HEADERS);
      expect(notes).toEqual([]);
      if (label.endsWith('(http)')) {
        expect(out).toBe(body);
        return;
      }
      // A WebSocket frame loses its transport-only members (`type`, `generate`), nothing else.
      const diff = diffBodies(body, out);
      expect(diff.added).toEqual([]);
      expect(diff.changed).toEqual([]);
      for (const key of diff.removed) expect(['type', 'generate']).toContain(key);
    });

    it('without trust, a Codex body only gains the empty instructions', () => {
      for (const [label, request] of requests) {
        if (!label.endsWith('(http)')) continue;
        const { out, notes } = prepare(request, { trustCodexClients: false }, CODEX_HEADERS);
        expect(notes).toEqual([]);
        expect(diffBodies(request, out)).toEqual({
          removed: [],
          added: ['instructions'],
          changed: [],
        });
        for (const key of Object.keys(out)) {
          expect([...CODEX_ACCEPTED_FIELDS, ...CODEX_STATEFUL_FIELDS]).toContain(key);
        }
      }
    });

    it('a Codex client still gets the hard rules', () => {
      const { out } = prepare(
        { model: 'm', input: 'hi', temperature: 1, reasoning: { effort: 'max' } },
        {},
        CODEX_HEADERS,
      );
      expect(out).toEqual({
        model: 'm',
        input: 'hi',
        reasoning: { effort: 'max' },
        stream: true,
        store: false,
      });
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over random bodies: the client's object is never touched, a second pass changes
// nothing, and only fields the backend accepts go out.

const jsonLeaf = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
);
const anyField = fc.constantFrom(
  ...CODEX_ACCEPTED_FIELDS,
  ...CODEX_REFUSED_FIELDS,
  'background',
  'generate',
  'type',
  'prompt',
  'x_custom',
);
const itemArb = fc.oneof(
  fc.record({ role: fc.constantFrom('user', 'developer'), content: fc.string({ maxLength: 8 }) }),
  fc.record(
    {
      type: fc.constant('reasoning'),
      id: fc.constantFrom('rs_1', 'rs_2'),
      summary: fc.constant([]),
      encrypted_content: fc.option(fc.constantFrom('', 'gAAA'), { nil: undefined }),
    },
    { requiredKeys: ['type', 'id', 'summary'] },
  ),
  fc.record({
    type: fc.constantFrom('additional_tools', 'item_reference', 'compaction'),
    id: fc.string({ maxLength: 4 }),
  }),
);
const toolArb = fc.oneof(
  fc.record({
    type: fc.constant('function'),
    name: fc.constantFrom('a', 'b'),
    parameters: fc.oneof(
      fc.constant({ type: 'object', properties: {} }),
      fc.constant({
        anyOf: [{ type: 'object', properties: { x: { type: 'string' } }, required: ['x'] }],
      }),
      fc.constant({ properties: { y: {} }, enum: [{}] }),
    ),
  }),
  fc.constant({ type: 'web_search' }),
);
const bodyArb = fc
  .tuple(
    fc.dictionary(anyField, jsonLeaf, { maxKeys: 8 }),
    fc.option(fc.oneof(fc.string({ maxLength: 8 }), fc.array(itemArb, { maxLength: 4 })), {
      nil: undefined,
    }),
    fc.option(fc.array(toolArb, { maxLength: 3 }), { nil: undefined }),
    fc.option(
      fc.record(
        { effort: fc.oneof(fc.constantFrom('max', 'off', 'high', 'xhigh', 'weird'), jsonLeaf) },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
    fc.option(
      fc.record(
        {
          include_obfuscation: fc.boolean(),
          reasoning_summary_delivery: fc.constant('concurrent'),
        },
        { requiredKeys: [] },
      ),
      {
        nil: undefined,
      },
    ),
  )
  .map(([fields, input, tools, reasoning, streamOptions]) => {
    const body: ResponseCreateBody = { ...fields };
    if (input !== undefined) body.input = input;
    if (tools !== undefined) body.tools = tools;
    if (reasoning !== undefined) body.reasoning = reasoning;
    if (streamOptions !== undefined) body.stream_options = streamOptions;
    return body;
  });

fcTest.prop([bodyArb], { numRuns: 300 })(
  'never mutates the client body, is idempotent, and sends only accepted fields',
  (body) => {
    const before = structuredClone(body);
    const frozen = deepFreeze(body);
    const { out } = prepare(frozen);
    expect(frozen).toEqual(before);
    expect(out.stream).toBe(true);
    expect(out.store).toBe(false);
    for (const key of Object.keys(out)) {
      expect([...CODEX_ACCEPTED_FIELDS, ...CODEX_STATEFUL_FIELDS, 'background']).toContain(key);
    }
    if (out.background !== undefined) expect(out.background).toBe(true);
    if (typeof before.input === 'string') expect(Array.isArray(out.input)).toBe(true);
    expect(prepare(out).out).toBe(out);
  },
);
