import { fc, test as fcTest } from '@fast-check/jest';
import { createProfileContext } from '../../lib/profiles/clients';
import { applyEffortMapping, CODEX_EFFORTS, mapEffort } from '../../lib/profiles/effort';
import type { ResponseCreateBody } from '../../lib/protocol/types';

describe('mapEffort (codex levels by default)', () => {
  it.each(['max', 'maximum', 'MAX', 'Maximum', 'ultra', 'x-high', 'extra_high', 'extra high'])(
    '%s becomes xhigh',
    (value) => {
      expect(mapEffort(value)).toEqual({ kind: 'set', effort: 'xhigh', unknown: false });
    },
  );

  it('xhigh stays as sent', () => {
    expect(mapEffort('xhigh')).toEqual({ kind: 'keep' });
  });

  it.each(CODEX_EFFORTS.filter((level) => level !== 'none'))('%s is kept', (level) => {
    expect(mapEffort(level)).toEqual({ kind: 'keep' });
  });

  it('normalizes the spelling of a known level', () => {
    expect(mapEffort(' High ')).toEqual({ kind: 'set', effort: 'high', unknown: false });
    expect(mapEffort('min')).toEqual({ kind: 'set', effort: 'minimal', unknown: false });
  });

  it.each(['off', 'none', 'OFF', 'disabled'])(
    '%s removes the reasoning block by default',
    (value) => {
      expect(mapEffort(value)).toEqual({ kind: 'omit' });
    },
  );

  it("off becomes 'none' where the model takes it", () => {
    expect(mapEffort('off', { none: 'none' })).toEqual({
      kind: 'set',
      effort: 'none',
      unknown: false,
    });
    expect(mapEffort('none', { none: 'none' })).toEqual({ kind: 'keep' });
    const byModel = (model: string | undefined): 'none' | 'omit' =>
      model === 'gpt-5.5' ? 'none' : 'omit';
    expect(mapEffort('off', { none: byModel }, 'gpt-5.5')).toEqual({
      kind: 'set',
      effort: 'none',
      unknown: false,
    });
    expect(mapEffort('off', { none: byModel }, 'gpt-5-codex')).toEqual({ kind: 'omit' });
  });

  it('an unknown value becomes medium (or the fallback) and is flagged', () => {
    expect(mapEffort('turbo')).toEqual({ kind: 'set', effort: 'medium', unknown: true });
    expect(mapEffort(3)).toEqual({ kind: 'set', effort: 'medium', unknown: true });
    expect(mapEffort('turbo', { fallback: 'low' })).toEqual({
      kind: 'set',
      effort: 'low',
      unknown: true,
    });
  });

  it('null means "the default": the block is removed', () => {
    expect(mapEffort(null)).toEqual({ kind: 'omit' });
  });

  it('honours custom accepted levels and aliases', () => {
    const openaiLike = {
      accepted: [...CODEX_EFFORTS, 'max'],
      aliases: { max: 'max', turbo: 'high' },
    };
    expect(mapEffort('max', openaiLike)).toEqual({ kind: 'keep' });
    expect(mapEffort('turbo', openaiLike)).toEqual({ kind: 'set', effort: 'high', unknown: false });
    // A level mapped by an alias but not accepted by this upstream falls back.
    expect(mapEffort('xhigh', { accepted: ['low', 'medium', 'high'] })).toEqual({
      kind: 'set',
      effort: 'medium',
      unknown: true,
    });
  });
});

describe('applyEffortMapping', () => {
  it('returns the same body when there is nothing to map', () => {
    const bodies: ResponseCreateBody[] = [
      { model: 'm' },
      { model: 'm', reasoning: { summary: 'auto' } },
      { model: 'm', reasoning: { effort: 'high' } },
    ];
    for (const body of bodies) expect(applyEffortMapping(body)).toBe(body);
  });

  it('replaces the effort in a new body and keeps the other reasoning members', () => {
    const reasoning = Object.freeze({ effort: 'max', summary: 'auto' });
    const body = Object.freeze({ model: 'gpt-5.5', reasoning, input: [] });
    const out = applyEffortMapping(body);
    expect(out).toEqual({
      model: 'gpt-5.5',
      reasoning: { effort: 'xhigh', summary: 'auto' },
      input: [],
    });
    expect(out.input).toBe(body.input);
    expect(body.reasoning).toEqual({ effort: 'max', summary: 'auto' });
  });

  it('off removes the whole reasoning block', () => {
    const body = { model: 'm', reasoning: { effort: 'off', summary: 'auto' }, store: false };
    expect(applyEffortMapping(body)).toEqual({ model: 'm', store: false });
  });

  it('logs an unknown effort through the context', () => {
    const context = createProfileContext({});
    const out = applyEffortMapping({ reasoning: { effort: 'turbo' } }, {}, context);
    expect(out.reasoning).toEqual({ effort: 'medium' });
    expect(context.notes).toEqual([
      { code: 'unknown_effort', detail: expect.stringContaining('"turbo"') },
    ]);
  });

  fcTest.prop([fc.oneof(fc.string(), fc.constantFrom(...CODEX_EFFORTS, 'max', 'off', 'maximum'))])(
    'the result always carries an accepted level or no reasoning block, and mapping twice changes nothing more',
    (effort) => {
      const once = applyEffortMapping({ reasoning: { effort } });
      const reasoning = once.reasoning as { effort?: unknown } | undefined;
      if (reasoning !== undefined) expect(CODEX_EFFORTS).toContain(reasoning.effort);
      expect(applyEffortMapping(once)).toBe(once);
    },
  );
});
