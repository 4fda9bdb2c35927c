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
local KEEP = 61  -- a count is kept from its second until 61 s after that second began
local WINDOW_MS = 62000
local now, second
local function tick()
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
  second = tonumber(clock[1])
end

-- A window of one-second buckets (a hash: second -> amount): its live total and oldest live
-- second; buckets that have lapsed are deleted.
local function window(key)
  local all = redis.call('HGETALL', key)
  local total, oldest = 0, nil
  for i = 1, #all, 2 do
    local s = tonumber(all[i])
    if (s + KEEP) * 1000000 <= now then
      redis.call('HDEL', key, all[i])
    else
      total = total + tonumber(all[i + 1])
      if not oldest or s < oldest then oldest = s end
    end
  end
  return total, oldest
end

-- Seconds until the oldest live bucket of a window lapses.
local function wait(oldest)
  if not oldest then return 1 end
  return math.max(1, math.ceil(((oldest + KEEP) * 1000000 - now) / 1000000))
end

local function count(key, amount)
  redis.call('HINCRBY', key, second, amount)
  redis.call('PEXPIRE', key, WINDOW_MS)
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

# KEYS: acct rpm tpm res rexp
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
local id = ARGV[1]
local tokens = tonumber(ARGV[4])
local reserved = tonumber(a[3]) or 0
if reserved ~= 0 or tpm then reserved = lapse(acct, KEYS[4], KEYS[5], reserved) end
if rpm then
  local seen, oldest = window(KEYS[2])
  if seen >= rpm then return {2, wait(oldest), false} end
end
if tpm then
  local sum, oldest = window(KEYS[3])
  if sum >= tpm or (sum > 0 and sum + tokens > tpm) then return {3, wait(oldest), false} end
end
local held = 0
if bal then
  bal = tonumber(bal)
  held = tonumber(ARGV[5])
  if held > bal - reserved then return {4, 0, bal - reserved} end
end
if rpm then count(KEYS[2], 1) end
if tpm then count(KEYS[3], tokens) end
if held > 0 or tpm then
  local ttl = tonumber(ARGV[7])
  redis.call('HSET', KEYS[4], id, string.format('%d %s %d', held, tpm and ARGV[4] or '-1', second))
  redis.call('ZADD', KEYS[5], now + ttl, id)
  if held > 0 then reserved = redis.call('HINCRBY', acct, 'reserved', held) end
end
if bal then return {0, 0, bal - reserved} end
return {0, 0, false}
"""

# KEYS: ip_window   ARGV: request_id ip_rpm   -> as ADMIT, code 5 for a refusal
ADMIT_IP = _PRELUDE + """
tick()
local seen, oldest = window(KEYS[1])
if seen >= tonumber(ARGV[2]) then return {5, wait(oldest), false} end
count(KEYS[1], 1)
return {0, 0, false}
"""

# KEYS: acct tpm res rexp settled_mark day
# ARGV: request_id billed_nano tokens settled_ttl_ms day_ttl_s   -> 1 applied, 0 a repeat
SETTLE = _PRELUDE + """
if not redis.call('SET', KEYS[5], 1, 'NX', 'PX', ARGV[4]) then return 0 end
local id = ARGV[1]
local held = redis.call('HGET', KEYS[3], id)
if held then
  local money, tok, at = string.match(held, '^(%-?%d+) (%-?%d+) (%d+)$')
  redis.call('HDEL', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  if tonumber(money) ~= 0 then redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(money)) end
  if tonumber(tok) >= 0 then
    -- the estimate leaves the tpm window (if it is still in it), the true count enters it now
    tick()
    if (tonumber(at) + KEEP) * 1000000 > now and tonumber(tok) > 0 then
      if redis.call('HINCRBY', KEYS[2], at, -tonumber(tok)) <= 0 then redis.call('HDEL', KEYS[2], at) end
    end
    if tonumber(ARGV[3]) > 0 then count(KEYS[2], tonumber(ARGV[3])) end
  end
end
local billed = tonumber(ARGV[2])
-- (formatted: Lua writes -0 as "-0", which HINCRBY refuses, failing a $0 settlement's batch)
if redis.call('HEXISTS', KEYS[1], 'bal') == 1 then redis.call('HINCRBY', KEYS[1], 'bal', string.format('%d', -billed)) end
redis.call('HINCRBY', KEYS[1], 'spent', billed)
redis.call('HINCRBY', KEYS[6], 'usd', billed)
if redis.call('HINCRBY', KEYS[6], 'n', 1) == 1 then redis.call('EXPIRE', KEYS[6], ARGV[5]) end
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
