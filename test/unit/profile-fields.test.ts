import {
  CODEX_ACCEPTED_FIELDS,
  CODEX_REFUSED_FIELDS,
  CODEX_STATEFUL_FIELDS,
  filterFields,
  filterStreamOptions,
} from '../../lib/profiles/fields';
import {
  dropUnpersistedReasoning,
  inputAsList,
  isUnpersistedReasoning,
} from '../../lib/profiles/input';
import { exchangesOf, fixtureNames, loadFixture } from '../support/fixtures';

const codexFilter = { accepted: CODEX_ACCEPTED_FIELDS, keep: CODEX_STATEFUL_FIELDS };

describe('codex field lists', () => {
  it('accept every top-level field the Codex CLI sends over HTTP (fixtures)', () => {
    const seen = new Set<string>();
    for (const name of fixtureNames()) {
      for (const exchange of exchangesOf(loadFixture(name))) {
        if (exchange.transport === 'http')
          for (const key of Object.keys(exchange.request)) seen.add(key);
      }
    }
    expect(seen.size).toBeGreaterThan(5);
    for (const key of seen) expect(CODEX_ACCEPTED_FIELDS).toContain(key);
  });

  it('refuse nothing they accept', () => {
    for (const key of CODEX_REFUSED_FIELDS) expect(CODEX_ACCEPTED_FIELDS).not.toContain(key);
  });
});

describe('filterFields', () => {
  it('returns the body itself when every field is accepted', () => {
    const body = { model: 'm', input: [], store: false, stream: true };
    const result = filterFields(body, codexFilter);
    expect(result.body).toBe(body);
    expect(result.removed).toEqual([]);
  });

  it('strips refused fields in a new object and keeps member identity and order', () => {
    const input = [{ role: 'user', content: 'hi' }];
    const body = Object.freeze({
      model: 'm',
      temperature: 0.2,
      input,
      max_output_tokens: 100,
      metadata: { a: '1' },
      user: 'u',
      truncation: 'auto',
      store: true,
    });
    const result = filterFields(body, codexFilter);
    expect(result.removed).toEqual([
      'temperature',
      'max_output_tokens',
      'metadata',
      'user',
      'truncation',
    ]);
    expect(result.body).toEqual({ model: 'm', input, store: true });
    expect(Object.keys(result.body)).toEqual(['model', 'input', 'store']);
    expect(result.body.input).toBe(input);
  });

  it('keeps the conversation-state fields and background: true, drops background: false', () => {
    const body = {
      model: 'm',
      previous_response_id: 'resp_1',
      conversation: 'conv_1',
      background: true,
    };
    expect(filterFields(body, codexFilter).body).toBe(body);
    expect(filterFields({ model: 'm', background: false }, codexFilter).removed).toEqual([
      'background',
    ]);
  });

  it('honours explicit strip lists over the accepted ones', () => {
    const result = filterFields(
      { model: 'm', service_tier: 'flex' },
      { ...codexFilter, strip: ['service_tier'] },
    );
    expect(result.removed).toEqual(['service_tier']);
  });
});

describe('filterStreamOptions', () => {
  it('drops stream_options the backend refuses', () => {
    const result = filterStreamOptions({
      model: 'm',
      stream_options: { include_obfuscation: false },
    });
    expect(result.body).toEqual({ model: 'm' });
    expect(result.removed).toEqual(['stream_options.include_obfuscation']);
  });

  it("keeps Codex's own reasoning_summary_delivery", () => {
    const body = { stream_options: { reasoning_summary_delivery: 'concurrent' } };
    expect(filterStreamOptions(body).body).toBe(body);
    const mixed = filterStreamOptions({
      stream_options: { reasoning_summary_delivery: 'concurrent', include_usage: true },
    });
    expect(mixed.body).toEqual({ stream_options: { reasoning_summary_delivery: 'concurrent' } });
  });

  it('drops a stream_options that is not an object, and leaves bodies without one alone', () => {
    expect(filterStreamOptions({ stream_options: null }).body).toEqual({});
    expect(filterStreamOptions({ stream_options: {} }).body).toEqual({});
    const body = { model: 'm' };
    expect(filterStreamOptions(body).body).toBe(body);
  });
});

describe('input rewrites', () => {
  it('turns a string input into one user message', () => {
    expect(inputAsList({ model: 'm', input: 'Hello!' })).toEqual({
      model: 'm',
      input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello!' }] }],
    });
    const listed = { input: [] };
    expect(inputAsList(listed)).toBe(listed);
  });

  it('removes reasoning items a store=false upstream could only look up by id', () => {
    const keepers = [
      { type: 'reasoning', id: 'rs_1', summary: [], encrypted_content: 'gAAA' },
      { type: 'reasoning', summary: [] },
      { type: 'additional_tools', tools: [] },
      { type: 'item_reference', id: 'msg_1' },
    ];
    const lost = { type: 'reasoning', id: 'rs_2', summary: [{ type: 'summary_text', text: 'x' }] };
    expect(isUnpersistedReasoning(lost)).toBe(true);
    expect(isUnpersistedReasoning({ ...lost, encrypted_content: '' })).toBe(true);
    const body = { input: [...keepers, lost] };
    const result = dropUnpersistedReasoning(body);
    expect(result.removed).toEqual(['rs_2']);
    expect(result.body.input).toEqual(keepers);
    expect(body.input).toHaveLength(5);
    const clean = { input: keepers };
    expect(dropUnpersistedReasoning(clean).body).toBe(clean);
  });
});
