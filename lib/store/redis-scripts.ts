/**
 * The Lua scripts behind RedisSessionStore. Each runs atomically in one round trip, touches only
 * keys of one tenant (one `{tenant}` hash tag, so one Cluster slot), and is safe to run twice: ioredis
 * re-sends in-flight commands after a reconnect, so a write may arrive again after it already ran.
 *
 * Stored record value (format 2):
 * `2:<depth>:<chain bytes>:<parent segment>:<content hash>:<chain hash>:<parent chain hash>:<json>`
 * - depth / chain bytes: of the chain ending here (parent's + 1 / parent's + this json's bytes),
 *   fixed at write time because records are immutable, so caps are checked on put in O(1);
 * - parent segment: the key segment of the parent id ('' for a root); the parent's key is the
 *   record's key with its own segment replaced, so the walk needs no client-side key knowledge
 *   (and works under an ioredis `keyPrefix`);
 * - content hash: decides "same record re-sent" (ok) from "different record, same id" (conflict);
 * - chain hash: SHA-1 hex of `<parent chain hash>:<content hash>:<createdAt>` (the parent's as it
 *   was when this record was written, '' for a root): equal chain hashes mean equal histories, so
 *   a client may cache parsed records by chain hash and have the expand script skip the ones it
 *   holds; the parent chain hash lets the script check that a history still is the one its hash
 *   names (an ancestor deleted and re-created since breaks the link).
 *
 * Session head value: `2:<response segment>:<response id>`.
 *
 * Tenant index (sorted set): members `r:<segment>` / `s:<segment>`, score = the expiry in ms a
 * write gave the entry's key. Expansions refresh the records' TTLs without touching the index;
 * before counting, a write looks at the members whose score passed and drops those whose key is
 * gone, re-scoring the others from their TTL (each live record at most once per TTL period).
 */

/** Helpers shared by the scripts (parsing the value header, server time). */
const PRELUDE = `
-- depth, chain bytes, parent segment, content hash, chain hash, parent chain hash, and the
-- position where the json starts; nil when v does not start with a format-2 header
local function header(v)
  local depth, chain, parent, hash, chash, phash, at =
    string.match(v, '^2:(%d+):(%d+):([^:]*):([^:]*):([^:]*):([^:]*):()')
  if not depth then return nil end
  return tonumber(depth), tonumber(chain), parent, hash, chash, phash, at
end
-- The links of the record at key, read without its json: nil for a missing key, false for a
-- value that is not a record, else true, the parent segment, the chain hash, the parent chain
-- hash and the position where the json starts. Headers with API-style ids ('resp_' and 48 hex
-- digits: ~180 bytes) fit in 256 bytes; the longest (a segment is at most 201 characters) in 384.
local LINKS = '^2:%d+:%d+:([^:]*):[^:]*:([^:]*):([^:]*):()'
local function read_links(key)
  local v = redis.call('GETRANGE', key, 0, 255)
  if v == '' then return nil end
  local parent, chash, phash, at = string.match(v, LINKS)
  if not parent and string.len(v) == 256 then
    parent, chash, phash, at = string.match(redis.call('GETRANGE', key, 0, 383), LINKS)
  end
  if not parent then return false end
  return true, parent, chash, phash, at
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- Drops the index members whose entry expired. A member's score is its entry's expiry as last
-- written by a put; an expansion refreshes the records' TTLs but not their scores, so a member
-- whose score passed is re-scored from its key's TTL when the key is still there.
local function trim_index(index, tenant_prefix, now)
  local stale = redis.call('ZRANGEBYSCORE', index, '-inf', now)
  for i = 1, #stale do
    local left = redis.call('PTTL', tenant_prefix .. stale[i])
    if left > 0 then
      redis.call('ZADD', index, now + left, stale[i])
    else
      redis.call('ZREM', index, stale[i])
    end
  end
end
local function extend_index(index, ttl)
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
`;

/**
 * putResponse, and putSessionResponse when a head segment is given (record and head atomically).
 * KEYS: 1 record, 2 tenant index, 3 parent record (the record key again for a root),
 *       4 session head (the record key again without a session).
 * ARGV: 1 record segment, 2 parent segment ('' for a root), 3 content hash, 4 json, 5 ttl ms,
 *       6 max entries per tenant, 7 max chain depth, 8 max chain bytes, 9 createdAt as in json,
 *       10 head segment ('' without a session), 11 response id (the head's value).
 * Returns {'ok', depth, chain bytes, chain hash, parent chain hash, 1 (written) | 0 (already
 *         stored: the parent chain hash is then '')} | {'conflict'} | {'parent_not_found'} | {'corrupt'} |
 *         {'chain_too_deep', depth} | {'chain_too_large', bytes} | {'tenant_quota_exceeded', count}.
 */
