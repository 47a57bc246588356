/**
 * Scripted behaviours: checking a behaviour given as JSON (the `x-fake-script` header), and
 * resolving one into a plan: either an HTTP error answer, or a generation (content) with stream
 * modifiers and an ending. Wrappers compose through `then`; the outermost ending wins.
 */
import type { JsonObject } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import { cdnErrorPage, defaultErrorBody } from './errors';
import type { ErrorShape, IdStyle } from './events';
import type { ContentSpec } from './generation';
import type { Behaviour, StreamErrorSpec } from './types';
import { STATUS_CODES } from 'node:http';

export interface StreamModifiers {
  /** Wait before each event. */
  delayMs: number;
  /** Lockstep: the gate name (`''` = the pending unnamed gate). */
  gate: string | undefined;
  sparse: boolean;
  holdOpen: boolean;
  injections: Array<{ at: number; raw: string }>;
  idStyle: IdStyle;
}

export type Ending =
  | { kind: 'complete' }
  | { kind: 'incomplete'; reason: string }
  | { kind: 'cut'; afterEvents: number; mode: 'eof' | 'reset' }
  | { kind: 'stall'; afterEvents: number }
  | {
      kind: 'error';
      afterEvents: number;
      error: StreamErrorSpec;
      shape: ErrorShape;
      thenFailed: boolean;
    }
  | { kind: 'failed'; afterEvents: number; code: string; message: string };

export interface HttpErrorPlan {
  kind: 'http';
  status: number;
  headers: Record<string, string>;
  body: string;
  contentType: string | undefined;
  delayMs: number;
}

export interface GeneratePlan {
  kind: 'generate';
  content: ContentSpec;
  modifiers: StreamModifiers;
  ending: Ending;
}

export type Plan = HttpErrorPlan | GeneratePlan;

const reasonPhrase = (status: number) => STATUS_CODES[status] ?? 'Error';

function httpPlan(behaviour: Behaviour, delayMs: number): HttpErrorPlan | undefined {
  switch (behaviour.kind) {
    case 'http_error': {
      const body = behaviour.body ?? defaultErrorBody(behaviour.status);
      const isText = typeof body === 'string';
      return {
        kind: 'http',
        status: behaviour.status,
        headers: behaviour.headers ?? {},
        body: isText ? body : JSON.stringify(body),
        contentType:
          behaviour.contentType ?? (isText ? 'text/plain; charset=utf-8' : 'application/json'),
        delayMs,
      };
    }
    case 'html_error':
      return {
        kind: 'http',
        status: behaviour.status,
        headers: behaviour.headers ?? {},
        body: cdnErrorPage(behaviour.status, reasonPhrase(behaviour.status)),
        contentType: 'text/html',
        delayMs,
      };
    case 'empty_error':
      return {
        kind: 'http',
        status: behaviour.status,
        headers: behaviour.headers ?? {},
        body: '',
        contentType: undefined,
        delayMs,
      };
    case 'detail_error':
      return {
        kind: 'http',
        status: behaviour.status,
        headers: behaviour.headers ?? {},
        body: JSON.stringify({ detail: behaviour.detail }),
        contentType: 'application/json',
        delayMs,
      };
    default:
      return undefined;
  }
}

