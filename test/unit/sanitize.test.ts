import {
  ELLIPSIS,
  REDACTED,
  SENSITIVE_HEADERS,
  isSensitiveHeader,
  redactHeaders,
  sanitizeText,
  truncateText,
} from '../../lib/protocol/sanitize';

describe('sanitizeText', () => {
  describe('when the text carries a credential', () => {
    it.each([
      [
        'Bearer sk-…',
        'auth failed for Bearer sk-abc123def456',
        `auth failed for Bearer ${REDACTED}`,
      ],
      ['lower-case bearer', 'got bearer abc.def.ghi here', `got bearer ${REDACTED} here`],
      ['a bearer glued to a word', 'xBearer abc.def.ghi', `xBearer ${REDACTED}`],
      [
        'an sk-proj key',
        'Incorrect API key provided: sk-proj-AbCdEf0123456789_xyz-QRS.',
        `Incorrect API key provided: ${REDACTED}.`,
      ],
      ['an sk- key', 'key sk-test-SECRET1234567890abcdef used', `key ${REDACTED} used`],
      ['an rk- key', 'restricted rk-proj-0123456789abcdef', `restricted ${REDACTED}`],
      ['a sess- key', 'session sess-AbCdEf0123456789xyz', `session ${REDACTED}`],
      [
        'an sk- key glued to URL-encoding',
        'url ?q=key%3Dsk-test-SECRET1234567890abcdef&x',
        `url ?q=key%3D${REDACTED}&x`,
      ],
      ['a Basic credential', 'Basic dXNlcjpwYXNzd29yZDEy', `Basic ${REDACTED}`],
      ['a doubled Bearer', 'Bearer Bearer abc.def.ghi', `Bearer Bearer ${REDACTED}`],
      [
        'two bearers glued by a dot',
        'Bearer abc.def.ghi.Bearer abc.def.ghi',
        `Bearer ${REDACTED}Bearer ${REDACTED}`,
      ],
      ['a Bearer as a query value', '?key=Bearer abc.def.ghi', `?key=${REDACTED} ${REDACTED}`],
      ['a Bearer after a plain "basic"', 'basic Bearer abc.def.ghi', `basic Bearer ${REDACTED}`],
      [
        'a token after a plain "basic"',
        'basic token ghp123abc456def789',
        `basic token ${REDACTED}`,
      ],
      [
        'a JWT',
        'id eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl-_x end',
        `id ${REDACTED} end`,
      ],
      [
        'an opaque dotted triple',
        'sig AbCdEf0123456789.GhIjKl0123456789.MnOpQr0123456789 end',
        `sig ${REDACTED} end`,
      ],
      [
        'a long opaque token after "token"',
        'the token: AbCdEf0123456789ghijkl is expired',
        `the token: ${REDACTED} is expired`,
      ],
      [
        'a long opaque token after "the key is"',
        'the key is ABCDEF1234567890abcdefgh',
        `the key is ${REDACTED}`,
      ],
      [
        'a secret after "secret="',
        'client secret=Zm9vYmFyYmF6MTIzNDU2Nzg5',
        `client secret=${REDACTED}`,
      ],
      ['an AWS access key', 'aws AKIAABCDEFGHIJKLMNOP here', `aws ${REDACTED} here`],
      ['a GitHub token', 'gh ghp_ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 x', `gh ${REDACTED} x`],
      ['a Google API key', 'g AIzaSyA-0123456789abcdefghijklmnopqrstu x', `g ${REDACTED} x`],
    ])('redacts %s', (_name, input, expected) => {
      expect(sanitizeText(input)).toBe(expected);
    });

    it('redacts credential header lines up to the end of the line, any case', () => {
      const text = [
        'Authorization: Bearer sk-abc123456789',
        'x-api-key: abc',
        'API-Key: abc',
        'Proxy-Authorization: Basic Zm9vOmJhcg==',
        'Cookie: session=abc; other=def',
        'set-cookie: id=1; HttpOnly',
        'sec-websocket-protocol: openai-insecure-api-key.sk-abc123456789',
        'chatgpt-account-id: acct_123',
        'content-type: application/json',
      ].join('\n');
      expect(sanitizeText(text)).toBe(
        [
          `Authorization: ${REDACTED}`,
          `x-api-key: ${REDACTED}`,
          `API-Key: ${REDACTED}`,
          `Proxy-Authorization: ${REDACTED}`,
          `Cookie: ${REDACTED}`,
          `set-cookie: ${REDACTED}`,
          `sec-websocket-protocol: ${REDACTED}`,
          `chatgpt-account-id: ${REDACTED}`,
          'content-type: application/json',
        ].join('\n'),
      );
    });

    it('redacts header values written as JSON members, keeping the quotes', () => {
      expect(sanitizeText('{"authorization": "Bearer abc", "cookie":"a=b", "x":1}')).toBe(
        `{"authorization": "${REDACTED}", "cookie":"${REDACTED}", "x":1}`,
      );
      expect(sanitizeText(`{'api_key': 'abc'}`)).toBe(`{'api_key': '${REDACTED}'}`);
    });

    it('redacts credential query parameters in URLs and keeps the rest of the URL', () => {
      expect(
        sanitizeText('GET https://api.example.com/v1/x?api_key=abc123&model=gpt&key=zzz#frag'),
      ).toBe(`GET https://api.example.com/v1/x?api_key=${REDACTED}&model=gpt&key=${REDACTED}#frag`);
      expect(sanitizeText('/cb?access_token=a.b.c&state=1')).toBe(
        `/cb?access_token=${REDACTED}&state=1`,
      );
      expect(sanitizeText('?apiKey=secret1')).toBe(`?apiKey=${REDACTED}`);
    });

    it('redacts user-info in URLs', () => {
      expect(sanitizeText('connect https://user:p4ss@proxy.example.com:8080/ failed')).toBe(
        `connect https://${REDACTED}@proxy.example.com:8080/ failed`,
      );
      expect(sanitizeText('redis://:hunter2@127.0.0.1:6379/0')).toBe(
        `redis://${REDACTED}@127.0.0.1:6379/0`,
      );
    });
  });

  describe('when the text has no credential', () => {
    it.each([
      "Previous response with id 'resp_68af0123456789abcdef0123' not found.",
      'No tool output found for function call call_UiILq3mzXeeZwpxPOzSMZ64z.',
      'No tool call found for function call output with call_id call_UiILq3mzXeeZwpxPOzSMZ64z.',
      'Invalid `previous_response_id`.',
      'Rate limit reached for requests. Please try again in 2s.',
      "Unsupported parameter: 'max_output_tokens' is not supported with this model.",
      'Your input exceeds the context window of this model. Please adjust your input and try again.',
      'The model `gpt-5.5` does not exist or you do not have access to it.',
      'You can find your API key at https://platform.openai.com/account/api-keys.',
      'task-management-system at api.openai.com responded',
      'This is a basic request with a token limit of 4096 tokens.',
      'Bearer',
      'openai_client.responses_api.streaming_handler failed',
      '',
    ])('leaves %j unchanged', (text) => {
      expect(sanitizeText(text)).toBe(text);
    });
  });

  it('is idempotent', () => {
    const once = sanitizeText(
      'Authorization: Bearer x\nBearer sk-proj-abc123456789 https://u:p@h/?key=v eyJabc.eyJdef.ghi',
    );
    expect(sanitizeText(once)).toBe(once);
  });

  it.each([
    'a',
    'a.',
    'sk-',
    'eyJ',
    'Bearer ',
    'basic aaaa ',
    'token token ',
    'key key ',
    'key: aaaaaaaaaaaaaaaaaaaa ',
    'authorization',
    'https://',
    'key=',
    'AbCdEf0123456789.',
  ])('stays linear on 300k characters of %j (no catastrophic backtracking)', (unit) => {
    const text = unit.repeat(Math.ceil(300_000 / unit.length));
    const started = process.hrtime.bigint();
    sanitizeText(text);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(1500);
  });
});

