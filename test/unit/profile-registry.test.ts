import { createProfileContext } from '../../lib/profiles/clients';
import { codexProfile } from '../../lib/profiles/codex';
import {
  defineProfile,
  diffBodies,
  prepareRequest,
  PROFILES,
  resolveProfile,
} from '../../lib/profiles/registry';
import type { ResponseCreateBody } from '../../lib/protocol/types';

describe('resolveProfile', () => {
  it('resolves the built-in names', () => {
    expect(Object.keys(PROFILES).sort()).toEqual(['codex', 'openai']);
    expect(resolveProfile('openai').name).toBe('openai');
    expect(resolveProfile('codex').upstreamMode).toBe('stateless');
  });

  it('refuses an unknown name at once', () => {
    expect(() => resolveProfile('azure' as 'openai')).toThrow(/unknown upstream profile 'azure'/);
    expect(() => resolveProfile('toString' as 'openai')).toThrow(TypeError);
  });

  it('passes a complete profile object through defineProfile', () => {
    const codex = codexProfile({ vendorEvents: 'drop' });
    expect(resolveProfile(codex)).toEqual(codex);
  });
});

describe('defineProfile (custom profiles)', () => {
  it('fills in the defaults', () => {
    const profile = defineProfile({ name: 'plain' });
    expect(profile).toEqual({ name: 'plain', upstreamMode: 'stateful', vendorEvents: 'pass' });
    const body = { model: 'm' };
    expect(prepareRequest(profile, body, createProfileContext())).toBe(body);
  });

  it('the documented example: a local server that needs store=false and a model', () => {
    const local = defineProfile({
      name: 'local-vllm',
      upstreamMode: 'stateless',
      prepareRequest: (body) => {
        if (body.store === false && body.model !== undefined) return body;
        return { ...body, store: false, model: body.model ?? 'qwen3' };
      },
    });
    const context = createProfileContext();
    const client: ResponseCreateBody = Object.freeze({ input: 'hi' });
    expect(prepareRequest(local, client, context)).toEqual({
      input: 'hi',
      store: false,
      model: 'qwen3',
    });
    const ready = { input: 'hi', store: false, model: 'x' };
    expect(prepareRequest(local, ready, context)).toBe(ready);
  });

  it('composes with a built-in profile', () => {
    const codex = codexProfile();
    const pinned = defineProfile({
      ...codex,
      name: 'codex-pinned',
      prepareRequest: (body, context) => {
        const out = prepareRequest(codex, body, context);
        return out.model === 'gpt-5.5' ? out : { ...out, model: 'gpt-5.5' };
      },
    });
    const out = prepareRequest(
      pinned,
      { model: 'gpt-4o', input: [], temperature: 1 },
      createProfileContext(),
    );
    expect(out).toEqual({
      model: 'gpt-5.5',
      input: [],
      stream: true,
      store: false,
      instructions: '',
    });
    expect(pinned.upstreamMode).toBe('stateless');
    expect(pinned.isVendorEvent).toBe(codex.isVendorEvent);
  });

  it.each([
    [{ name: '' }, /non-empty `name`/],
    [{ name: 'x', upstreamMode: 'sometimes' }, /upstreamMode/],
    [{ name: 'x', vendorEvents: 'maybe' }, /vendorEvents/],
    [{ name: 'x', prepareRequest: 'no' }, /prepareRequest must be a function/],
    [{ name: 'x', isVendorEvent: 1 }, /isVendorEvent must be a function/],
    [{ name: 'x', path: 'v1/responses' }, /path must start with/],
  ])('refuses %j', (definition, message) => {
    expect(() => defineProfile(definition as never)).toThrow(message);
  });

  it('refuses a profile that is not an object', () => {
    expect(() => defineProfile(null as never)).toThrow(TypeError);
  });
});

describe('diffBodies', () => {
  it('reports removed, added and changed top-level fields by identity', () => {
    const input: ResponseCreateBody['input'] = [];
    const before: ResponseCreateBody = {
      model: 'm',
      input,
      temperature: 1,
      reasoning: { effort: 'max' },
    };
    const after: ResponseCreateBody = {
      model: 'm',
      input,
      reasoning: { effort: 'xhigh' },
      stream: true,
    };
    expect(diffBodies(before, after)).toEqual({
      removed: ['temperature'],
      added: ['stream'],
      changed: ['reasoning'],
    });
    expect(diffBodies(before, { ...before })).toEqual({ removed: [], added: [], changed: [] });
  });
});
