import fc from 'fast-check';
import { createParser } from 'eventsource-parser';
import { SseParser, serializeSseComment, serializeSseMessage } from '../../lib/protocol/sse';
import type { SseMessage } from '../../lib/protocol/sse';

const numRuns = 200;

interface Parsed {
  messages: SseMessage[];
  comments: string[];
  incomplete: boolean;
}

function parseChunks(chunks: ReadonlyArray<Uint8Array | string>, maxLineLength?: number): Parsed {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const parser = new SseParser({
    onMessage: (message) => messages.push(message),
    onComment: (text) => comments.push(text),
    ...(maxLineLength === undefined ? {} : { maxLineLength }),
  });
  for (const chunk of chunks) parser.push(chunk);
  const { incomplete } = parser.end();
  return { messages, comments, incomplete };
}

/** Where to cut a byte or character sequence: random offsets, or a fixed small piece size. */
type Cuts = { kind: 'offsets'; offsets: number[] } | { kind: 'every'; size: number };

const cutsArb: fc.Arbitrary<Cuts> = fc.oneof(
  fc.record({
    kind: fc.constant('offsets' as const),
    offsets: fc.array(fc.nat(), { maxLength: 40 }),
  }),
  fc.record({
    kind: fc.constant('every' as const),
    size: fc.oneof(fc.integer({ min: 1, max: 9 }), fc.integer({ min: 10, max: 200 })),
  }),
);

/** The cut positions for a sequence of `length` elements, sorted, without 0 or `length`. */
function cutPositions(length: number, cuts: Cuts): number[] {
  if (length === 0) return [];
  if (cuts.kind === 'every') {
    const positions: number[] = [];
    for (let at = cuts.size; at < length; at += cuts.size) positions.push(at);
    return positions;
  }
  const unique = new Set(cuts.offsets.map((offset) => offset % length).filter((at) => at > 0));
  return [...unique].sort((a, b) => a - b);
}

function cutBytes(bytes: Uint8Array, cuts: Cuts): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const at of [...cutPositions(bytes.length, cuts), bytes.length]) {
    pieces.push(bytes.slice(from, at));
    from = at;
  }
  return pieces;
}

function cutString(text: string, cuts: Cuts): string[] {
  const pieces: string[] = [];
  let from = 0;
  for (const at of [...cutPositions(text.length, cuts), text.length]) {
    pieces.push(text.slice(from, at));
    from = at;
  }
  return pieces;
}

const utf8 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'utf8'));

