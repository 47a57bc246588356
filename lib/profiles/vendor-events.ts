/**
 * Vendor events: stream events outside the Responses API's own vocabulary. The Codex backend sends
 * `codex.rate_limits` (often before `response.created`); the official `openai` SDK's stream helper
 * rejects the whole stream on any event type it does not know (`Unhandled response stream event`,
 * responses-contract.md §0.3), and refuses a stream whose first event is not `response.created`.
 * The Codex client reads `codex.rate_limits` for its rate-limit display and ignores what it does
 * not know, so those events are worth keeping for Codex and only for Codex.
 *
 * Decision (`auto`, the codex profile's default): pass vendor events to Codex clients (recognised
 * by their headers), drop them for every other client. The openai profile passes everything (the
 * public API sends no vendor events, and passing needs no stream processing at all).
 */
import type { ClientKind, UpstreamProfile, VendorEventPolicy } from './types';

/** Event types outside `response.*` that are nonetheless standard. */
const STANDARD_OUTSIDE_NAMESPACE = new Set(['error', 'keepalive']);

/**
 * The default rule: an event is a vendor event when its type is outside the `response.*`
 * namespace (`codex.rate_limits`, `codex.keepalive`, …), except `error` and `keepalive`.
 */
export function isVendorEventType(type: string): boolean {
  if (type.startsWith('response.')) return false;
  return !STANDARD_OUTSIDE_NAMESPACE.has(type);
}

/**
 * The codex profile's rule: the default one plus `response.metadata`, a backend event the Codex
 * client skips on purpose (openai/codex `codex-rs/codex-api/src/sse/responses.rs`) and the SDK
 * does not know.
 */
export function isCodexVendorEventType(type: string): boolean {
  return isVendorEventType(type) || type === 'response.metadata';
}

/** Whether vendor events are dropped for this client under `policy`. */
export function dropsVendorEvents(policy: VendorEventPolicy, client: ClientKind): boolean {
  switch (policy) {
    case 'pass':
      return false;
    case 'drop':
      return true;
    case 'auto':
      return client !== 'codex';
  }
}

/** The vendor-event predicate of a profile. */
export function vendorEventPredicate(
  profile: Pick<UpstreamProfile, 'isVendorEvent'>,
): (type: string) => boolean {
  return profile.isVendorEvent ?? isVendorEventType;
}
