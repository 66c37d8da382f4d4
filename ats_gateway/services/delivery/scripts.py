"""The outbox's Lua scripts: every state change of an item is one script (atomic)."""

# ---------------------------------------------------------------------------------- Lua

# One item. KEYS: item, ready, [idem], [unique...]; ARGV: id, now, payload, n_att, att
# names/values..., has idem, idem fingerprint, idem ttl, unique ttl, n_fields, field
# names/values... (more hash fields stored with an accepted item: who sent it, the receipt's
# text)
# Returns {"accepted", id} | {"replay", id} | {"idempotency_conflict", id} | {"duplicate", id}
_PUT_ONE = """
local function put(k, a)
  local item, ready = k[1], k[2]
  local id, now, payload = a[1], a[2], a[3]
  local n_att = tonumber(a[4])
  local pos = 5 + 2 * n_att
  local has_idem = a[pos] == '1'
  local fingerprint, idem_ttl = a[pos + 1], tonumber(a[pos + 2])
  local unique_ttl = tonumber(a[pos + 3])
  local first_unique = 3
  if has_idem then
    local seen = redis.call('GET', k[3])
    if seen then
      local sep = string.find(seen, '|', 1, true)
      local seen_fp, seen_id = string.sub(seen, 1, sep - 1), string.sub(seen, sep + 1)
      if seen_fp == fingerprint then
        -- A write (the same value, the same TTL) so that the WAITAOF sent after this script on
        -- the same connection covers the first attempt's store too (replication is in order):
        -- a replay is durable before it is answered, like the first 202.
        redis.call('SET', k[3], seen, 'KEEPTTL')
        return {'replay', seen_id}
      end
      return {'idempotency_conflict', seen_id}
    end
    first_unique = 4
  end
  for i = first_unique, #k do
    local holder = redis.call('GET', k[i])
    if holder then return {'duplicate', holder} end
  end
  redis.call('HSET', item, 'id', id, 'status', 'queued', 'created_at', now, 'updated_at', now,
    'attempts', 0, 'next_attempt_at', now, 'payload', payload)
  for i = 0, n_att - 1 do
    redis.call('HSET', item, 'att:' .. a[5 + 2 * i], a[6 + 2 * i])
  end
  local uniques = {}
  for i = first_unique, #k do
    redis.call('SET', k[i], id, 'EX', unique_ttl)
    table.insert(uniques, k[i])
  end
  if #uniques > 0 then redis.call('HSET', item, 'unique_keys', cjson.encode(uniques)) end
  if has_idem then redis.call('SET', k[3], fingerprint .. '|' .. id, 'EX', idem_ttl) end
  redis.call('ZADD', ready, now, id)
  local n_extra = tonumber(a[pos + 4] or '0')
  for i = 0, n_extra - 1 do
    redis.call('HSET', item, a[pos + 5 + 2 * i], a[pos + 6 + 2 * i])
  end
  return {'accepted', id}
end
"""

_PUT = _PUT_ONE + "return put(KEYS, ARGV)\n"

# The same for a whole batch, in one script: a script is refused (OOM) before its first write
# or runs to the end, so a batch is stored all or nothing, even when Redis fills up meanwhile.
# KEYS: every item's keys, in order; ARGV: n items, then per item: n keys, n args, args...
# Returns one {outcome, id} per item.
_PUT_MANY = (
    _PUT_ONE
    + """
local results, kpos, apos = {}, 1, 2
for _ = 1, tonumber(ARGV[1]) do
  local nk, na = tonumber(ARGV[apos]), tonumber(ARGV[apos + 1])
  local k, a = {}, {}
  for i = 1, nk do k[i] = KEYS[kpos + i - 1] end
  for i = 1, na do a[i] = ARGV[apos + 1 + i] end
  table.insert(results, put(k, a))
  kpos, apos = kpos + nk, apos + 2 + na
end
return results
"""
)

