import { fc, test as fcTest } from '@fast-check/jest';
import { createProfileContext } from '../../lib/profiles/clients';
import { openaiProfile } from '../../lib/profiles/openai';
import { prepareRequest } from '../../lib/profiles/registry';
import type { ResponseCreateBody } from '../../lib/protocol/types';

describe('openai profile', () => {
  it('is the stateful public API at /v1/responses, passing vendor events', () => {
    const profile = openaiProfile();
    expect(profile).toMatchObject({
      name: 'openai',
      upstreamMode: 'stateful',
      vendorEvents: 'pass',
      path: '/v1/responses',
    });
    expect(profile.prepareRequest).toBeUndefined();
  });

  fcTest.prop([fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }))])(
    'passes any request as is (the same object)',
    (body) => {
      const request = body as ResponseCreateBody;
      expect(prepareRequest(openaiProfile(), request, createProfileContext())).toBe(request);
    },
  );

  it('optionally maps efforts onto the public levels (max stays max)', () => {
    const profile = openaiProfile({ effort: true });
    const context = createProfileContext();
    const run = (effort: unknown) =>
      prepareRequest(profile, { model: 'm', reasoning: { effort } }, context).reasoning;
    expect(run('maximum')).toEqual({ effort: 'max' });
    expect(run('max')).toEqual({ effort: 'max' });
    expect(run('off')).toEqual({ effort: 'none' });
    expect(run('x-high')).toEqual({ effort: 'xhigh' });
    expect(run('warp')).toEqual({ effort: 'medium' });
    expect(context.notes.map((note) => note.code)).toEqual(['unknown_effort']);
  });

  it('optionally sanitizes tool schemas', () => {
    const profile = openaiProfile({ sanitizeToolSchemas: true });
    const body = {
      model: 'm',
      tools: [
        {
          type: 'function',
          name: 'f',
          parameters: { oneOf: [{ type: 'object', properties: {} }] },
        },
      ],
    };
    const out = prepareRequest(profile, body, createProfileContext());
    expect(out.tools).toEqual([
      { type: 'function', name: 'f', parameters: { type: 'object', properties: {} } },
    ]);
    expect(body.tools[0]?.parameters).toHaveProperty('oneOf');
  });

  it('takes vendorEvents and path overrides', () => {
    expect(openaiProfile({ vendorEvents: 'drop', path: '/openai/v1/responses' })).toMatchObject({
      vendorEvents: 'drop',
      path: '/openai/v1/responses',
    });
  });
});
