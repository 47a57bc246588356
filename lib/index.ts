/**
 * responses-relay: the public API, and nothing else.
 */
export * from './protocol/types';
