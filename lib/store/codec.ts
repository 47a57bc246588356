/**
 * The stored form of a response, shared by every store so they agree byte for byte on sizes, caps
 * and idempotency: validation, serialization, the content hash, and chain assembly.
 */
import { createHash } from 'node:crypto';
import type { ResponseItem } from '../protocol/types';
import { MAX_ID_LENGTH } from './limits';
import { SessionStoreError, type ExpandedChain, type StoredResponse } from './session-store';
import { isValidTenant } from './tenant';

export interface EncodedRecord {
  tenant: string;
  id: string;
  parentId: string | null;
  /** The stored JSON: every field of the record but `tenant` (implied by where it is stored). */
  json: string;
  /**
   * The record's content without `createdAt`: equal contents = the same record re-sent. (`json`
   * is `content` with `createdAt` added.)
   */
  content: string;
  /** UTF-8 byte length of `json`: the record's size for every cap. */
  bytes: number;
  /**
   * `createdAt` as it appears in `json`. With the content hash it identifies the stored JSON
   * exactly, so it is what a record's chain hash is computed from (see redis-scripts.ts).
   */
  created: string;
}

/** An id as error messages show it: quoted, at most 80 characters. */
export function shownId(id: string | null): string {
  if (id === null) return 'null';
  return `'${id.length > 80 ? `${id.slice(0, 80)}…` : id}'`;
}

function invalid(message: string, responseId?: string): SessionStoreError {
  return new SessionStoreError(
    'invalid_argument',
    message,
    responseId === undefined ? {} : { responseId },
  );
}

export function assertTenant(tenant: unknown): asserts tenant is string {
  if (!isValidTenant(tenant)) {
    throw invalid('tenant must be 1 to 128 base64url characters (use tenantId())');
  }
}

/** Ids used for lookups: any string is accepted (an odd id is simply unknown), but never a non-string. */
export function assertLookupId(what: string, id: unknown): asserts id is string {
  if (typeof id !== 'string') throw invalid(`${what} must be a string`);
}

/** Ids written to the store: non-empty strings of at most MAX_ID_LENGTH characters. */
export function assertWriteId(what: string, id: unknown): asserts id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) {
    throw invalid(`${what} must be a non-empty string of at most ${MAX_ID_LENGTH} characters`);
  }
}

function assertItems(what: string, items: unknown, id: string): asserts items is ResponseItem[] {
  if (
    !Array.isArray(items) ||
    items.some((i) => typeof i !== 'object' || i === null || Array.isArray(i))
  ) {
    throw invalid(`${what} must be an array of item objects`, id);
  }
}

/** A short digest of a record's `content` (what the Redis scripts compare on a re-sent put). */
export function contentHash(content: string): string {
  return createHash('sha256')
    .update(content, 'utf8')
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}

