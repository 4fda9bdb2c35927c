"""The Redis store's Lua scripts: each runs atomically on the server, so what it reads and what it
writes cannot interleave with another replica's call.

Written for Redis 6.2+ and Valkey with standard commands only. Time comes from the server's TIME
(microseconds), never from a replica's clock. Numbers handed back to Redis go through
`string.format('%d')` or as plain Lua numbers below 2^53: `tostring` would keep only 14 digits.
Money is integer nano-USD.

Keys of one token share the hash tag `{name}`: see `redis_store.TokenKeys`.
"""

# Effects replication is the default from Redis 5 and the only mode from 7 (where the call is
# deprecated but still there); on 6.2 it must be asked for before a write that follows TIME.
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local WINDOW = 60000000
local WINDOW_MS = 61000
local now
local function tick()
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
end

-- Seconds until the oldest entry of a window leaves it.
local function wait(key)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #oldest == 0 then return 1 end
  return math.max(1, math.ceil((tonumber(oldest[2]) + WINDOW - now) / 1000000))
end

-- Drops the reservations whose replica never settled them; the money still held after. The
-- reservation keys carry no TTL (that could free money behind the balance's back): settled
-- ones empty them, lapsed ones are dropped here.
local function lapse(acct, res, rexp, reserved)
  local lapsed = redis.call('ZRANGEBYSCORE', rexp, '-inf', now)
  if #lapsed == 0 then return reserved end
  local freed = 0
  for _, id in ipairs(lapsed) do
    local held = redis.call('HGET', res, id)
    if held then
      freed = freed + tonumber(string.match(held, '^(%-?%d+)'))
      redis.call('HDEL', res, id)
    end
  end
  redis.call('ZREMRANGEBYSCORE', rexp, '-inf', now)
  if freed ~= 0 then reserved = redis.call('HINCRBY', acct, 'reserved', -freed) end
  return reserved
end
"""

# KEYS: acct rpm tpm tpm_sum res rexp
# ARGV: request_id rpm tpm tokens usd_nano opening_nano reservation_ttl_us ('' for none)
# -> {code, retry_after, available nano-USD or nil}; code 0 admitted, 1 revoked, 2 rpm, 3 tpm,
#    4 balance (relay.state.REASONS)
ADMIT = _PRELUDE + """
local acct = KEYS[1]
local a = redis.call('HMGET', acct, 'revoked', 'bal', 'reserved')
if a[1] == '1' then return {1, 0, false} end
local bal = a[2]
if not bal and ARGV[6] ~= '' then
  bal = ARGV[6]
  redis.call('HSET', acct, 'bal', bal)
end
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
if not (rpm or tpm or bal) then return {0, 0, false} end
tick()
local since = now - WINDOW
local id = ARGV[1]
local tokens = tonumber(ARGV[4])
local reserved = tonumber(a[3]) or 0
if reserved ~= 0 or tpm then reserved = lapse(acct, KEYS[5], KEYS[6], reserved) end
if rpm then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', since)
  if redis.call('ZCARD', KEYS[2]) >= rpm then return {2, wait(KEYS[2]), false} end
end
local sum = 0
if tpm then
  sum = tonumber(redis.call('GET', KEYS[4]) or '0')
  local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', since)
  if #old > 0 then
    for _, m in ipairs(old) do sum = sum - tonumber(string.match(m, '|(%d+)$')) end
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', since)
  end
  -- the window expired whole while its sum lived on
  if sum ~= 0 and redis.call('EXISTS', KEYS[3]) == 0 then sum = 0 end
  if sum >= tpm or (sum > 0 and sum + tokens > tpm) then
    if #old > 0 then redis.call('SET', KEYS[4], string.format('%d', sum), 'PX', WINDOW_MS) end
    return {3, wait(KEYS[3]), false}
  end
end
local held = 0
if bal then
  bal = tonumber(bal)
  held = tonumber(ARGV[5])
  if held > bal - reserved then return {4, 0, bal - reserved} end
end
if rpm then
  redis.call('ZADD', KEYS[2], now, id)
  redis.call('PEXPIRE', KEYS[2], WINDOW_MS)
end
if tpm then
  redis.call('ZADD', KEYS[3], now, id .. '|' .. ARGV[4])
  redis.call('PEXPIRE', KEYS[3], WINDOW_MS)
  redis.call('SET', KEYS[4], string.format('%d', sum + tokens), 'PX', WINDOW_MS)
end
if held > 0 or tpm then
  local ttl = tonumber(ARGV[7])
  redis.call('HSET', KEYS[5], id, string.format('%d %s', held, tpm and ARGV[4] or '-1'))
  redis.call('ZADD', KEYS[6], now + ttl, id)
  if held > 0 then reserved = redis.call('HINCRBY', acct, 'reserved', held) end
end
if bal then return {0, 0, bal - reserved} end
return {0, 0, false}
"""

# KEYS: ip_window   ARGV: request_id ip_rpm   -> as ADMIT, code 5 for a refusal
ADMIT_IP = _PRELUDE + """
tick()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - WINDOW)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {5, wait(KEYS[1]), false} end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], WINDOW_MS)
return {0, 0, false}
"""

# KEYS: acct tpm tpm_sum res rexp settled_mark day
# ARGV: request_id billed_nano tokens settled_ttl_ms day_ttl_s   -> 1 applied, 0 a repeat
SETTLE = _PRELUDE + """
if not redis.call('SET', KEYS[6], 1, 'NX', 'PX', ARGV[4]) then return 0 end
local id = ARGV[1]
local held = redis.call('HGET', KEYS[4], id)
if held then
  local money, tok = string.match(held, '^(%-?%d+) (%-?%d+)$')
  redis.call('HDEL', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  if tonumber(money) ~= 0 then redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(money)) end
  if tonumber(tok) >= 0 then
    -- the estimate leaves the tpm window, the true count enters it now
    tick()
    local sum = tonumber(redis.call('GET', KEYS[3]) or '0')
    if redis.call('ZREM', KEYS[2], id .. '|' .. tok) == 1 then sum = sum - tonumber(tok) end
    if redis.call('EXISTS', KEYS[2]) == 0 then sum = 0 end
    redis.call('ZADD', KEYS[2], now, id .. '|' .. ARGV[3])
    redis.call('PEXPIRE', KEYS[2], WINDOW_MS)
    redis.call('SET', KEYS[3], string.format('%d', sum + tonumber(ARGV[3])), 'PX', WINDOW_MS)
  end
