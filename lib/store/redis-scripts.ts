/**
 * The Lua scripts behind RedisSessionStore. Each runs atomically in one round trip, touches only
 * keys of one tenant (one `{tenant}` hash tag, so one Cluster slot), and is safe to run twice: ioredis
 * re-sends in-flight commands after a reconnect, so a write may arrive again after it already ran.
 *
 * Stored record value: `1:<depth>:<chain bytes>:<parent segment>:<content hash>:<json>`
 * - depth / chain bytes: of the chain ending here (parent's + 1 / parent's + this json's bytes),
 *   fixed at write time because records are immutable, so caps are checked on put in O(1);
 * - parent segment: the key segment of the parent id ('' for a root); the parent's key is the
 *   record's key with its own segment replaced, so the walk needs no client-side key knowledge
 *   (and works under an ioredis `keyPrefix`);
 * - content hash: decides "same record re-sent" (ok) from "different record, same id" (conflict).
 *
 * Tenant index (sorted set): members `r:<segment>` / `s:<segment>`, score = expiry in ms of the
 * entry's key. Expired members are trimmed before counting, so the per-tenant cap is O(log n).
 */

/** Helpers shared by the scripts (parsing the value header, server time). */
const PRELUDE = `
local function header(v)
  if string.sub(v, 1, 2) ~= '1:' then return nil end
  local a = string.find(v, ':', 3, true)
  local b = a and string.find(v, ':', a + 1, true)
  local c = b and string.find(v, ':', b + 1, true)
  local d = c and string.find(v, ':', c + 1, true)
  if not d then return nil end
  return tonumber(string.sub(v, 3, a - 1)), tonumber(string.sub(v, a + 1, b - 1)),
    string.sub(v, b + 1, c - 1), string.sub(v, c + 1, d - 1), d
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function extend_index(index, ttl)
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
`;

/**
 * putResponse.
 * KEYS: 1 record, 2 tenant index, 3 parent record (the record key again for a root).
 * ARGV: 1 record segment, 2 parent segment ('' for a root), 3 content hash, 4 json, 5 ttl ms,
 *       6 max entries per tenant, 7 max chain depth, 8 max chain bytes.
 * Returns {'ok', depth, chain bytes} | {'conflict'} | {'parent_not_found'} | {'corrupt'} |
 *         {'chain_too_deep', depth} | {'chain_too_large', bytes} | {'tenant_quota_exceeded', count}.
 */
export const PUT_RESPONSE_LUA = `${PRELUDE}
local ttl = tonumber(ARGV[5])
local now = now_ms()
local existing = redis.call('GET', KEYS[1])
if existing then
  local depth, chain, _, hash = header(existing)
  if not depth then return {'corrupt'} end
  if hash ~= ARGV[3] then return {'conflict'} end
  -- the same record again (a re-sent write that already ran): success, nothing added
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[1])
  extend_index(KEYS[2], ttl)
  return {'ok', depth, chain}
end
local depth, chain = 1, string.len(ARGV[4])
if ARGV[2] ~= '' then
  local parent = redis.call('GET', KEYS[3])
  if not parent then return {'parent_not_found'} end
  local pdepth, pchain = header(parent)
  if not pdepth then return {'corrupt'} end
  depth, chain = pdepth + 1, pchain + chain
end
if depth > tonumber(ARGV[7]) then return {'chain_too_deep', depth} end
if chain > tonumber(ARGV[8]) then return {'chain_too_large', chain} end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local count = redis.call('ZCARD', KEYS[2])
if count >= tonumber(ARGV[6]) then return {'tenant_quota_exceeded', count} end
redis.call('SET', KEYS[1],
  '1:' .. depth .. ':' .. chain .. ':' .. ARGV[2] .. ':' .. ARGV[3] .. ':' .. ARGV[4], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[1])
if ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[2])
end
extend_index(KEYS[2], ttl)
return {'ok', depth, chain}
`;

