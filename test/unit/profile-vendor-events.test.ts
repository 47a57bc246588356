import { createProfileContext, identifyClient, isCodexClient } from '../../lib/profiles/clients';
import {
  dropsVendorEvents,
  isCodexVendorEventType,
  isVendorEventType,
  vendorEventPredicate,
} from '../../lib/profiles/vendor-events';
import {
  exchangesOf,
  fixtureNames,
  loadFixture,
  type HttpRequestRecord,
} from '../support/fixtures';

describe('vendor event types', () => {
  it.each(['codex.rate_limits', 'codex.keepalive', 'vendor.thing', 'rate_limits.updated'])(
    '%s is a vendor event',
    (type) => expect(isVendorEventType(type)).toBe(true),
  );

  it.each([
    'response.created',
    'response.output_text.delta',
    'response.completed',
    'response.function_call_arguments.done',
    'error',
    'keepalive',
  ])('%s is standard', (type) => expect(isVendorEventType(type)).toBe(false));

  it('the codex rule adds response.metadata', () => {
    expect(isVendorEventType('response.metadata')).toBe(false);
    expect(isCodexVendorEventType('response.metadata')).toBe(true);
    expect(isCodexVendorEventType('codex.rate_limits')).toBe(true);
    expect(isCodexVendorEventType('response.output_item.done')).toBe(false);
  });

  it('every event the Codex CLI fixtures were served is standard', () => {
    for (const name of fixtureNames()) {
      for (const exchange of exchangesOf(loadFixture(name))) {
        for (const event of exchange.events) {
          if (event.type === 'error') continue;
          expect(isCodexVendorEventType(event.type)).toBe(false);
        }
      }
    }
  });

  it('a profile without its own rule uses the default one', () => {
    expect(vendorEventPredicate({})('codex.rate_limits')).toBe(true);
    const custom = (type: string) => type === 'x';
    expect(vendorEventPredicate({ isVendorEvent: custom })).toBe(custom);
  });
});

describe('vendor event policy', () => {
  it('pass keeps, drop drops, auto keeps them for Codex clients only', () => {
    for (const client of ['codex', 'openai-sdk', 'other'] as const) {
      expect(dropsVendorEvents('pass', client)).toBe(false);
      expect(dropsVendorEvents('drop', client)).toBe(true);
    }
    expect(dropsVendorEvents('auto', 'codex')).toBe(false);
    expect(dropsVendorEvents('auto', 'openai-sdk')).toBe(true);
    expect(dropsVendorEvents('auto', 'other')).toBe(true);
  });
});

describe('client identification', () => {
  it('recognises every Codex CLI request of the fixtures by its headers', () => {
    let count = 0;
    for (const name of fixtureNames()) {
      for (const record of loadFixture(name)) {
        if (record.kind !== 'http_request' && record.kind !== 'ws_upgrade_request') continue;
        count += 1;
        expect(identifyClient((record as HttpRequestRecord).headers)).toBe('codex');
      }
    }
    expect(count).toBeGreaterThan(50);
  });

  it.each([
    [{ originator: 'codex_cli_rs' }, 'codex'],
    [{ originator: 'Codex Desktop' }, 'codex'],
    [{ 'user-agent': 'codex_vscode/0.50.0' }, 'codex'],
    [{ 'x-codex-turn-metadata': '{}' }, 'codex'],
    [{ 'x-stainless-lang': 'js', 'user-agent': 'OpenAI/JS 6.49.0' }, 'openai-sdk'],
    [{ 'user-agent': 'curl/8.0' }, 'other'],
    [{ 'user-agent': 'codexfoo-bot' }, 'other'],
    [{}, 'other'],
  ] as const)('%j is %s', (headers, kind) => {
    expect(identifyClient(headers)).toBe(kind);
    expect(isCodexClient(headers)).toBe(kind === 'codex');
  });

  it('reads array-valued headers', () => {
    expect(identifyClient({ originator: ['codex_exec', 'x'] })).toBe('codex');
  });

  it('createProfileContext identifies the client and collects notes', () => {
    const context = createProfileContext({ originator: 'codex_exec' });
    expect(context.client).toBe('codex');
    context.note('a', 'b');
    expect(context.notes).toEqual([{ code: 'a', detail: 'b' }]);
    expect(createProfileContext().client).toBe('other');
  });
});