/** Validates a record and produces its stored form; throws `invalid_argument` / `response_too_large`. */
export function encodeRecord(record: StoredResponse, maxResponseBytes: number): EncodedRecord {
  if (typeof record !== 'object' || record === null) throw invalid('record must be an object');
  assertTenant(record.tenant);
  assertWriteId('record.id', record.id);
  const { id } = record;
  const parentId = record.parentId ?? null;
  if (parentId !== null && (typeof parentId !== 'string' || parentId.length === 0)) {
    throw invalid('record.parentId must be null or a non-empty string', id);
  }
  if (parentId === id) throw invalid('record.parentId must differ from record.id', id);
  assertItems('record.input', record.input, id);
  assertItems('record.output', record.output, id);
  if (record.upstream !== undefined && typeof record.upstream !== 'string') {
    throw invalid('record.upstream must be a string', id);
  }
  if (
    record.instructions !== undefined &&
    record.instructions !== null &&
    typeof record.instructions !== 'string'
  ) {
    throw invalid('record.instructions must be a string or null', id);
  }
  if (record.model !== undefined && typeof record.model !== 'string') {
    throw invalid('record.model must be a string', id);
  }
  if (typeof record.createdAt !== 'number' || !Number.isFinite(record.createdAt)) {
    throw invalid('record.createdAt must be a finite number (ms since the epoch)', id);
  }

  const body: Record<string, unknown> = {
    id,
    parentId,
    input: record.input,
    output: record.output,
  };
  if (record.upstream !== undefined) body.upstream = record.upstream;
  if (record.instructions !== undefined) body.instructions = record.instructions;
  if (record.model !== undefined) body.model = record.model;
  let content: string;
  try {
    content = JSON.stringify(body);
  } catch (error) {
    throw new SessionStoreError('invalid_argument', 'record is not serializable to JSON', {
      responseId: id,
      cause: error,
    });
  }
  // `createdAt` stays out of the hash: a writer that rebuilds the same record later is a re-send.
  const created = JSON.stringify(record.createdAt);
  const json = `${content.slice(0, -1)},"createdAt":${created}}`;
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > maxResponseBytes) {
    throw new SessionStoreError(
      'response_too_large',
      `response ${shownId(id)} is ${bytes} bytes, over the store's limit of ${maxResponseBytes}`,
      { responseId: id, limit: maxResponseBytes, actual: bytes },
    );
  }
  return { tenant: record.tenant, id, parentId, json, content, bytes, created };
}

interface StoredBody {
  id: string;
  parentId: string | null;
  input: ResponseItem[];
  output: ResponseItem[];
  upstream?: string;
  instructions?: string | null;
  model?: string;
  createdAt: number;
}

function fromBody(tenant: string, body: StoredBody): StoredResponse {
  const record: StoredResponse = {
    tenant,
    id: body.id,
    parentId: body.parentId,
    input: body.input,
    output: body.output,
    createdAt: body.createdAt,
  };
  if (body.upstream !== undefined) record.upstream = body.upstream;
  if (body.instructions !== undefined) record.instructions = body.instructions;
  if (body.model !== undefined) record.model = body.model;
  return record;
}

/** A fresh StoredResponse from its stored JSON (a new object graph every call). */
export function decodeRecord(tenant: string, json: string): StoredResponse {
  return fromBody(tenant, JSON.parse(json) as StoredBody);
}

/** Freezes a parsed JSON value and everything in it (JSON has no cycles). */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  if (Array.isArray(value)) {
    for (const element of value) deepFreeze(element);
  } else {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
  }
  return Object.freeze(value);
}

/** A deeply frozen StoredResponse from its stored JSON, to keep and share between reads. */
export function decodeFrozenRecord(tenant: string, json: string): StoredResponse {
  return deepFreeze(decodeRecord(tenant, json));
}

/**
 * A StoredResponse for a caller from a kept (frozen) one: a new object with new `input` /
 * `output` arrays, sharing the frozen items.
 */
export function readRecord(record: StoredResponse): StoredResponse {
  return { ...record, input: [...record.input], output: [...record.output] };
}

/**
 * Builds an ExpandedChain from kept records, root first: fresh arrays over the records and items
 * they hold (shared, so treat them as read-only).
 */
export function chainOf(recordsRootFirst: StoredResponse[], bytes: number): ExpandedChain {
  const items: ResponseItem[] = [];
  for (const record of recordsRootFirst) {
    for (const item of record.input) items.push(item);
    for (const item of record.output) items.push(item);
  }
  return { records: recordsRootFirst, items, depth: recordsRootFirst.length, bytes };
}

/** Builds an ExpandedChain from stored JSON texts, root first, parsing them in one pass. */
export function assembleChain(
  tenant: string,
  jsonsRootFirst: readonly string[],
  bytes: number,
): ExpandedChain {
  const bodies = JSON.parse(`[${jsonsRootFirst.join(',')}]`) as StoredBody[];
  const records: StoredResponse[] = [];
  const items: ResponseItem[] = [];
  for (const body of bodies) {
    records.push(fromBody(tenant, body));
    for (const item of body.input) items.push(item);
    for (const item of body.output) items.push(item);
  }
  return { records, items, depth: records.length, bytes };
}