/**
 * expandChain: walks parent links from the leaf, bounded by depth and bytes; on success refreshes
 * the TTL of every record of the chain (and their index scores). Nothing is refreshed on failure.
 * KEYS: 1 leaf record, 2 tenant index.
 * ARGV: 1 leaf segment, 2 ttl ms, 3 max chain depth, 4 max chain bytes.
 * Returns {'ok', depth, bytes, json leaf, …, json root} | {'not_found'} | {'broken', n} |
 *         {'corrupt'} | {'chain_too_deep', depth} | {'chain_too_large', bytes}.
 */
export const EXPAND_CHAIN_LUA = `${PRELUDE}
local max_depth, max_bytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local value = redis.call('GET', KEYS[1])
if not value then return {'not_found'} end
local depth, chain = header(value)
if not depth then return {'corrupt'} end
-- the leaf knows its chain's size: refuse at once, without walking
if depth > max_depth then return {'chain_too_deep', depth} end
if chain > max_bytes then return {'chain_too_large', chain} end
local base = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[1]))
local result = {'ok', 0, 0}
local segments = {}
local segment = ARGV[1]
local n, total = 0, 0
while true do
  local _, _, parent, _, offset = header(value)
  if not offset then return {'corrupt'} end
  n = n + 1
  -- bounds the walk even if a deleted id was re-created under its own descendant (a cycle)
  if n > max_depth then return {'chain_too_deep', n} end
  local json = string.sub(value, offset + 1)
  total = total + string.len(json)
  if total > max_bytes then return {'chain_too_large', total} end
  result[n + 3] = json
  segments[n] = segment
  if parent == '' then break end
  segment = parent
  value = redis.call('GET', base .. segment)
  if not value then return {'broken', n} end
end
local ttl = tonumber(ARGV[2])
local expires = now_ms() + ttl
local scores = {}
for i = 1, n do
  redis.call('PEXPIRE', base .. segments[i], ttl)
  scores[#scores + 1] = expires
  scores[#scores + 1] = 'r:' .. segments[i]
  -- a few hundred members per ZADD keeps unpack() far below Lua's stack limit
  if #scores >= 512 or i == n then
    redis.call('ZADD', KEYS[2], unpack(scores))
    scores = {}
  end
end
extend_index(KEYS[2], ttl)
result[2] = n
result[3] = total
return result
`;

/**
 * deleteResponse. KEYS: 1 record, 2 tenant index. ARGV: 1 record segment. Returns 1 | 0.
 */
export const DELETE_RESPONSE_LUA = `
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], 'r:' .. ARGV[1])
return removed
`;

/**
 * setSessionHead. KEYS: 1 session head, 2 tenant index.
 * ARGV: 1 head segment, 2 response id, 3 ttl ms, 4 max entries per tenant.
 * Returns {'ok'} | {'tenant_quota_exceeded', count}.
 */
export const SET_SESSION_HEAD_LUA = `${PRELUDE}
local ttl = tonumber(ARGV[3])
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  local count = redis.call('ZCARD', KEYS[2])
  if count >= tonumber(ARGV[4]) then return {'tenant_quota_exceeded', count} end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, 's:' .. ARGV[1])
extend_index(KEYS[2], ttl)
return {'ok'}
`;

/**
 * ioredis command names for the scripts. Versioned (a changed script gets a new name, so two
 * library versions sharing one client never clash) and never the name of a real Redis command.
 */
export const SCRIPTS = {
  put: { name: 'responsesRelayPutResponseV1', lua: PUT_RESPONSE_LUA, numberOfKeys: 3 },
  expand: { name: 'responsesRelayExpandChainV1', lua: EXPAND_CHAIN_LUA, numberOfKeys: 2 },
  delete: { name: 'responsesRelayDeleteResponseV1', lua: DELETE_RESPONSE_LUA, numberOfKeys: 2 },
  setHead: { name: 'responsesRelaySetSessionHeadV1', lua: SET_SESSION_HEAD_LUA, numberOfKeys: 2 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
