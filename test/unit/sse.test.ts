import {
  DEFAULT_MAX_LINE_LENGTH,
  SSE_DONE,
  SseLineTooLongError,
  SseParser,
  isDoneSentinel,
  serializeSseComment,
  serializeSseMessage,
  serializeStreamEvent,
} from '../../lib/protocol/sse';
import type { SseMessage, SseParserOptions } from '../../lib/protocol/sse';

interface Parsed {
  messages: SseMessage[];
  comments: string[];
  incomplete: boolean;
}

/** Pushes every chunk into a fresh parser, then ends it. */
function parse(
  chunks: ReadonlyArray<string | Uint8Array>,
  options: Omit<SseParserOptions, 'onMessage' | 'onComment'> = {},
): Parsed {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const parser = new SseParser({
    ...options,
    onMessage: (message) => messages.push(message),
    onComment: (text) => comments.push(text),
  });
  for (const chunk of chunks) parser.push(chunk);
  const { incomplete } = parser.end();
  return { messages, comments, incomplete };
}

/** The UTF-8 bytes of `text`, one Uint8Array per byte. */
function byteByByte(text: string): Uint8Array[] {
  return [...Buffer.from(text, 'utf8')].map((byte) => Uint8Array.of(byte));
}

const created =
  '{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","output":[]}}';
const delta =
  '{"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hello","logprobs":[]}';