/** Characters that stress the parser: separators that are not line ends, BOM, astral, syntax. */
const trickyChar = fc.constantFrom(
  '\u2028',
  '\u2029',
  '\u0085',
  '\uFEFF',
  '\u000b',
  '\u000c',
  '\u0000',
  '🎉',
  '𝄞',
  'é',
  '你',
  ':',
  ' ',
  '"',
  '\\',
  '{',
  '}',
);
/** Any code point except CR and LF (fast-check's binary unit has no lone surrogates). */
const lineChar = fc
  .oneof(
    { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
    { weight: 1, arbitrary: trickyChar },
    { weight: 2, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  )
  .filter((char) => char !== '\r' && char !== '\n');
const lineText = (options: { minLength?: number; maxLength?: number } = {}) =>
  fc.string({ unit: lineChar, maxLength: 30, ...options });
/** Data: lines of any characters joined by any line break. */
const dataArb = fc.oneof(
  lineText({ maxLength: 60 }),
  fc
    .array(fc.tuple(lineText(), fc.constantFrom('\n', '\r\n', '\r')), { maxLength: 6 })
    .map((parts) => parts.map(([text, br]) => text + br).join('')),
  fc.json(),
);
const eventNameArb = fc.oneof(
  fc.constantFrom(
    'response.created',
    'response.output_item.added',
    'response.output_text.delta',
    'response.completed',
    'error',
  ),
  lineText({ minLength: 1 }),
);
const idArb = lineText().filter((id) => !id.includes('\0'));

const messageArb: fc.Arbitrary<SseMessage> = fc
  .record(
    {
      event: eventNameArb,
      data: dataArb,
      id: idArb,
      retry: fc.nat(),
    },
    { requiredKeys: ['data'] },
  )
  .map((message) => {
    const clean: SseMessage = { data: message.data };
    if (message.event !== undefined) clean.event = message.event;
    if (message.id !== undefined) clean.id = message.id;
    if (message.retry !== undefined) clean.retry = message.retry;
    return clean;
  });

/** What a message parses back as: SSE data cannot hold a CR, line breaks come back as LF. */
function expected(message: SseMessage): SseMessage {
  return { ...message, data: message.data.replace(/\r\n?/g, '\n') };
}

/** A stream item: an event or a keep-alive comment. */
type Item = { message: SseMessage } | { comment: string };
const itemsArb: fc.Arbitrary<Item[]> = fc.array(
  fc.oneof(
    { weight: 4, arbitrary: messageArb.map((message) => ({ message })) },
    { weight: 1, arbitrary: lineText().map((comment) => ({ comment })) },
  ),
  { maxLength: 12 },
);

function serializeItems(items: readonly Item[]): string {
  return items
    .map((item) =>
      'message' in item ? serializeSseMessage(item.message) : serializeSseComment(item.comment),
    )
    .join('');
}

describe('SseParser properties', () => {
  it('yields exactly the serialized messages and comments, however the UTF-8 bytes are chunked', () => {
    fc.assert(
      fc.property(itemsArb, cutsArb, (items, cuts) => {
        const stream = serializeItems(items);
        const parsed = parseChunks(cutBytes(utf8(stream), cuts));
        expect(parsed.messages).toStrictEqual(
          items.flatMap((item) => ('message' in item ? [expected(item.message)] : [])),
        );
        expect(parsed.comments).toStrictEqual(
          items.flatMap((item) => ('comment' in item ? [item.comment] : [])),
        );
        expect(parsed.incomplete).toBe(false);
      }),
      { numRuns },
    );
  });

  it('yields the same messages with LF, CRLF or CR line ends, and a BOM or not', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { maxLength: 10 }),
        fc.constantFrom('\n', '\r\n', '\r'),
        fc.boolean(),
        cutsArb,
        (messages, lineEnd, bom, cuts) => {
          const stream =
            (bom ? '\uFEFF' : '') +
            messages.map(serializeSseMessage).join('').replace(/\n/g, lineEnd);
          const parsed = parseChunks(cutBytes(utf8(stream), cuts));
          expect(parsed.messages).toStrictEqual(messages.map(expected));
          expect(parsed.incomplete).toBe(false);
        },
      ),
      { numRuns },
    );
  });

  it('drops and reports a last event whose blank line never came', () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 5 }),
        cutsArb,
        (messages, cuts) => {
          const stream = messages.map(serializeSseMessage).join('').slice(0, -1); // no final blank line
          const parsed = parseChunks(cutBytes(utf8(stream), cuts));
          expect(parsed.messages).toStrictEqual(messages.slice(0, -1).map(expected));
          expect(parsed.incomplete).toBe(true);
        },
      ),
      { numRuns },
    );
  });

  /** Byte soup made of SSE syntax, invalid UTF-8 and random bytes. */
  const sseToken = fc.oneof(
    fc.constantFrom(
      'data',
      'data:',
      'data: ',
      'event:',
      'event:\n',
      'event: x',
      'data: x\n',
      'id:',
      'id: 1',
      'retry: 10',
      'retry: x',
      ':',
      ' ',
      '\n',
      '\r',
      '\r\n',
      '\n\n',
      '[DONE]',
      '\u2028',
      '🎉',
    ),
    lineText({ maxLength: 5 }),
  );
  const soupArb = fc.array(
    fc.oneof(
      sseToken.map(utf8),
      fc.uint8Array({ maxLength: 8 }),
      fc.constantFrom(
        Uint8Array.of(0xff),
        Uint8Array.of(0xc3),
        Uint8Array.of(0xe2, 0x80),
        Uint8Array.of(0xf0, 0x9f, 0x8e),
        Uint8Array.of(0xef, 0xbb, 0xbf),
        Uint8Array.of(0xed, 0xa0, 0x80),
      ),
    ),
    { maxLength: 60 },
  );
  const concat = (parts: readonly Uint8Array[]): Uint8Array =>
    new Uint8Array(Buffer.concat(parts.map((part) => Buffer.from(part))));

  it('never throws on arbitrary bytes, and parses them the same whatever the chunking', () => {
    fc.assert(
      fc.property(
        fc.oneof(soupArb.map(concat), fc.uint8Array({ maxLength: 300 })),
        cutsArb,
        (bytes, cuts) => {
          const whole = parseChunks([bytes], Number.MAX_SAFE_INTEGER);
          const chunked = parseChunks(cutBytes(bytes, cuts), Number.MAX_SAFE_INTEGER);
          expect(chunked).toStrictEqual(whole);
        },
      ),
      { numRuns },
    );
  });

  it('decodes the bytes of a data line exactly as TextDecoder does, however they are chunked', () => {
    const tricky = fc.constantFrom(
      ...[
        [0xe2, 0x82, 0xac], // €
        [0xf0, 0x9f, 0x8e, 0x89], // 🎉
        [0xc3, 0xa9], // é
        [0xe0, 0xa0],
        [0xe0, 0x9f],
        [0xed, 0x9f],
        [0xed, 0xa0],
        [0xf0, 0x90],
        [0xf0, 0x8f],
        [0xf4, 0x8f],
        [0xf4, 0x90],
        [0xc0],
        [0xc1],
        [0xc2],
        [0xf5],
        [0xff],
        [0x80],
        [0xbf],
        [0xef, 0xbb, 0xbf],
      ].map((bytes) => Uint8Array.from(bytes)),
    );
    const bytesArb = fc
      .array(
        fc.oneof(
          tricky,
          fc.uint8Array({ maxLength: 6 }),
          fc.uint8Array({ min: 0x80, max: 0xbf, maxLength: 3 }),
          lineText({ maxLength: 8 }).map(utf8),
        ),
        { maxLength: 80 },
      )
      .map(concat)
      // No line ends inside the value.
      .map((bytes) => bytes.map((byte) => (byte === 0x0a || byte === 0x0d ? 0x20 : byte)));
    fc.assert(
      fc.property(bytesArb, cutsArb, (value, cuts) => {
        const stream = concat([utf8('data: '), value, utf8('\n\n')]);
        const parsed = parseChunks(cutBytes(stream, cuts));
        const data = new TextDecoder('utf-8', { ignoreBOM: true }).decode(value);
        expect(parsed.messages).toStrictEqual([{ data }]);
      }),
      { numRuns },
    );
  });

  it('agrees with eventsource-parser 3.1.1 on event, data, id and comments', () => {
    // Text soup without a leading BOM (eventsource-parser looks for one in the bytes' Latin-1 form)
    // and with a final LF: eventsource-parser holds a chunk-final CR until it sees the next
    // character, so a stream ending "\r\r" never dispatches its last event there.
    const soupText = fc.array(sseToken, { maxLength: 60 }).map((tokens) => tokens.join(''));
    // Streams built line by line: field names right and wrong, every separator form, blank lines.
    const fieldLine = fc
      .tuple(
        fc.constantFrom('data', 'event', 'id', 'retry', '', 'dat', 'Data', 'x'),
        fc.constantFrom('', ':', ': ', ':  '),
        fc.oneof(lineText({ maxLength: 12 }), fc.constantFrom('', '[DONE]', '15', 'a\u0000b')),
      )
      .map(([name, separator, value]) => name + separator + value);
    const linesText = fc
      .array(
        fc.tuple(
          fc.oneof({ weight: 4, arbitrary: fieldLine }, { weight: 1, arbitrary: fc.constant('') }),
          fc.constantFrom('\n', '\r\n', '\r'),
        ),
        { maxLength: 30 },
      )
      .map((lines) => lines.map(([line, end]) => line + end).join(''));
    const textArb = fc
      .oneof(soupText, linesText)
      .map((text) => `${text.replace(/^\uFEFF+/, '')}\n`);
    fc.assert(
      fc.property(textArb, cutsArb, cutsArb, (text, stringCuts, byteCuts) => {
        const theirs: Parsed = { messages: [], comments: [], incomplete: false };
        const reference = createParser({
          onEvent(event) {
            const message: SseMessage = { data: event.data };
            if (event.event !== undefined) message.event = event.event;
            if (event.id !== undefined) message.id = event.id;
            theirs.messages.push(message);
          },
          onComment(comment) {
            theirs.comments.push(comment);
          },
        });
        for (const piece of cutString(text, stringCuts)) reference.feed(piece);

        const withoutRetry = (parsed: Parsed) => ({
          messages: parsed.messages.map(({ retry: _retry, ...message }) => message),
          comments: parsed.comments,
        });
        const expectedResult = { messages: theirs.messages, comments: theirs.comments };
        expect(withoutRetry(parseChunks(cutString(text, stringCuts)))).toStrictEqual(
          expectedResult,
        );
        expect(withoutRetry(parseChunks(cutBytes(utf8(text), byteCuts)))).toStrictEqual(
          expectedResult,
        );
      }),
      { numRuns },
    );
  });

  it('throws SseLineTooLongError exactly when a line and its event data outgrow the limit', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.string({ unit: 'grapheme-ascii', maxLength: 40 }), { maxLength: 6 }),
        (limit, values) => {
          // Each event's only line is `data: <value>`; the event's data is empty before it.
          const stream = values.map((value) => `data: ${value}\n\n`).join('');
          const tooLong = values.some((value) => 6 + value.length > limit);
          let thrown: unknown;
          try {
            parseChunks([stream], limit);
          } catch (error) {
            thrown = error;
          }
          expect(thrown === undefined).toBe(!tooLong);
          if (thrown !== undefined) {
            expect(thrown).toMatchObject({ code: 'relay_sse_line_too_long', limit });
          }
        },
      ),
      { numRuns },
    );
  });
});