export const PUT_RESPONSE_LUA = `${PRELUDE}
local ttl = tonumber(ARGV[5])
local now = now_ms()
local with_head = ARGV[10] ~= ''
local new_head = 0
if with_head and redis.call('EXISTS', KEYS[4]) == 0 then new_head = 1 end
local function set_head()
  if not with_head then return end
  redis.call('SET', KEYS[4], '2:' .. ARGV[1] .. ':' .. ARGV[11], 'PX', ttl)
  redis.call('ZADD', KEYS[2], now + ttl, 's:' .. ARGV[10])
end
local function quota(adding)
  trim_index(KEYS[2], string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[1]) - 2), now)
  local count = redis.call('ZCARD', KEYS[2])
  if count + adding > tonumber(ARGV[6]) then return count end
  return nil
end
local existing = redis.call('GET', KEYS[1])
if existing then
  local depth, chain, _, hash, chash = header(existing)
  if not depth then return {'corrupt'} end
  if hash ~= ARGV[3] then return {'conflict'} end
  -- the same record again (a re-sent write that already ran): success, nothing added
  if new_head == 1 then
    local over = quota(1)
    if over then return {'tenant_quota_exceeded', over} end
  end
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[1])
  set_head()
  extend_index(KEYS[2], ttl)
  return {'ok', depth, chain, chash, '', 0}
end
local depth, chain, pchash = 1, string.len(ARGV[4]), ''
if ARGV[2] ~= '' then
  local parent = redis.call('GET', KEYS[3])
  if not parent then return {'parent_not_found'} end
  local pdepth, pchain, _, _, phash = header(parent)
  if not pdepth then return {'corrupt'} end
  depth, chain, pchash = pdepth + 1, pchain + chain, phash
end
if depth > tonumber(ARGV[7]) then return {'chain_too_deep', depth} end
if chain > tonumber(ARGV[8]) then return {'chain_too_large', chain} end
local over = quota(1 + new_head)
if over then return {'tenant_quota_exceeded', over} end
local chash = redis.sha1hex(pchash .. ':' .. ARGV[3] .. ':' .. ARGV[9])
redis.call('SET', KEYS[1], '2:' .. depth .. ':' .. chain .. ':' .. ARGV[2] .. ':' .. ARGV[3] ..
  ':' .. chash .. ':' .. pchash .. ':' .. ARGV[4], 'PX', ttl)
redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[1])
if ARGV[2] ~= '' then
  redis.call('PEXPIRE', KEYS[3], ttl)
  redis.call('ZADD', KEYS[2], now + ttl, 'r:' .. ARGV[2])
end
set_head()
extend_index(KEYS[2], ttl)
return {'ok', depth, chain, chash, pchash, 1}
`;

/**
 * expandChain, and expandSessionHead (mode 's': the session head is read first, in the same
 * script): walks parent links from the leaf, bounded by depth and bytes; on success refreshes the
 * TTL of every record it walked. Nothing is refreshed on failure.
 *
 * The caller names chain hashes it already holds parsed: the JSON of the first one the walk meets
 * (and of everything below it) is not sent, as long as the chain below still is the chain that
 * hash was computed from.
 *
 * The caller may also name one of them as fresh: a chain it walked in full (every record found
 * and refreshed) less than a tenth of the TTL ago, at delete generation `generation`. When the
 * walk meets that hash, every link walked so far holds and no response of the tenant was deleted
 * since (the generation is unchanged), the records below it still exist (none can have expired:
 * they were refreshed to a full TTL since) and still are that chain: the walk stops there. A turn
 * then costs the same at any depth; the records below are refreshed by the next full walk, at
 * least every tenth of the TTL while the conversation goes on.
 * KEYS: 1 leaf record (mode 'r') or session head (mode 's'), 2 tenant index,
 *       3 tenant delete generation.
 * ARGV: 1 mode 'r' | 's', 2 leaf or head segment, 3 ttl ms, 4 max chain depth,
 *       5 max chain bytes, 6 the fresh chain hash or '', 7 its delete generation,
 *       8… chain hashes the caller holds.
 * Returns {'ok', depth, bytes, head id ('' in mode 'r'), matched chain hash or '',
 *          delete generation, 0 (stopped at the fresh hash) | 1 (walked to the root, every
 *          link holding) | 2 (walked to the root through an ancestor re-created since),
 *          then for each record from the leaf down to (excluding) the matched one:
 *          chain hash, parent chain hash, json} |
 *         {'no_head'} | {'not_found', 0, head id} | {'broken', n, head id} | {'corrupt'} |
 *         {'chain_too_deep', depth, head id} | {'chain_too_large', bytes, head id}.
 */
