import { isTerminalEventType, isOutputItemEvent } from '../../lib/protocol/types';

describe('protocol types', () => {
  it('recognises exactly the three terminal events', () => {
    expect(isTerminalEventType('response.completed')).toBe(true);
    expect(isTerminalEventType('response.failed')).toBe(true);
    expect(isTerminalEventType('response.incomplete')).toBe(true);
    expect(isTerminalEventType('response.in_progress')).toBe(false);
  });
  it('guards output item events on their shape', () => {
    expect(
      isOutputItemEvent({
        type: 'response.output_item.done',
        output_index: 0,
        item: { type: 'message' },
      }),
    ).toBe(true);
    expect(isOutputItemEvent({ type: 'response.output_item.done', output_index: 0 })).toBe(false);
  });
});