describe('SseParser', () => {
  describe('framing', () => {
    it('parses the exact Responses framing into event name and JSON data', () => {
      const stream = `event: response.created\ndata: ${created}\n\nevent: response.output_text.delta\ndata: ${delta}\n\n`;
      const { messages, incomplete } = parse([stream]);
      expect(messages).toStrictEqual([
        { event: 'response.created', data: created },
        { event: 'response.output_text.delta', data: delta },
      ]);
      expect(JSON.parse(messages[0]!.data)).toMatchObject({ type: 'response.created' });
      expect(incomplete).toBe(false);
    });

    it('gives the same messages whatever the chunking, down to one byte per chunk', () => {
      const stream = `event: response.created\ndata: ${created}\n\nevent: response.output_text.delta\ndata: ${delta}\n\n`;
      const whole = parse([stream]).messages;
      expect(parse(byteByByte(stream)).messages).toStrictEqual(whole);
      expect(parse([...stream]).messages).toStrictEqual(whole);
    });

    it('accepts CRLF line ends', () => {
      const { messages } = parse(['event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n']);
      expect(messages).toStrictEqual([
        { event: 'a', data: '1' },
        { event: 'b', data: '2' },
      ]);
    });

    it('accepts CR-only line ends', () => {
      const { messages } = parse(['event: a\rdata: 1\r\revent: b\rdata: 2\r\r']);
      expect(messages).toStrictEqual([
        { event: 'a', data: '1' },
        { event: 'b', data: '2' },
      ]);
    });

    it('accepts line ends mixed within one stream', () => {
      const { messages } = parse(['data: 1\r\n\rdata: 2\n\r\ndata: 3\r\rdata: 4\n\n']);
      expect(messages.map((message) => message.data)).toStrictEqual(['1', '2', '3', '4']);
    });

    it('treats a CRLF split between two chunks as one line end', () => {
      const { messages } = parse(['data: 1\r', '\ndata: 2\r', '\n\r', '\n']);
      expect(messages).toStrictEqual([{ data: '1\n2' }]);
    });

    it('treats a CR at the end of a chunk followed by another line as a line end', () => {
      const { messages } = parse(['data: 1\r', 'data: 2\r', '\r']);
      expect(messages).toStrictEqual([{ data: '1\n2' }]);
    });

    it('splits lines on CR and LF only, keeping U+2028, U+2029, NEL and other separators inside data', () => {
      const json = '{"text":"a\u2028b\u2029c\u0085d"}';
      const { messages } = parse([`data: ${json}\n\n`]);
      expect(messages).toStrictEqual([{ data: json }]);
      expect(JSON.parse(messages[0]!.data)).toStrictEqual({ text: 'a\u2028b\u2029c\u0085d' });
      const controls = 'a\u000bb\u000cc\u001cd\u001de\u001ef';
      expect(parse([`data: ${controls}\n\n`]).messages).toStrictEqual([{ data: controls }]);
    });

    it('ignores a UTF-8 byte order mark at the start of the stream', () => {
      expect(parse(['\uFEFFdata: x\n\n']).messages).toStrictEqual([{ data: 'x' }]);
      const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('data: x\n\n')]);
      expect(parse([bytes]).messages).toStrictEqual([{ data: 'x' }]);
      expect(parse([bytes.subarray(0, 2), bytes.subarray(2)]).messages).toStrictEqual([
        { data: 'x' },
      ]);
    });

    it('removes only one leading BOM and keeps a BOM elsewhere', () => {
      expect(parse(['\uFEFF\uFEFFdata: x\n\n']).messages).toStrictEqual([]);
      expect(parse(['data: \uFEFFx\n\n']).messages).toStrictEqual([{ data: '\uFEFFx' }]);
      expect(parse(['data: x\n\n', '\uFEFFdata: y\n\n']).messages).toStrictEqual([{ data: 'x' }]);
    });
  });

  describe('fields', () => {
    it('removes exactly one space after the colon', () => {
      const { messages } = parse(['data:x\n\ndata: x\n\ndata:  x\n\n']);
      expect(messages.map((message) => message.data)).toStrictEqual(['x', 'x', ' x']);
    });

    it('reads a field name alone as an empty value', () => {
      expect(parse(['data\n\n']).messages).toStrictEqual([{ data: '' }]);
      expect(parse(['data\ndata\n\n']).messages).toStrictEqual([{ data: '\n' }]);
      expect(parse(['event\ndata: x\n\n']).messages).toStrictEqual([{ data: 'x' }]);
    });

    it('keeps colons after the first one in the value', () => {
      expect(parse(['data: a:b: c\n\n']).messages).toStrictEqual([{ data: 'a:b: c' }]);
    });

    it('joins multi-line data with LF', () => {
      const { messages } = parse(['data: {\ndata:   "a": 1\ndata: }\n\n']);
      expect(messages).toStrictEqual([{ data: '{\n  "a": 1\n}' }]);
    });

    it('keeps an empty data line as an empty line of the data', () => {
      expect(parse(['data: a\ndata:\ndata: b\n\n']).messages).toStrictEqual([{ data: 'a\n\nb' }]);
      expect(parse(['data:\n\n']).messages).toStrictEqual([{ data: '' }]);
    });

    it('ignores unknown fields and field names that only start like a known one', () => {
      const { messages } = parse([
        'foo: bar\ndatum: 1\ndata2: 2\nevents: x\nidx: 3\nretryx: 4\nData: 5\n DATA: 6\ndata: ok\n\n',
      ]);
      expect(messages).toStrictEqual([{ data: 'ok' }]);
    });

    it('leaves event undefined when the event has no event field or an empty one', () => {
      expect(parse(['data: x\n\n']).messages[0]).toStrictEqual({ data: 'x' });
      expect(parse(['event:\ndata: x\n\n']).messages[0]).toStrictEqual({ data: 'x' });
      expect(parse(['data: x\n\n']).messages[0]?.event).toBeUndefined();
    });

    it('keeps the last event field of an event', () => {
      expect(parse(['event: a\nevent: b\ndata: x\n\n']).messages).toStrictEqual([
        { event: 'b', data: 'x' },
      ]);
    });

    it('does not dispatch an event without data lines, and resets its event name at the blank line', () => {
      const { messages } = parse(['event: ping\n\ndata: x\n\nevent: ping\nid: 1\n\n']);
      expect(messages).toStrictEqual([{ data: 'x' }]);
    });

    it('puts the event id on the message and ignores an id containing NUL', () => {
      const { messages } = parse([
        'id: 1\ndata: a\n\nid: bad\u0000id\ndata: b\n\nid:\ndata: c\n\nid: 2\nid: 3\ndata: d\n\n',
      ]);
      expect(messages).toStrictEqual([
        { id: '1', data: 'a' },
        { data: 'b' },
        { id: '', data: 'c' },
        { id: '3', data: 'd' },
      ]);
    });

    it('keeps the last event id across events in lastEventId, as the spec does', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (message) => messages.push(message) });
      expect(parser.lastEventId).toBe('');
      parser.push('id: 7\ndata: a\n\n');
      expect(parser.lastEventId).toBe('7');
      parser.push('data: b\n\nid: bad\u0000\ndata: c\n\n');
      expect(parser.lastEventId).toBe('7');
      parser.push('id: 9\n');
      expect(parser.lastEventId).toBe('7');
      parser.push('\n');
      expect(parser.lastEventId).toBe('9');
      parser.push('id\n\n');
      expect(parser.lastEventId).toBe('');
      expect(messages.map((message) => message.id)).toStrictEqual(['7', undefined, undefined]);
    });

    it('reads retry only when it is all ASCII digits', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (message) => messages.push(message) });
      parser.push('retry: 1500\ndata: a\n\n');
      parser.push('retry: 15s\ndata: b\n\nretry: -1\ndata: c\n\nretry: 1.5\ndata: d\n\n');
      parser.push('retry:\ndata: e\n\nretry:  20\ndata: f\n\nretry: ٣\ndata: g\n\n');
      expect(parser.reconnectionTime).toBe(1500);
      parser.push(`retry: ${'9'.repeat(400)}\ndata: h\n\nretry: 0\n\n`);
      expect(parser.reconnectionTime).toBe(0);
      expect(messages).toStrictEqual([
        { retry: 1500, data: 'a' },
        { data: 'b' },
        { data: 'c' },
        { data: 'd' },
        { data: 'e' },
        { data: 'f' },
        { data: 'g' },
        { data: 'h' },
      ]);
    });

    it('reports comment lines without their leading colon and single space', () => {
      const { messages, comments } = parse([': ping\n:keep-alive\n:  two\n:\ndata: x\n\n: tail\n']);
      expect(comments).toStrictEqual(['ping', 'keep-alive', ' two', '', 'tail']);
      expect(messages).toStrictEqual([{ data: 'x' }]);
    });

    it('lets a comment sit between the fields of an event without ending it', () => {
      const { messages, comments } = parse(['event: a\n: ping\ndata: 1\n\n']);
      expect(messages).toStrictEqual([{ event: 'a', data: '1' }]);
      expect(comments).toStrictEqual(['ping']);
    });

    it('works without an onComment callback', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (message) => messages.push(message) });
      parser.push(': ping\n\ndata: x\n\n');
      expect(messages).toStrictEqual([{ data: 'x' }]);
    });
  });

  describe('bytes', () => {
    it('decodes multi-byte characters split across chunks at every byte', () => {
      const data = 'héllo wörld — 你好 🎉 \u2028';
      const stream = `event: é\ndata: ${data}\n\n`;
      expect(parse(byteByByte(stream)).messages).toStrictEqual([{ event: 'é', data }]);
    });

    it('replaces invalid UTF-8 with U+FFFD instead of throwing', () => {
      const bytes = Buffer.concat([
        Buffer.from('data: a'),
        Buffer.from([0xff, 0xc3, 0x28, 0xed, 0xa0, 0x80]),
        Buffer.from('b\n\n'),
      ]);
      const { messages } = parse([bytes]);
      expect(messages).toHaveLength(1);
      expect(messages[0]!.data.startsWith('a\uFFFD')).toBe(true);
      expect(messages[0]!.data.endsWith('b')).toBe(true);
    });

    it('turns a truncated character at the end of the stream into U+FFFD', () => {
      const messages: SseMessage[] = [];
      const comments: string[] = [];
      const parser = new SseParser({
        onMessage: (message) => messages.push(message),
        onComment: (text) => comments.push(text),
      });
      parser.push(Buffer.from(': x\n'));
      parser.push(Buffer.from('🎉', 'utf8').subarray(0, 2));
      expect(parser.end()).toStrictEqual({ incomplete: true });
      expect(comments).toStrictEqual(['x']);
    });

    it('accepts strings and bytes in one stream', () => {
      const bytes = Buffer.from('data: é\n\n');
      const { messages } = parse(['data: a', Buffer.from('b'), 'c\n\n', bytes, 'data: d\n\n']);
      expect(messages).toStrictEqual([{ data: 'abc' }, { data: 'é' }, { data: 'd' }]);
      const cut = parse([Buffer.from('data: a'), Buffer.from('é').subarray(0, 1), 'b\n\n']);
      expect(cut.messages).toStrictEqual([{ data: 'a\uFFFDb' }]);
    });

    it('reads a long line that arrives in many tiny byte chunks', () => {
      const data = 'é🎉 x'.repeat(3000);
      const stream = Buffer.from(`event: big\ndata: ${data}\n\ndata: next\n\n`);
      const chunks: Uint8Array[] = [];
      for (let at = 0; at < stream.length; at += 5) chunks.push(stream.subarray(at, at + 5));
      expect(parse(chunks).messages).toStrictEqual([{ event: 'big', data }, { data: 'next' }]);
    });

    it('dispatches an event in the push() that brings its blank line, however small the chunks', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (message) => messages.push(message) });
      for (const byte of Buffer.from('data: é\n')) parser.push(Uint8Array.of(byte));
      expect(messages).toStrictEqual([]);
      parser.push(Uint8Array.of(0x0a));
      expect(messages).toStrictEqual([{ data: 'é' }]);
      parser.push(Buffer.from('data: x\r'));
      parser.push(Buffer.from('\r'));
      expect(messages).toStrictEqual([{ data: 'é' }, { data: 'x' }]);
    });

    it('reads plain Uint8Array views as well as Buffers', () => {
      const text = `data: ${'ascii '.repeat(20)}\n\ndata: ${'é'.repeat(40)}\n\n`;
      const backing = new Uint8Array(Buffer.byteLength(text) + 10);
      backing.set(Buffer.from(text), 5);
      const view = backing.subarray(5, 5 + Buffer.byteLength(text));
      const asciiEnd = text.indexOf('\n\n') + 2;
      expect(parse([view.subarray(0, asciiEnd), view.subarray(asciiEnd)]).messages).toStrictEqual([
        { data: 'ascii '.repeat(20) },
        { data: 'é'.repeat(40) },
      ]);
    });

    it('ignores empty chunks', () => {
      const { messages } = parse(['', new Uint8Array(0), 'data: x', '', '\n\n', new Uint8Array(0)]);
      expect(messages).toStrictEqual([{ data: 'x' }]);
    });
  });

  describe('end()', () => {
    it('does not dispatch an event without its blank line and reports it as incomplete', () => {
      const { messages, incomplete } = parse(['data: a\n\ndata: b\n']);
      expect(messages).toStrictEqual([{ data: 'a' }]);
      expect(incomplete).toBe(true);
    });

    it('reports an unterminated line as incomplete', () => {
      expect(parse(['data: a\n\ndata: {"type":']).incomplete).toBe(true);
      expect(parse(['data: a\n\n: pi']).incomplete).toBe(true);
    });

    it('reports a stream that ends on an event boundary as complete', () => {
      expect(parse(['data: a\n\n']).incomplete).toBe(false);
      expect(parse(['data: a\r\r']).incomplete).toBe(false);
      expect(parse(['data: a\n\n: ping\n']).incomplete).toBe(false);
      expect(parse(['data: a\n\nevent: only-a-name\n']).incomplete).toBe(false);
      expect(parse([]).incomplete).toBe(false);
    });

    it('refuses push() after end() and answers a second end() as complete', () => {
      const parser = new SseParser({ onMessage: () => undefined });
      parser.push('data: a\n');
      expect(parser.end()).toStrictEqual({ incomplete: true });
      expect(parser.end()).toStrictEqual({ incomplete: false });
      expect(() => parser.push('data: b\n\n')).toThrow(/after end/);
    });
  });

  describe('maxLineLength', () => {
    it('defaults to 32 Mi characters', () => {
      expect(DEFAULT_MAX_LINE_LENGTH).toBe(32 * 1024 * 1024);
    });

    it('throws SseLineTooLongError when a line arriving in pieces outgrows the limit', () => {
      const parser = new SseParser({ onMessage: () => undefined, maxLineLength: 100 });
      parser.push('data: ');
      for (let index = 0; index < 9; index += 1) parser.push('0123456789');
      let thrown: unknown;
      try {
        parser.push('0123456789');
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(SseLineTooLongError);
      const error = thrown as SseLineTooLongError;
      expect(error.code).toBe('relay_sse_line_too_long');
      expect(error.limit).toBe(100);
      expect(error.name).toBe('SseLineTooLongError');
      expect(error.message).toMatch(/longer than 100 characters/);
    });

    it('throws as soon as a line in tiny byte chunks outgrows the limit', () => {
      const parser = new SseParser({ onMessage: () => undefined, maxLineLength: 100 });
      const line = Buffer.from(`data: ${'x'.repeat(94)}`);
      for (let at = 0; at < line.length; at += 3) parser.push(line.subarray(at, at + 3));
      expect(() => parser.push(Buffer.from('y'))).toThrow(SseLineTooLongError);
    });

    it('throws when one chunk holds a complete line longer than the limit', () => {
      const parser = new SseParser({ onMessage: () => undefined, maxLineLength: 10 });
      expect(() => parser.push(': 0123456789\n')).toThrow(SseLineTooLongError);
    });

    it('counts the data already held for the event', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (m) => messages.push(m), maxLineLength: 20 });
      parser.push('data: 12345\ndata: 12345\n');
      expect(() => parser.push('data: 12345\n')).toThrow(SseLineTooLongError);
      expect(messages).toStrictEqual([]);
    });

    it('accepts lines up to the limit and frees the count at each event', () => {
      const messages: SseMessage[] = [];
      const parser = new SseParser({ onMessage: (m) => messages.push(m), maxLineLength: 10 });
      for (let index = 0; index < 5; index += 1) parser.push('data: 1234\n\n');
      parser.push('data: ');
      parser.push('1234\n\n');
      expect(messages).toHaveLength(6);
    });

    it('keeps throwing the same error once the limit was hit', () => {
      const parser = new SseParser({ onMessage: () => undefined, maxLineLength: 5 });
      let first: unknown;
      try {
        parser.push('data: too long');
      } catch (error) {
        first = error;
      }
      expect(first).toBeInstanceOf(SseLineTooLongError);
      expect(() => parser.push('\n\n')).toThrow(first as Error);
      expect(() => parser.end()).toThrow(first as Error);
    });

    it('rejects a limit that is not a positive number', () => {
      expect(() => new SseParser({ onMessage: () => undefined, maxLineLength: 0 })).toThrow(
        RangeError,
      );
      expect(() => new SseParser({ onMessage: () => undefined, maxLineLength: NaN })).toThrow(
        RangeError,
      );
    });
  });

  it('propagates an exception thrown by onMessage out of push()', () => {
    const parser = new SseParser({
      onMessage: () => {
        throw new Error('boom');
      },
    });
    expect(() => parser.push('data: x\n\n')).toThrow('boom');
  });
});