export const EXPAND_CHAIN_LUA = `${PRELUDE}
local max_depth, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local base, segment, key
local head_id = ''
if ARGV[1] == 's' then
  local head = redis.call('GET', KEYS[1])
  if not head then return {'no_head'} end
  local p = string.sub(head, 1, 2) == '2:' and string.find(head, ':', 3, true)
  if not p then return {'corrupt'} end
  segment = string.sub(head, 3, p - 1)
  head_id = string.sub(head, p + 1)
  base = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[2]) - 2) .. 'r:'
  key = base .. segment
else
  segment = ARGV[2]
  base = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(segment))
  key = KEYS[1]
end
-- the walk reads headers only
local leaf = redis.call('GETRANGE', key, 0, 383)
if leaf == '' then return {'not_found', 0, head_id} end
local depth, chain, parent, _, chash, phash, at = header(leaf)
if not depth then return {'corrupt'} end
-- the leaf knows its chain's size: refuse at once, without walking
if depth > max_depth then return {'chain_too_deep', depth, head_id} end
if chain > max_bytes then return {'chain_too_large', chain, head_id} end
local generation = redis.call('GET', KEYS[3]) or '0'
local fresh = ''
if ARGV[6] ~= '' and ARGV[7] == generation then fresh = ARGV[6] end
local known = {}
for i = 8, #ARGV do known[ARGV[i]] = true end
local segments, starts, hashes, parents = {}, {}, {}, {}
local n, match, found, intact, stopped = 0, 0, true, true, false
while true do
  n = n + 1
  -- bounds the walk even if a deleted id was re-created under its own descendant (a cycle)
  if n > max_depth then return {'chain_too_deep', n, head_id} end
  segments[n], starts[n], hashes[n], parents[n] = segment, at, chash, phash
  if match == 0 and known[chash] then match = n end
  if intact and chash == fresh then
    stopped = true
    break
  end
  if parent == '' then break end
  segment = parent
  found, parent, chash, phash, at = read_links(base .. segment)
  if found == nil then return {'broken', n, head_id} end
  if not found then return {'corrupt'} end
  -- the record just walked names the chain hash its parent had when it was written
  if parents[n] ~= chash then intact = false end
end
local total = chain
if not stopped then
  -- Each record names its parent's chain hash as it was when it was written. Where every link
  -- still holds, the chain is the one the leaf's header measured; where one does not (an
  -- ancestor deleted and re-created since), the records are measured one by one.
  local linked = n
  for i = n, 1, -1 do
    local below = ''
    if i < n then below = hashes[i + 1] end
    if parents[i] ~= below then break end
    linked = i - 1
  end
  if linked > 0 then
    total = 0
    for i = 1, n do
      total = total + redis.call('STRLEN', base .. segments[i]) - starts[i] + 1
      if total > max_bytes then return {'chain_too_large', total, head_id} end
    end
  end
  -- the caller's copy stands for the history its hash was computed from: usable only if every
  -- link below it still is that history
  if match > 0 and match <= linked then match = 0 end
end
-- the index scores are left as they are: trim_index re-scores a refreshed record when needed
local ttl = tonumber(ARGV[3])
for i = 1, n do redis.call('PEXPIRE', base .. segments[i], ttl) end
extend_index(KEYS[2], ttl)
-- 0: stopped at the fresh hash; 1: walked to the root and every link holds (the leaf's chain
-- hash names this history); 2: walked to the root through a re-created ancestor
local walk = 0
if not stopped then walk = intact and 1 or 2 end
local result = {'ok', depth, total, head_id, '', generation, walk}
if not stopped then result[2] = n end
local last = n
if match > 0 then
  result[5] = hashes[match]
  last = match - 1
end
for i = 1, last do
  result[#result + 1] = hashes[i]
  result[#result + 1] = parents[i]
  result[#result + 1] = redis.call('GETRANGE', base .. segments[i], starts[i] - 1, -1)
end
return result
`;

/**
 * deleteResponse. KEYS: 1 record, 2 tenant index, 3 tenant delete generation.
 * ARGV: 1 record segment, 2 ttl ms. Returns 1 | 0. A delete that removed a record bumps the
 * generation, so no expansion trusts a chain it walked before the delete (see the expand script).
 */
export const DELETE_RESPONSE_LUA = `
local removed = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], 'r:' .. ARGV[1])
if removed == 1 then
  redis.call('INCR', KEYS[3])
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[2]))
end
return removed
`;

/**
 * setSessionHead. KEYS: 1 session head, 2 tenant index.
 * ARGV: 1 head segment, 2 head value (`2:<response segment>:<response id>`), 3 ttl ms,
 *       4 max entries per tenant.
 * Returns {'ok'} | {'tenant_quota_exceeded', count}.
 */
export const SET_SESSION_HEAD_LUA = `${PRELUDE}
local ttl = tonumber(ARGV[3])
local now = now_ms()
if redis.call('EXISTS', KEYS[1]) == 0 then
  trim_index(KEYS[2], string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[1]) - 2), now)
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
  put: { name: 'responsesRelayPutResponseV2', lua: PUT_RESPONSE_LUA, numberOfKeys: 4 },
  expand: { name: 'responsesRelayExpandChainV3', lua: EXPAND_CHAIN_LUA, numberOfKeys: 3 },
  delete: { name: 'responsesRelayDeleteResponseV3', lua: DELETE_RESPONSE_LUA, numberOfKeys: 3 },
  setHead: { name: 'responsesRelaySetSessionHeadV2', lua: SET_SESSION_HEAD_LUA, numberOfKeys: 2 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;
