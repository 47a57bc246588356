import { fc, test } from '@fast-check/jest';
import { ResponseAccumulator } from '../../lib/protocol/accumulator';
import type { ResponseItem, StreamEvent } from '../../lib/protocol/types';

const numRuns = 200;

// ---------------------------------------------------------------------------------------------
// Random items, each with the exact event sequence the API streams for it (§1.3 of the
// contract), every text split into random deltas.

/** A text and the deltas it is streamed in (possibly empty ones). */
const chunkedText = fc.array(fc.string({ maxLength: 6 }), { maxLength: 6 });

type PartSpec = { kind: 'output_text' | 'refusal'; chunks: string[] };
type ItemSpec =
  | { type: 'message'; parts: PartSpec[] }
  | { type: 'function_call'; chunks: string[] }
  | { type: 'custom_tool_call'; chunks: string[] }
  | {
      type: 'reasoning';
      summary: string[][];
      content: string[][];
      encrypted: string | undefined;
    };

const itemSpecArb: fc.Arbitrary<ItemSpec> = fc.oneof(
  fc.record({
    type: fc.constant('message' as const),
    parts: fc.array(
      fc.record({
        kind: fc.constantFrom('output_text' as const, 'refusal' as const),
        chunks: chunkedText,
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  fc.record({ type: fc.constant('function_call' as const), chunks: chunkedText }),
  fc.record({ type: fc.constant('custom_tool_call' as const), chunks: chunkedText }),
  fc.record({
    type: fc.constant('reasoning' as const),
    summary: fc.array(chunkedText, { maxLength: 2 }),
    content: fc.array(chunkedText, { maxLength: 2 }),
    encrypted: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
  }),
);

interface Generated {
  index: number;
  /** The item as `output_item.done` carries it. */
  final: ResponseItem;
  /** What the accumulator rebuilds without any `.done` event: the `added` status, no `done`-only fields. */
  rebuilt: ResponseItem;
  events: StreamEvent[];
}

function generate(spec: ItemSpec, index: number): Generated {
  const id = `${spec.type}_${index}`;
  const at = { item_id: id, output_index: index };
  const events: StreamEvent[] = [];
  const push = (type: string, fields: Record<string, unknown>) => events.push({ type, ...fields });
  let final: ResponseItem;
  let rebuilt: ResponseItem;

  switch (spec.type) {
    case 'message': {
      const parts = spec.parts.map((p) =>
        p.kind === 'output_text'
          ? { type: 'output_text', text: p.chunks.join(''), annotations: [] }
          : { type: 'refusal', refusal: p.chunks.join('') },
      );
      push('response.output_item.added', {
        output_index: index,
        item: { id, type: 'message', status: 'in_progress', role: 'assistant', content: [] },
      });
      spec.parts.forEach((p, ci) => {
        const empty =
          p.kind === 'output_text'
            ? { type: 'output_text', text: '', annotations: [] }
            : { type: 'refusal', refusal: '' };
        const family = p.kind === 'output_text' ? 'output_text' : 'refusal';
        push('response.content_part.added', { ...at, content_index: ci, part: empty });
        for (const delta of p.chunks)
          push(`response.${family}.delta`, { ...at, content_index: ci, delta });
        const text = p.chunks.join('');
        push(`response.${family}.done`, {
          ...at,
          content_index: ci,
          [p.kind === 'output_text' ? 'text' : 'refusal']: text,
        });
        push('response.content_part.done', { ...at, content_index: ci, part: parts[ci] });
      });
      final = { id, type: 'message', status: 'completed', role: 'assistant', content: parts };
      rebuilt = { ...final, status: 'in_progress' };
      break;
    }
    case 'function_call':
    case 'custom_tool_call': {
      const field = spec.type === 'function_call' ? 'arguments' : 'input';
      const family =
        spec.type === 'function_call' ? 'function_call_arguments' : 'custom_tool_call_input';
      const base = { id, type: spec.type, call_id: `call_${index}`, name: 'tool' };
      push('response.output_item.added', {
        output_index: index,
        item: { ...base, status: 'in_progress', [field]: '' },
      });
      for (const delta of spec.chunks) push(`response.${family}.delta`, { ...at, delta });
      const value = spec.chunks.join('');
      push(`response.${family}.done`, { ...at, [field]: value });
      final = { ...base, status: 'completed', [field]: value } as ResponseItem;
      rebuilt = { ...final, status: 'in_progress' };
      break;
    }
    case 'reasoning': {
      push('response.output_item.added', {
        output_index: index,
        item: { id, type: 'reasoning', summary: [] },
      });
      spec.summary.forEach((chunks, si) => {
        push('response.reasoning_summary_part.added', {
          ...at,
          summary_index: si,
          part: { type: 'summary_text', text: '' },
        });
        for (const delta of chunks)
          push('response.reasoning_summary_text.delta', { ...at, summary_index: si, delta });
        push('response.reasoning_summary_text.done', {
          ...at,
          summary_index: si,
          text: chunks.join(''),
        });
        push('response.reasoning_summary_part.done', {
          ...at,
          summary_index: si,
          part: { type: 'summary_text', text: chunks.join('') },
        });
      });
      spec.content.forEach((chunks, ci) => {
        push('response.content_part.added', {
          ...at,
          content_index: ci,
          part: { type: 'reasoning_text', text: '' },
        });
        for (const delta of chunks)
          push('response.reasoning_text.delta', { ...at, content_index: ci, delta });
        push('response.reasoning_text.done', { ...at, content_index: ci, text: chunks.join('') });
        push('response.content_part.done', {
          ...at,
          content_index: ci,
          part: { type: 'reasoning_text', text: chunks.join('') },
        });
      });
      const summary = spec.summary.map((c) => ({ type: 'summary_text', text: c.join('') }));
      const content = spec.content.map((c) => ({ type: 'reasoning_text', text: c.join('') }));
      rebuilt = { id, type: 'reasoning', summary, ...(content.length > 0 ? { content } : {}) };
      final = {
        ...rebuilt,
        ...(spec.encrypted !== undefined ? { encrypted_content: spec.encrypted } : {}),
      };
      break;
    }
  }
  push('response.output_item.done', { output_index: index, item: final });
  return { index, final, rebuilt, events };
}

/** Items at strictly increasing output indexes, with random gaps. */
const generatedArb: fc.Arbitrary<Generated[]> = fc
  .array(fc.tuple(itemSpecArb, fc.integer({ min: 1, max: 3 })), { maxLength: 5 })
  .map((specs) => {
    let index = -1;
    return specs.map(([spec, gap]) => {
      index += gap;
      return generate(spec, index);
    });
  });

/** Merge per-item event lists in a random interleaving that keeps each item's own order. */
function interleave(lists: StreamEvent[][], picks: number[]): StreamEvent[] {
  const queues = lists.map((l) => [...l]);
  const out: StreamEvent[] = [];
  let p = 0;
  while (queues.some((q) => q.length > 0)) {
    const open = queues.filter((q) => q.length > 0);
    const queue = open[(picks[p++] ?? 0) % open.length]!;
    out.push(queue.shift()!);
  }
  return out;
}

const scenarioArb = fc.record({
  items: generatedArb,
  picks: fc.array(fc.nat(), { maxLength: 200 }),
  /** After which events to read items() (exercises lazy joining mid-stream). */
  reads: fc.array(fc.boolean(), { maxLength: 200 }),
  terminalOutput: fc.constantFrom('full', 'empty', 'missing'),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer T> ? T : never;

function stream(s: Scenario, keep: (e: StreamEvent) => boolean = () => true): StreamEvent[] {
  const body = interleave(
    s.items.map((g) => g.events.filter(keep)),
    s.picks,
  );
  const finals = s.items.map((g) => g.final);
  const response: Record<string, unknown> = {
    id: 'resp_p',
    object: 'response',
    status: 'completed',
    usage: { total_tokens: 1 },
  };
  if (s.terminalOutput === 'full') response.output = finals;
  if (s.terminalOutput === 'empty') response.output = [];
  const created = { id: 'resp_p', object: 'response', status: 'in_progress', output: [] };
  return [
    { type: 'response.created', response: created },
    { type: 'response.in_progress', response: created },
    ...body,
    { type: 'response.completed', response },
  ].map((e, i) => ({ ...e, sequence_number: i }));
}

function run(events: StreamEvent[], reads: boolean[] = []): ResponseAccumulator {
  const acc = new ResponseAccumulator();
  events.forEach((e, i) => {
    acc.push(e);
    if (reads[i] === true) acc.items();
  });
  return acc;
}

const isDoneEvent = (e: StreamEvent) => e.type.endsWith('.done');
const isDelta = (e: StreamEvent) => e.type.endsWith('.delta');

// ---------------------------------------------------------------------------------------------

describe('ResponseAccumulator (properties)', () => {
  test.prop([scenarioArb], { numRuns })(
    'gives back exactly the generated items, as completed and as all items',
    (s) => {
      const acc = run(stream(s), s.reads);
      const finals = s.items.map((g) => g.final);
      expect(acc.completedItems()).toEqual(finals);
      expect(acc.items()).toEqual(finals);
      expect(acc.responseId).toBe('resp_p');
      expect(acc.outputStarted).toBe(finals.length > 0);
      expect(acc.bufferedChunks).toBe(0);
    },
  );

  test.prop([scenarioArb], { numRuns })(
    'rebuilds every text from the deltas when the done events are removed',
    (s) => {
      const events = stream(s, (e) => !isDoneEvent(e));
      const acc = run(events.slice(0, -1), s.reads);
      expect(acc.completedItems()).toEqual([]);
      expect(acc.items()).toEqual(s.items.map((g) => g.rebuilt));
    },
  );

  test.prop([scenarioArb], { numRuns })(
    'takes every text from the done events when the deltas are removed (and so when they disagree)',
    (s) => {
      const events = stream(s, (e) => !isDelta(e) && e.type !== 'response.output_item.done');
      const acc = run(events.slice(0, -1), s.reads);
      expect(acc.items()).toEqual(s.items.map((g) => g.rebuilt));
      const noisy = stream(s, (e) => e.type !== 'response.output_item.done').map((e) =>
        isDelta(e) ? { ...e, delta: `~${String(e.delta)}` } : e,
      );
      expect(run(noisy.slice(0, -1), s.reads).items()).toEqual(s.items.map((g) => g.rebuilt));
      // Without the part-level .done events either: the text .done events alone decide.
      const textDoneOnly = noisy.filter(
        (e) =>
          e.type !== 'response.content_part.done' &&
          e.type !== 'response.reasoning_summary_part.done',
      );
      expect(run(textDoneOnly.slice(0, -1), s.reads).items()).toEqual(
        s.items.map((g) => g.rebuilt),
      );
    },
  );

  test.prop([scenarioArb], { numRuns })(
    'gives the full output back from finalResponse whether completed carried it, [] or nothing',
    (s) => {
      const acc = run(stream(s), s.reads);
      const final = acc.finalResponse();
      expect(final).toMatchObject({
        id: 'resp_p',
        status: 'completed',
        usage: { total_tokens: 1 },
      });
      expect(final!.output).toEqual(s.items.map((g) => g.final));
      expect(acc.snapshot()).toEqual(final);
    },
  );

  test.prop([scenarioArb], { numRuns })(
    'matches the snapshot to the items at every step before the terminal',
    (s) => {
      const events = stream(s);
      const acc = new ResponseAccumulator();
      for (const e of events.slice(0, -1)) {
        acc.push(e);
        expect(acc.snapshot().output).toEqual(acc.items());
        expect(acc.finalResponse()).toBeUndefined();
      }
    },
  );

  test.prop(
    [
      fc.array(fc.anything(), { maxLength: 30 }),
      scenarioArb,
      fc.array(fc.nat(), { maxLength: 10 }),
    ],
    {
      numRuns,
    },
  )('never throws, whatever it is fed', (junk, s, mutations) => {
    const events: unknown[] = [...stream(s)];
    // Corrupt some real events and insert junk among them.
    for (const m of mutations) {
      if (events.length === 0) break;
      const i = m % events.length;
      const e = events[i] as Record<string, unknown>;
      const keys = Object.keys(e ?? {});
      if (keys.length > 0)
        events[i] = { ...e, [keys[m % keys.length]!]: junk[m % Math.max(junk.length, 1)] };
    }
    junk.forEach((j, n) => events.splice((n * 7) % (events.length + 1), 0, j));
    const acc = new ResponseAccumulator();
    for (const e of events) expect(() => acc.push(e as StreamEvent)).not.toThrow();
    expect(() => {
      acc.items();
      acc.completedItems();
      acc.snapshot();
      acc.finalResponse();
    }).not.toThrow();
  });
});
