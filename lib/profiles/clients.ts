/**
 * Tells which client sent a request from its headers alone (never from the body), and builds the
 * context a profile's `prepareRequest` receives.
 *
 * The Codex CLI, IDE extension and desktop app send `originator: codex_exec` / `codex_cli_rs` /
 * `codex_vscode` / `Codex Desktop`, a `user-agent` starting with the same word, and a family of
 * `x-codex-*` headers (`x-codex-turn-metadata`, `x-codex-window-id`, `x-codex-beta-features`,
 * codex-wire.md §2.1, §3.1). The official `openai` SDKs send `x-stainless-*` headers.
 */
import type { ClientKind, ProfileContext, ProfileNote, RequestHeaders } from './types';

function first(value: string | string[] | undefined): string {
  if (Array.isArray(value)) return value[0] ?? '';
  return value ?? '';
}

/** True when the headers come from a Codex client (CLI, IDE extension, desktop app). */
export function isCodexClient(headers: RequestHeaders): boolean {
  if (/^codex/i.test(first(headers.originator).trim())) return true;
  if (/^codex[_ /-]/i.test(first(headers['user-agent']).trim())) return true;
  return Object.keys(headers).some((name) => name.toLowerCase().startsWith('x-codex-'));
}

/** Which client sent the request: `codex`, `openai-sdk` or `other`. */
export function identifyClient(headers: RequestHeaders): ClientKind {
  if (isCodexClient(headers)) return 'codex';
  if (Object.keys(headers).some((name) => name.toLowerCase().startsWith('x-stainless-'))) {
    return 'openai-sdk';
  }
  return 'other';
}

/** A {@link ProfileContext} plus the notes the profile left, for the caller to log. */
export interface CollectingProfileContext extends ProfileContext {
  readonly notes: ProfileNote[];
}

/** Builds the context for one request; `notes` collects what `note` was called with. */
export function createProfileContext(headers: RequestHeaders = {}): CollectingProfileContext {
  const notes: ProfileNote[] = [];
  return {
    headers,
    client: identifyClient(headers),
    notes,
    note(code, detail) {
      notes.push({ code, detail });
    },
  };
}