describe('SSE serialization', () => {
  it('writes an event with its name, id, retry and data, ending with a blank line', () => {
    expect(serializeSseMessage({ event: 'response.created', data: '{"a":1}' })).toBe(
      'event: response.created\ndata: {"a":1}\n\n',
    );
    expect(serializeSseMessage({ data: 'x', id: '7', retry: 1000 })).toBe(
      'id: 7\nretry: 1000\ndata: x\n\n',
    );
    expect(serializeSseMessage({ data: '' })).toBe('data: \n\n');
    expect(serializeSseMessage({ event: '', data: 'x' })).toBe('data: x\n\n');
  });

  it('writes multi-line data as several data lines', () => {
    expect(serializeSseMessage({ data: 'a\nb\r\nc\rd\n' })).toBe(
      'data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n',
    );
  });

  it('refuses an event name or id with a line break, and a retry that is not an integer', () => {
    expect(() => serializeSseMessage({ event: 'a\ndata: injected', data: 'x' })).toThrow(TypeError);
    expect(() => serializeSseMessage({ id: '1\r', data: 'x' })).toThrow(TypeError);
    expect(() => serializeSseMessage({ retry: 1.5, data: 'x' })).toThrow(TypeError);
    expect(() => serializeSseMessage({ retry: -1, data: 'x' })).toThrow(TypeError);
    expect(() => serializeStreamEvent({ type: 'a\nb' })).toThrow(TypeError);
  });

  it('writes comments for keep-alives', () => {
    expect(serializeSseComment('ping')).toBe(': ping\n\n');
    expect(serializeSseComment('a\nb')).toBe(': a\n: b\n\n');
    expect(parse([serializeSseComment('keep-alive')])).toStrictEqual({
      messages: [],
      comments: ['keep-alive'],
      incomplete: false,
    });
  });

  it('writes a stream event in the exact Responses framing', () => {
    const event = { type: 'response.output_text.delta', sequence_number: 4, delta: 'Hi\n' };
    expect(serializeStreamEvent(event)).toBe(
      `event: response.output_text.delta\ndata: ${JSON.stringify(event)}\n\n`,
    );
  });

  it('uses already-serialized data verbatim when given', () => {
    const raw = '{"type":"response.created",  "sequence_number":0}';
    expect(serializeStreamEvent({ type: 'response.created' }, raw)).toBe(
      `event: response.created\ndata: ${raw}\n\n`,
    );
    expect(parse([serializeStreamEvent({ type: 'x' }, '{\n"a":1}')]).messages).toStrictEqual([
      { event: 'x', data: '{\n"a":1}' },
    ]);
  });

  it('round-trips messages through serialize then parse', () => {
    const messages: SseMessage[] = [
      { event: 'response.created', data: created },
      { data: 'no name' },
      { event: 'multi', data: 'line 1\nline 2\n\nline 4\n' },
      { data: '' },
      { data: '\n' },
      { data: ' leading space, trailing space ' },
      { data: ': not a comment\ndata: not a field\n' },
      { event: 'ünïcödé', data: '🎉 \u2028 \u2029 \uFEFF 你好', id: 'abc', retry: 3000 },
      { data: '{"text":"a\\nb"}', id: '' },
    ];
    const stream = messages.map(serializeSseMessage).join('');
    expect(parse([stream]).messages).toStrictEqual(messages);
    expect(parse(byteByByte(stream)).messages).toStrictEqual(messages);
  });

  it('round-trips data with CRLF and CR as LF, the only line break SSE data can carry', () => {
    const stream = serializeSseMessage({ data: 'a\r\nb\rc\nd' });
    expect(parse([stream]).messages).toStrictEqual([{ data: 'a\nb\nc\nd' }]);
  });

  it('round-trips stream events', () => {
    const events = [
      { type: 'response.created', sequence_number: 0, response: { id: 'resp_1', output: [] } },
      { type: 'response.output_text.delta', sequence_number: 1, delta: 'a\u2028\n"b"' },
    ];
    const { messages } = parse([events.map((event) => serializeStreamEvent(event)).join('')]);
    expect(messages.map((message) => [message.event, JSON.parse(message.data)])).toStrictEqual(
      events.map((event) => [event.type, event]),
    );
  });
});

describe('[DONE] sentinel', () => {
  it('recognises data [DONE], with surrounding whitespace', () => {
    expect(SSE_DONE).toBe('[DONE]');
    expect(isDoneSentinel({ data: '[DONE]' })).toBe(true);
    expect(isDoneSentinel({ data: ' [DONE]\n' })).toBe(true);
    expect(isDoneSentinel(parse(['data: [DONE]\n\n']).messages[0]!)).toBe(true);
  });

  it('does not mistake other data for it', () => {
    expect(isDoneSentinel({ data: '"[DONE]"' })).toBe(false);
    expect(isDoneSentinel({ data: '[done]' })).toBe(false);
    expect(isDoneSentinel({ data: '' })).toBe(false);
    expect(isDoneSentinel({ event: '[DONE]', data: '{}' })).toBe(false);
  });
});
