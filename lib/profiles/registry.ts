/**
 * Turns what a user passes to `upstreamProfile(…)` — a built-in profile's name or a plain object —
 * into a complete {@link UpstreamProfile}, and runs a profile on one body.
 */
import { isJsonObject, type ResponseCreateBody } from '../protocol/types';
import { codexProfile } from './codex';
import { openaiProfile } from './openai';
import type {
  ProfileContext,
  ProfileName,
  UpstreamMode,
  UpstreamProfile,
  VendorEventPolicy,
} from './types';

/** The built-in profiles, by name, with their default options. */
export const PROFILES: Readonly<Record<ProfileName, () => UpstreamProfile>> = {
  openai: () => openaiProfile(),
  codex: () => codexProfile(),
};

/** A profile as a user may write it: only `name` is required. */
export type ProfileDefinition = Pick<UpstreamProfile, 'name'> &
  Partial<Omit<UpstreamProfile, 'name'>>;

const MODES: readonly UpstreamMode[] = ['stateful', 'stateless'];
const POLICIES: readonly VendorEventPolicy[] = ['pass', 'drop', 'auto'];

/**
 * Fills in a custom profile's defaults (`upstreamMode: 'stateful'`, `vendorEvents: 'pass'`) and
 * checks it, throwing a `TypeError` at mount time rather than failing requests later.
 *
 * @example
 * ```ts
 * const local = defineProfile({
 *   name: 'local-vllm',
 *   upstreamMode: 'stateless',
 *   prepareRequest: (body) => {
 *     if (body.store === false) return body;
 *     return { ...body, store: false };
 *   },
 * });
 * app.post(responsesRoutes(), upstreamProfile(local), relayProxy({ target: 'http://127.0.0.1:8000' }));
 * ```
 */
export function defineProfile(definition: ProfileDefinition): UpstreamProfile {
  if (!isJsonObject(definition)) throw new TypeError('an upstream profile must be an object');
  if (typeof definition.name !== 'string' || definition.name === '') {
    throw new TypeError('an upstream profile needs a non-empty `name`');
  }
  const upstreamMode = definition.upstreamMode ?? 'stateful';
  if (!MODES.includes(upstreamMode)) {
    throw new TypeError(
      `profile '${definition.name}': upstreamMode must be 'stateful' or 'stateless'`,
    );
  }
  const vendorEvents = definition.vendorEvents ?? 'pass';
  if (!POLICIES.includes(vendorEvents)) {
    throw new TypeError(
      `profile '${definition.name}': vendorEvents must be 'pass', 'drop' or 'auto'`,
    );
  }
  for (const key of ['prepareRequest', 'isVendorEvent'] as const) {
    if (definition[key] !== undefined && typeof definition[key] !== 'function') {
      throw new TypeError(`profile '${definition.name}': ${key} must be a function`);
    }
  }
  if (
    definition.path !== undefined &&
    (typeof definition.path !== 'string' || !definition.path.startsWith('/'))
  ) {
    throw new TypeError(`profile '${definition.name}': path must start with '/'`);
  }
  return { ...definition, upstreamMode, vendorEvents };
}

/** A built-in profile by name, or a custom one completed by {@link defineProfile}. */
export function resolveProfile(profile: ProfileName | ProfileDefinition): UpstreamProfile {
  if (typeof profile === 'string') {
    const make = Object.hasOwn(PROFILES, profile) ? PROFILES[profile] : undefined;
    if (make === undefined) {
      throw new TypeError(
        `unknown upstream profile '${String(profile)}' (built-in: ${Object.keys(PROFILES).join(', ')})`,
      );
    }
    return make();
  }
  return defineProfile(profile);
}

/** Runs a profile's `prepareRequest` (the body itself when the profile has none). */
export function prepareRequest(
  profile: Pick<UpstreamProfile, 'prepareRequest'>,
  body: ResponseCreateBody,
  context: ProfileContext,
): ResponseCreateBody {
  return profile.prepareRequest ? profile.prepareRequest(body, context) : body;
}

/** What changed between the client's body and the one sent upstream (top-level fields). */
export interface BodyDiff {
  /** Fields the client sent that are not sent upstream. */
  removed: string[];
  /** Fields sent upstream the client did not send. */
  added: string[];
  /** Fields in both whose value is a different object or primitive. */
  changed: string[];
}

/** Compares two bodies field by field (by identity: profiles share untouched members). */
export function diffBodies(before: ResponseCreateBody, after: ResponseCreateBody): BodyDiff {
  const removed: string[] = [];
  const added: string[] = [];
  const changed: string[] = [];
  for (const key of Object.keys(before)) {
    if (!Object.hasOwn(after, key)) removed.push(key);
    else if (!Object.is(before[key], after[key])) changed.push(key);
  }
  for (const key of Object.keys(after)) {
    if (!Object.hasOwn(before, key)) added.push(key);
  }
  return { removed, added, changed };
}
