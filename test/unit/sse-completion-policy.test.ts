/**
 * The terminal-event rules of sseCompletion: which `output` a terminal event carries, and what
 * the relay's own `response.created` looks like.
 */
import {
  createdEventFor,
  terminalOutput,
  terminalResponseFor,
  type SeenItems,
} from '../../lib/middleware/sse-completion-policy';
import type { ResponseItem, ResponseObject } from '../../lib/protocol/types';

const done: ResponseItem = {
  type: 'function_call',
  id: 'fc_1',
  call_id: 'call_1',
  name: 'f',
  arguments: '{}',
  status: 'completed',
};
const partial: ResponseItem = {
  type: 'message',
  id: 'msg_2',
  role: 'assistant',
  status: 'in_progress',
  content: [{ type: 'output_text', text: 'hal', annotations: [] }],
};

const seen = (completed: ResponseItem[], all: ResponseItem[]): SeenItems => ({
  completedItems: () => completed,
  items: () => all,
});

describe('terminalOutput', () => {
  it("keeps a non-empty output: it is the upstream's word", () => {
    expect(
      terminalOutput('response.completed', [done], seen([done], [done, partial])),
    ).toBeUndefined();
  });

  it('rebuilds an empty or missing output of completed/incomplete from every item seen', () => {
    const items = seen([done], [done, partial]);
    expect(terminalOutput('response.completed', [], items)).toEqual([done, partial]);
    expect(terminalOutput('response.completed', undefined, items)).toEqual([done, partial]);
    expect(terminalOutput('response.completed', null, items)).toEqual([done, partial]);
    expect(terminalOutput('response.incomplete', [], items)).toEqual([done, partial]);
  });

  it('rebuilds an empty output of failed from the completed items only', () => {
    expect(terminalOutput('response.failed', [], seen([done], [done, partial]))).toEqual([done]);
    expect(terminalOutput('response.failed', [], seen([], [partial]))).toBeUndefined();
  });

  it('keeps an empty list when nothing was streamed, and turns a missing one into []', () => {
    expect(terminalOutput('response.completed', [], seen([], []))).toBeUndefined();
    expect(terminalOutput('response.completed', undefined, seen([], []))).toEqual([]);
    expect(terminalOutput('response.failed', 'nonsense', seen([], []))).toEqual([]);
  });
});

describe('createdEventFor', () => {
  it('turns the first lifecycle event into an in-progress response.created with its id', () => {
    const failed = {
      type: 'response.failed',
      sequence_number: 0,
      response: {
        id: 'resp_9',
        object: 'response',
        model: 'gpt-5',
        status: 'failed',
        error: { code: 'server_error', message: 'boom' },
        usage: { input_tokens: 1, output_tokens: 0, total_tokens: 1 },
        output: [done],
      },
    };
    const created = createdEventFor(failed);
    expect(created).toEqual({
      type: 'response.created',
      response: {
        id: 'resp_9',
        object: 'response',
        model: 'gpt-5',
        status: 'in_progress',
        error: null,
        usage: null,
        output: [],
      },
    });
    expect(failed.response.status).toBe('failed');
  });

  it('makes a minimal Response for a stream that starts with an item event', () => {
    const created = createdEventFor({ type: 'response.output_item.done', output_index: 0 });
    const response = created.response as ResponseObject;
    expect(response.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(response).toMatchObject({ object: 'response', status: 'in_progress', output: [] });
    expect(
      (
        createdEventFor({ type: 'response.output_item.done' }, 'resp_known')
          .response as ResponseObject
      ).id,
    ).toBe('resp_known');
  });
});

describe('terminalResponseFor', () => {
  it("takes the last Response seen with the terminal's status", () => {
    const base: ResponseObject = {
      id: 'resp_1',
      object: 'response',
      status: 'in_progress',
      output: [],
    };
    expect(terminalResponseFor('response.incomplete', { ...base })).toEqual({
      ...base,
      status: 'incomplete',
    });
  });
});
