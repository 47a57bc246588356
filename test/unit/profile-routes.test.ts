import { codexProfile } from '../../lib/profiles/codex';
import { openaiProfile } from '../../lib/profiles/openai';
import {
  mountResponsesRoutes,
  profilePathRewrite,
  responsesRoutes,
  RESPONSES_ROUTES,
} from '../../lib/profiles/routes';

describe('route aliases', () => {
  it('default to /v1/responses, /responses and /codex/v1/responses', () => {
    expect(RESPONSES_ROUTES).toEqual(['/v1/responses', '/responses', '/codex/v1/responses']);
    expect(responsesRoutes()).toEqual([...RESPONSES_ROUTES]);
  });

  it('are configurable: replaced, extended, normalized and deduplicated', () => {
    expect(responsesRoutes({ routes: ['/v1/responses'] })).toEqual(['/v1/responses']);
    expect(
      responsesRoutes({
        extraRoutes: ['backend-api/codex/responses', '/responses/', '/v1/responses'],
      }),
    ).toEqual([
      '/v1/responses',
      '/responses',
      '/codex/v1/responses',
      '/backend-api/codex/responses',
    ]);
  });

  it('mount handlers for POST on every alias', () => {
    const calls: Array<{ paths: string[]; handlers: string[] }> = [];
    const router = {
      post(paths: string[], ...handlers: string[]) {
        calls.push({ paths, handlers });
        return router;
      },
    };
    const paths = mountResponsesRoutes(router, ['a', 'b'], { extraRoutes: ['/x/responses'] });
    expect(paths).toEqual([...RESPONSES_ROUTES, '/x/responses']);
    expect(calls).toEqual([{ paths, handlers: ['a', 'b'] }]);
  });
});

describe('profilePathRewrite', () => {
  it("sends every alias to the profile's upstream path, keeping the query", () => {
    const rewrite = profilePathRewrite(codexProfile());
    expect(rewrite('/v1/responses')).toBe('/backend-api/codex/responses');
    expect(rewrite('/codex/v1/responses?trace=1')).toBe('/backend-api/codex/responses?trace=1');
    expect(profilePathRewrite(openaiProfile())('/responses')).toBe('/v1/responses');
  });

  it('keeps the path when the profile has none', () => {
    expect(profilePathRewrite({})('/responses?a=b')).toBe('/responses?a=b');
  });
});
