/**
 * What an upstream profile is: data that describes one kind of Responses upstream (how it chains
 * conversations, where its endpoint lives, what it does with vendor stream events) plus one small
 * pure function that turns any client's request into one that upstream accepts.
 *
 * Profiles never touch the network or the client's objects: `prepareRequest` returns the body it
 * was given when nothing needs to change, and a new object (sharing every untouched member)
 * otherwise, so an untouched request still reaches the upstream byte for byte.
 */
import type { ResponseCreateBody } from '../protocol/types';

/**
 * How `previous_response_id` continuations work with the upstream (DESIGN.md §3).
 * - `stateful`: the upstream stores responses; the id passes through.
 * - `stateless`: the upstream stores nothing (`store: false`); the relay keeps the conversation
 *   and expands a continuation into the full history (the chaining middleware's job).
 */
export type UpstreamMode = 'stateful' | 'stateless';

/**
 * What happens to non-standard stream events (e.g. the Codex backend's `codex.rate_limits`) that
 * make the official `openai` SDK reject the whole stream (`Unhandled response stream event`).
 * - `pass`: forwarded untouched.
 * - `drop`: removed from the stream.
 * - `auto`: forwarded to clients that understand them (the Codex CLI and apps, recognised by
 *   their headers), removed for everyone else.
 */
export type VendorEventPolicy = 'pass' | 'drop' | 'auto';

/** Which client sent the request, as far as its headers tell. */
export type ClientKind = 'codex' | 'openai-sdk' | 'other';

/** Request headers as Node gives them (lower-case names). */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** A note a profile leaves for the logs (e.g. an effort value it did not know). */
export interface ProfileNote {
  /** Short machine-readable code, e.g. `unknown_effort`. */
  code: string;
  /** What happened, for a human reading the log. Never contains secrets. */
  detail: string;
}

/** What `prepareRequest` may know about the request besides its body. */
export interface ProfileContext {
  /** The client's request headers (lower-case names). Read only. */
  readonly headers: RequestHeaders;
  /** The client, as identified from its headers (see `identifyClient`). */
  readonly client: ClientKind;
  /** Leaves a note for the logs; the middleware records it in the exchange's annotations. */
  note(code: string, detail: string): void;
}

/**
 * One kind of Responses upstream. A profile is a plain object: pass your own to
 * `upstreamProfile(profile)` (see `defineProfile` for the defaults it fills in).
 *
 * @example
 * ```ts
 * const azure: UpstreamProfile = {
 *   name: 'azure',
 *   upstreamMode: 'stateful',
 *   vendorEvents: 'pass',
 *   path: '/openai/v1/responses',
 *   prepareRequest: (body) => (body.store === undefined ? { ...body, store: true } : body),
 * };
 * ```
 */
export interface UpstreamProfile {
  /**
   * The profile's name, recorded in the exchange's annotations (`profile`) for logs.
   * @example 'codex'
   */
  readonly name: string;
  /**
   * How continuations work with this upstream; middlewares that chain conversations read it from
   * the exchange's annotations (`upstream_mode`).
   * @default 'stateful'
   * @example 'stateless'
   */
  readonly upstreamMode: UpstreamMode;
  /**
   * What to do with vendor stream events (see {@link VendorEventPolicy}).
   * @default 'pass'
   * @example 'auto'
   */
  readonly vendorEvents: VendorEventPolicy;
  /**
   * Which event types count as vendor events. When absent, `isVendorEventType` decides: any
   * event outside the `response.*` namespace except `error` and `keepalive`.
   * @default undefined
   * @example (type) => type.startsWith('codex.') || type === 'response.metadata'
   */
  readonly isVendorEvent?: (type: string) => boolean;
  /**
   * The upstream's path of the Responses endpoint, for `profilePathRewrite(profile)` (the
   * client's route alias is rewritten to it; the query string is kept). Absent: the client's
   * path is proxied as is.
   * @default undefined
   * @example '/backend-api/codex/responses'
   */
  readonly path?: string;
  /**
   * Turns the client's body into one this upstream accepts. Must not mutate `body` (nor anything
   * inside it) and should return `body` itself when nothing changes, so an untouched request
   * reaches the upstream byte for byte. Forcing `stream: true` on a client that did not ask for
   * a stream makes the relay answer that client with one aggregated JSON Response.
   * @default identity (the body as is)
   * @example (body) => ({ ...body, model: body.model ?? 'gpt-5.5' })
   */
  readonly prepareRequest?: (
    body: ResponseCreateBody,
    context: ProfileContext,
  ) => ResponseCreateBody;
}

/** The names of the built-in profiles. */
export type ProfileName = 'openai' | 'codex';
