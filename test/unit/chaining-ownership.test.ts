/** The pure parts of the ownership guard: route parsing and the answers served from the store. */
import {
  inputItemsPage,
  parseResponseRoute,
  responseFromRecord,
} from '../../lib/middleware/chaining-ownership';
import { isCreateRequest } from '../../lib/middleware/response-chaining';
import type { StoredResponse } from '../../lib/store/session-store';
import type { IncomingMessage } from 'node:http';

describe('parseResponseRoute', () => {
  it('recognises the four per-response routes under any prefix', () => {
    expect(parseResponseRoute('GET', '/v1/responses/resp_1')).toEqual({
      id: 'resp_1',
      action: 'retrieve',
    });
    expect(parseResponseRoute('DELETE', '/responses/resp_1/')).toEqual({
      id: 'resp_1',
      action: 'delete',
    });
    expect(parseResponseRoute('GET', '/v1/responses/resp_1/input_items?limit=5')).toEqual({
      id: 'resp_1',
      action: 'input_items',
    });
    expect(parseResponseRoute('POST', '/backend-api/codex/responses/resp_1/cancel')).toEqual({
      id: 'resp_1',
      action: 'cancel',
    });
    expect(parseResponseRoute('GET', '/v1/responses/resp%2F1')).toEqual({
      id: 'resp/1',
      action: 'retrieve',
    });
  });

  it('leaves every other request alone', () => {
    expect(parseResponseRoute('POST', '/v1/responses')).toBeUndefined();
    expect(parseResponseRoute('POST', '/v1/responses/compact')).toBeUndefined();
    expect(parseResponseRoute('POST', '/v1/responses/input_tokens')).toBeUndefined();
    expect(parseResponseRoute('GET', '/v1/responses/resp_1/cancel')).toBeUndefined();
    expect(parseResponseRoute('PUT', '/v1/responses/resp_1')).toBeUndefined();
    expect(parseResponseRoute('GET', '/v1/models/gpt')).toBeUndefined();
  });
});

describe('isCreateRequest', () => {
  const req = (method: string, url: string, originalUrl?: string): IncomingMessage =>
    ({ method, url, originalUrl, headers: {} }) as unknown as IncomingMessage;

  it('is POST …/responses only', () => {
    expect(isCreateRequest(req('POST', '/v1/responses'))).toBe(true);
    expect(isCreateRequest(req('POST', '/responses?x=1'))).toBe(true);
    expect(isCreateRequest(req('POST', '/', '/v1/responses'))).toBe(true);
    expect(isCreateRequest(req('POST', '/backend-api/codex/responses/'))).toBe(true);
    expect(isCreateRequest(req('GET', '/v1/responses'))).toBe(false);
    expect(isCreateRequest(req('POST', '/v1/responses/compact'))).toBe(false);
    expect(isCreateRequest(req('POST', '/v1/responses/resp_1/cancel'))).toBe(false);
  });
});

const record: StoredResponse = {
  tenant: 'tenantA',
  id: 'resp_2',
  parentId: 'resp_1',
  input: [
    { type: 'function_call_output', id: 'fco_1', call_id: 'c1', output: 'a' },
    { type: 'message', id: 'msg_2', role: 'user', content: 'b' },
    { type: 'message', id: 'msg_3', role: 'user', content: 'c' },
  ],
  output: [{ type: 'message', id: 'msg_4', role: 'assistant', content: [] }],
  model: 'gpt-test',
  instructions: 'be brief',
  upstream: 'a',
  createdAt: 1_700_000_000_500,
};

describe('responseFromRecord', () => {
  it('is a completed Response carrying the stored output and parent', () => {
    expect(responseFromRecord(record)).toMatchObject({
      id: 'resp_2',
      object: 'response',
      created_at: 1_700_000_000,
      status: 'completed',
      model: 'gpt-test',
      instructions: 'be brief',
      output: record.output,
      previous_response_id: 'resp_1',
    });
    expect(JSON.stringify(responseFromRecord(record))).not.toContain('tenantA');
  });
});

describe('inputItemsPage', () => {
  it('lists newest first by default, like the API', () => {
    const page = inputItemsPage(record, '/v1/responses/resp_2/input_items');
    expect((page.data as Array<{ id: string }>).map((item) => item.id)).toEqual([
      'msg_3',
      'msg_2',
      'fco_1',
    ]);
    expect(page).toMatchObject({
      object: 'list',
      first_id: 'msg_3',
      last_id: 'fco_1',
      has_more: false,
    });
  });

  it('honours order, limit and after', () => {
    const page = inputItemsPage(record, '/x?order=asc&limit=1&after=fco_1');
    expect(page).toMatchObject({
      data: [record.input[1]],
      first_id: 'msg_2',
      has_more: true,
    });
    expect(inputItemsPage(record, '/x?limit=500').data).toHaveLength(3);
    expect(inputItemsPage(record, '/x?after=unknown').data).toEqual([]);
  });
});