/** Resolves a behaviour (and its `then` chain) into what the fake will do. */
export function resolveBehaviour(behaviour: Behaviour): Plan {
  const modifiers: StreamModifiers = {
    delayMs: 0,
    gate: undefined,
    sparse: false,
    holdOpen: false,
    injections: [],
    idStyle: 'normal',
  };
  let ending: Ending | undefined;
  let forceCall = false;
  let current: Behaviour = behaviour;
  for (;;) {
    const http = httpPlan(current, modifiers.delayMs);
    if (http) return http;
    let next: Behaviour | undefined;
    switch (current.kind) {
      case 'auto':
        return {
          kind: 'generate',
          content: { kind: 'auto', reasoning: current.reasoning, forceCall },
          modifiers,
          ending: ending ?? { kind: 'complete' },
        };
      case 'text':
      case 'tool_calls': {
        const { kind, ...rest } = current;
        return {
          kind: 'generate',
          content: { kind, ...rest } as ContentSpec,
          modifiers,
          ending: ending ?? { kind: 'complete' },
        };
      }
      case 'cut':
        ending ??= { kind: 'cut', afterEvents: current.afterEvents, mode: current.mode ?? 'eof' };
        next = current.then;
        break;
      case 'stall':
        ending ??= { kind: 'stall', afterEvents: current.afterEvents };
        next = current.then;
        break;
      case 'stream_error':
        ending ??= {
          kind: 'error',
          afterEvents: current.afterEvents,
          error: current.error,
          shape: current.shape ?? 'nested',
          thenFailed: current.thenFailed ?? false,
        };
        next = current.then;
        break;
      case 'response_failed':
        ending ??= {
          kind: 'failed',
          afterEvents: current.afterEvents ?? 2,
          code: current.code,
          message: current.message,
        };
        next = current.then;
        break;
      case 'incomplete':
        ending ??= { kind: 'incomplete', reason: current.reason ?? 'max_output_tokens' };
        next = current.then;
        break;
      case 'slow':
        modifiers.delayMs = Math.max(modifiers.delayMs, current.delayMs);
        next = current.then;
        break;
      case 'lockstep':
        modifiers.gate = current.gate ?? '';
        next = current.then;
        break;
      case 'sparse':
        modifiers.sparse = true;
        next = current.then;
        break;
      case 'hold_open':
        modifiers.holdOpen = true;
        next = current.then;
        break;
      case 'inject':
        modifiers.injections.push({ at: current.at, raw: current.raw });
        next = current.then;
        break;
      case 'odd_ids':
        modifiers.idStyle = current.style ?? 'call_id';
        if (current.then === undefined) forceCall = true;
        next = current.then;
        break;
    }
    current = next ?? { kind: 'auto' };
  }
}

// ---------------------------------------------------------------------------------------------
// Checking behaviours given as JSON

const KINDS = new Set([
  'auto',
  'text',
  'tool_calls',
  'http_error',
  'html_error',
  'empty_error',
  'detail_error',
  'cut',
  'stream_error',
  'response_failed',
  'incomplete',
  'slow',
  'stall',
  'odd_ids',
  'lockstep',
  'sparse',
  'hold_open',
  'inject',
]);

const NUMBER_FIELDS: Record<string, string[]> = {
  http_error: ['status'],
  html_error: ['status'],
  empty_error: ['status'],
  detail_error: ['status'],
  cut: ['afterEvents'],
  stream_error: ['afterEvents'],
  slow: ['delayMs'],
  stall: ['afterEvents'],
  inject: ['at'],
};

const STRING_FIELDS: Record<string, string[]> = {
  text: ['text'],
  response_failed: ['code', 'message'],
  inject: ['raw'],
};

/** Checks a behaviour given as JSON; throws an Error naming what is wrong. */
export function parseBehaviour(value: unknown, path = 'behaviour'): Behaviour {
  if (!isJsonObject(value)) throw new Error(`${path} must be an object`);
  const kind = value.kind;
  if (typeof kind !== 'string' || !KINDS.has(kind)) {
    throw new Error(`${path}.kind must be one of ${[...KINDS].join(', ')}`);
  }
  for (const field of NUMBER_FIELDS[kind] ?? []) {
    if (typeof value[field] !== 'number') throw new Error(`${path}.${field} must be a number`);
  }
  for (const field of STRING_FIELDS[kind] ?? []) {
    if (typeof value[field] !== 'string') throw new Error(`${path}.${field} must be a string`);
  }
  if (kind === 'tool_calls') {
    if (!Array.isArray(value.calls)) throw new Error(`${path}.calls must be an array`);
    value.calls.forEach((spec, i) => {
      if (!isJsonObject(spec) || typeof spec.name !== 'string') {
        throw new Error(`${path}.calls[${i}].name must be a string`);
      }
    });
  }
  if (kind === 'stream_error') {
    const error = value.error as JsonObject | undefined;
    if (
      !isJsonObject(error) ||
      typeof error.message !== 'string' ||
      typeof error.type !== 'string'
    ) {
      throw new Error(`${path}.error must be {type, code, message}`);
    }
  }
  if (kind === 'detail_error' && typeof value.detail !== 'string' && !Array.isArray(value.detail)) {
    throw new Error(`${path}.detail must be a string or an array`);
  }
  if (value.then !== undefined) parseBehaviour(value.then, `${path}.then`);
  return value as unknown as Behaviour;
}