end
local billed = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'bal') == 1 then redis.call('HINCRBY', KEYS[1], 'bal', -billed) end
redis.call('HINCRBY', KEYS[1], 'spent', billed)
redis.call('HINCRBY', KEYS[7], 'usd', billed)
if redis.call('HINCRBY', KEYS[7], 'n', 1) == 1 then redis.call('EXPIRE', KEYS[7], ARGV[5]) end
return 1
"""

# KEYS: acct res rexp day   -> nil for an unknown name, else
#    {balance nano or nil, reserved, spent, revoked (0/1), day's nano-USD, day's requests}
ACCOUNT = _PRELUDE + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
tick()
local a = redis.call('HMGET', KEYS[1], 'bal', 'reserved', 'spent', 'revoked')
local reserved = lapse(KEYS[1], KEYS[2], KEYS[3], tonumber(a[2]) or 0)
local d = redis.call('HMGET', KEYS[4], 'usd', 'n')
return {a[1] and tonumber(a[1]) or false, reserved, tonumber(a[3]) or 0, a[4] == '1' and 1 or 0,
        tonumber(d[1]) or 0, tonumber(d[2]) or 0}
"""

# KEYS: health   ARGV: key_id until (unix seconds)   -- a later rest wins over an earlier one
REST_KEY = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > current then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""

# KEYS: health   -> {key_id, until, ...} of the keys still resting; the others are removed
RESTING = _PRELUDE + """
tick()
local seconds = now / 1000000
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) > seconds then
    out[#out + 1] = all[i]
    out[#out + 1] = all[i + 1]
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
return out
"""
