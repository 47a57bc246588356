/** The other endpoints of the stateful fake: retrieve, delete, input items, cancel (§4.2). */
import type { JsonObject } from '../../lib/protocol/types';
import { rawRequest } from '../support/fake-upstream/client';
import { errorOf, lastResponse, stream, useFakes } from '../support/fake-upstream/testing';

const start = useFakes();

async function created(fake: Awaited<ReturnType<typeof start>>, body: JsonObject = {}) {
  return lastResponse(await stream(fake, { model: 'm', input: 'hi', ...body }));
}

describe('GET /v1/responses/{id}', () => {
  it('returns the stored Response, equal to the one response.completed carried', async () => {
    const fake = await start();
    const response = await created(fake);
    const answer = await rawRequest(`${fake.url}/v1/responses/${String(response.id)}`, {
      method: 'GET',
    });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual(response);
  });

  it('answers 404 for an unknown id with the API wording', async () => {
    const fake = await start();
    const answer = await rawRequest(`${fake.url}/v1/responses/resp_unknown`, { method: 'GET' });
    expect(answer.status).toBe(404);
    expect(answer.json).toEqual({
      error: {
        message: "Response with id 'resp_unknown' not found.",
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
  });
});

describe('DELETE /v1/responses/{id}', () => {
  it('deletes once, then 404', async () => {
    const fake = await start();
    const { id } = await created(fake);
    const url = `${fake.url}/v1/responses/${String(id)}`;
    const first = await rawRequest(url, { method: 'DELETE' });
    expect(first.json).toEqual({ id, object: 'response.deleted', deleted: true });
    expect(fake.responses.has(String(id))).toBe(false);
    expect((await rawRequest(url, { method: 'DELETE' })).status).toBe(404);
    expect((await rawRequest(url, { method: 'GET' })).status).toBe(404);
  });
});

describe('GET /v1/responses/{id}/input_items', () => {
  it('lists the input items (ids given), newest first by default, with paging', async () => {
    const fake = await start();
    const { id } = await created(fake, {
      input: [
        { role: 'developer', content: 'be nice' },
        { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'one' }] },
        { role: 'user', content: 'two' },
      ],
    });
    const base = `${fake.url}/v1/responses/${String(id)}/input_items`;
    const all = (await rawRequest(base, { method: 'GET' })).json as JsonObject;
    const data = all.data as JsonObject[];
    expect(all).toMatchObject({ object: 'list', has_more: false });
    expect(data.map((item) => item.role)).toEqual(['user', 'user', 'developer']);
    expect(data[0]).toMatchObject({
      type: 'message',
      id: expect.stringMatching(/^msg_/),
      status: 'completed',
      content: [{ type: 'input_text', text: 'two' }],
    });
    expect(all.first_id).toBe(data[0]?.id);
    expect(all.last_id).toBe(data[2]?.id);

    const page = (await rawRequest(`${base}?order=asc&limit=1`, { method: 'GET' }))
      .json as JsonObject;
    expect((page.data as JsonObject[])[0]?.role).toBe('developer');
    expect(page.has_more).toBe(true);
    const next = (
      await rawRequest(`${base}?order=asc&limit=5&after=${String(page.last_id)}`, {
        method: 'GET',
      })
    ).json as JsonObject;
    expect((next.data as JsonObject[]).map((item) => item.role)).toEqual(['user', 'user']);
  });

  it('answers 404 for an unknown response', async () => {
    const fake = await start();
    const answer = await rawRequest(`${fake.url}/v1/responses/resp_x/input_items`, {
      method: 'GET',
    });
    expect(errorOf(answer).message).toBe("Response with id 'resp_x' not found.");
  });
});

describe('POST /v1/responses/{id}/cancel', () => {
  it('answers 400 for a synchronous response and 404 for an unknown one', async () => {
    const fake = await start();
    const { id } = await created(fake);
    const sync = await rawRequest(`${fake.url}/v1/responses/${String(id)}/cancel`, {});
    expect(sync.status).toBe(400);
    expect(errorOf(sync)).toEqual({
      message: 'Cannot cancel a synchronous response.',
      type: 'invalid_request_error',
      param: null,
      code: null,
    });
    const unknown = await rawRequest(`${fake.url}/v1/responses/resp_none/cancel`, {});
    expect(unknown.status).toBe(404);
  });
});

describe('the store', () => {
  it('keeps the request, the input as received (normalised), the context and the output', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'answer' });
    const { id } = await created(fake, { input: 'question', instructions: 'be brief' });
    const stored = fake.responses.get(String(id));
    expect(stored?.request).toMatchObject({ input: 'question', instructions: 'be brief' });
    expect(stored?.input).toEqual([
      {
        type: 'message',
        role: 'user',
        content: [{ type: 'input_text', text: 'question' }],
        status: 'completed',
        id: expect.stringMatching(/^msg_/),
      },
    ]);
    expect(stored?.context).toEqual(stored?.input);
    expect(stored?.output).toEqual(stored?.response.output);
    expect(stored?.response.status).toBe('completed');
  });

  it('stores a cut response as in_progress with the items finished before the cut', async () => {
    const fake = await start();
    fake.script({
      kind: 'cut',
      afterEvents: 8,
      then: { kind: 'tool_calls', calls: [{ name: 'f', arguments: '{"a":1}' }, { name: 'g' }] },
    });
    await stream(fake, { model: 'm', input: 'hi' });
    const stored = fake.responses.get(String(fake.requests[0]?.responseId));
    expect(stored?.response.status).toBe('in_progress');
    expect(stored?.output.map((item) => item.name)).toEqual(['f']);
  });
});