describe('SENSITIVE_HEADERS', () => {
  it('lists the credential headers, lower-case', () => {
    expect(SENSITIVE_HEADERS).toEqual(
      expect.arrayContaining([
        'authorization',
        'proxy-authorization',
        'x-api-key',
        'api-key',
        'cookie',
        'set-cookie',
        'sec-websocket-protocol',
        'chatgpt-account-id',
      ]),
    );
    for (const name of SENSITIVE_HEADERS) expect(name).toBe(name.toLowerCase());
  });

  it('leaves identifiers that are not credentials out', () => {
    expect(isSensitiveHeader('openai-organization')).toBe(false);
    expect(isSensitiveHeader('x-request-id')).toBe(false);
  });

  it('matches names in any case', () => {
    expect(isSensitiveHeader('Authorization')).toBe(true);
    expect(isSensitiveHeader('X-API-KEY')).toBe(true);
  });

  it('redactHeaders replaces only sensitive values', () => {
    expect(
      redactHeaders({
        Authorization: 'Bearer sk-x',
        cookie: ['a=1', 'b=2'],
        'x-request-id': 'req_1',
        'x-api-key': undefined,
      }),
    ).toEqual({
      Authorization: REDACTED,
      cookie: REDACTED,
      'x-request-id': 'req_1',
      'x-api-key': undefined,
    });
  });
});

describe('truncateText', () => {
  it('returns short text unchanged', () => {
    expect(truncateText('hello', 5)).toBe('hello');
    expect(truncateText('', 0)).toBe('');
  });

  it('cuts long text to exactly the cap, ending with the ellipsis', () => {
    const out = truncateText('abcdefghij', 5);
    expect(out).toBe(`abcd${ELLIPSIS}`);
    expect(out).toHaveLength(5);
  });

  it('never splits a surrogate pair', () => {
    const text = 'ab😀cd'; // 😀 is two UTF-16 code units at indexes 2-3
    const out = truncateText(text, 4);
    expect(out).toBe(`ab${ELLIPSIS}`);
    expect(out.length).toBeLessThanOrEqual(4);
    expect(truncateText(text, 5)).toBe(`ab😀${ELLIPSIS}`);
    expect(() => encodeURIComponent(truncateText('😀'.repeat(10), 6))).not.toThrow();
  });

  it('handles tiny and odd caps', () => {
    expect(truncateText('abc', 1)).toBe(ELLIPSIS);
    expect(truncateText('abc', 0)).toBe('');
    expect(truncateText('abc', -3)).toBe('');
    expect(truncateText('abc', Number.POSITIVE_INFINITY)).toBe('abc');
    expect(truncateText('abcdef', 3.9)).toBe(`ab${ELLIPSIS}`);
  });
});