# KEYS: ready, inflight; ARGV: prefix, now, limit, lease_until, token
_CLAIM = """
local ready, inflight = KEYS[1], KEYS[2]
local prefix, now, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local lease_until, token = ARGV[4], ARGV[5]
-- Leases that ended belong to workers that died or stalled: their items are due again.
local expired = redis.call('ZRANGEBYSCORE', inflight, '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', inflight, id)
  redis.call('ZADD', ready, now, id)
  redis.call('HSET', prefix .. 'item:' .. id, 'status', 'queued', 'updated_at', now)
  redis.call('HDEL', prefix .. 'item:' .. id, 'lease')
end
local ids = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, limit)
local claimed = {}
for _, id in ipairs(ids) do
  redis.call('ZREM', ready, id)
  local item = prefix .. 'item:' .. id
  if redis.call('EXISTS', item) == 1 then
    redis.call('ZADD', inflight, lease_until, id)
    redis.call('HSET', item, 'status', 'delivering', 'lease', token, 'updated_at', now)
    local data = redis.call('HMGET', item, 'payload', 'attempts', 'progress', 'created_at')
    local atts = {}  -- names and sizes only: the bytes are read when a deliverer needs them
    for _, f in ipairs(redis.call('HKEYS', item)) do
      if string.sub(f, 1, 4) == 'att:' then
        table.insert(atts, string.sub(f, 5))
        table.insert(atts, redis.call('HSTRLEN', item, f))
      end
    end
    table.insert(claimed, {id, data[1], data[2], data[3], data[4], atts})
  end
end
return claimed
"""

# KEYS: item, ready, inflight, dlq; ARGV: id, token, outcome, now, result/error JSON,
# due (retry/defer), status_ttl, progress JSON ('' = unchanged)
_SETTLE = """
local item, ready, inflight, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, token, outcome, now, body = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local due, status_ttl, progress = ARGV[6], tonumber(ARGV[7]), ARGV[8]
if redis.call('HGET', item, 'lease') ~= token then return 0 end
redis.call('ZREM', inflight, id)
redis.call('HDEL', item, 'lease')
if progress ~= '' then redis.call('HSET', item, 'progress', progress) end
if outcome == 'delivered' or outcome == 'duplicate' then
  local fields = redis.call('HKEYS', item)
  for _, f in ipairs(fields) do
    if f == 'payload' or string.sub(f, 1, 4) == 'att:' then redis.call('HDEL', item, f) end
  end
  redis.call('HSET', item, 'status', outcome, 'result', body, 'updated_at', now)
  redis.call('HDEL', item, 'error')
  redis.call('EXPIRE', item, status_ttl)
  -- Unique keys live as long as the status: "already in the org" for status_ttl.
  local uniques = redis.call('HGET', item, 'unique_keys')
  if uniques then
    for _, key in ipairs(cjson.decode(uniques)) do redis.call('EXPIRE', key, status_ttl) end
  end
elseif outcome == 'retry' then
  redis.call('HINCRBY', item, 'attempts', 1)
  redis.call('HSET', item, 'status', 'queued', 'error', body, 'next_attempt_at', due,
    'updated_at', now)
  redis.call('ZADD', ready, due, id)
elseif outcome == 'defer' then
  redis.call('HSET', item, 'status', 'queued', 'next_attempt_at', due, 'updated_at', now)
  if body ~= '' then redis.call('HSET', item, 'deferred', body) end
  redis.call('ZADD', ready, due, id)
elseif outcome == 'failed' then
  redis.call('HINCRBY', item, 'attempts', 1)
  redis.call('HSET', item, 'status', 'failed', 'error', body, 'updated_at', now)
  redis.call('ZADD', dlq, now, id)
  redis.call('EXPIRE', item, status_ttl)  -- a dead letter's data is not kept for ever
  -- A failed item frees its unique keys, so the candidate may send corrected data.
  local uniques = redis.call('HGET', item, 'unique_keys')
  if uniques then
    for _, key in ipairs(cjson.decode(uniques)) do
      if redis.call('GET', key) == id then redis.call('DEL', key) end
    end
  end
end
return 1
"""

# KEYS: item, ready, inflight, dlq; ARGV: id, now
_REPLAY = """
if redis.call('HGET', KEYS[1], 'status') ~= 'failed' then return 0 end
if redis.call('HEXISTS', KEYS[1], 'payload') == 0 then return -1 end
redis.call('ZREM', KEYS[4], ARGV[1])
redis.call('PERSIST', KEYS[1])
redis.call('HSET', KEYS[1], 'status', 'queued', 'attempts', 0, 'next_attempt_at', ARGV[2],
  'updated_at', ARGV[2], 'replayed_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'replays', 1)
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: item, dlq; ARGV: id, now, status_ttl
_DROP = """
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if f == 'payload' or string.sub(f, 1, 4) == 'att:' then redis.call('HDEL', KEYS[1], f) end
end
redis.call('HSET', KEYS[1], 'dropped_at', ARGV[2], 'updated_at', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""

# KEYS: inflight, item...; ARGV: lease_until, token
_EXTEND = """
local n = 0
for i = 2, #KEYS do
  if redis.call('HGET', KEYS[i], 'lease') == ARGV[2] then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[1], redis.call('HGET', KEYS[i], 'id'))
    n = n + 1
  end
end
return n
"""

# KEYS: item; ARGV: token, progress JSON
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
"""
