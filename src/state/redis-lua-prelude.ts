/**
 * The Lua helpers every RedisCacheIndex script starts with (redis-scripts.ts): slots, bit
 * layout, counters and the store / speculate / forget / clear steps. Layout and semantics:
 * docs/redis-layout.md.
 *
 * KEYS = [stats, spec] of the namespace (both carry its hash tag, so Redis Cluster routes every
 * call to the one slot that holds the namespace); ARGV[1] = the tag ("{pr}"), from which the
 * scripts build the other key names. Each worker has a slot; a block's STRING holds two bits per
 * slot, interleaved by byte (byte 2g: confirmed bits of slots 8g…8g+7, byte 2g+1: their
 * speculative bits), so a lookup reads one string per block. A speculative bit's expiry is its
 * score in the spec ZSET (Redis TIME in ms, one clock for every router); it is live while
 * expiry > now. A slot never has both bits set.
 */
export const PRELUDE = `
local NS = ARGV[1]
local STATS = KEYS[1]
local SPEC = KEYS[2]
local SLOTS = NS .. ':slot'
local FREE = NS .. ':free'
local slots = {}
-- Counter deltas, written once per script: per worker confirmed / speculative, and entries.
local dc, ds, de = {}, {}, 0
-- Pending worker-set changes, worker -> key -> true (SADD) | false (SREM): one call per set
-- instead of one per key; the last change of a key wins, so op order is kept.
local members = {}
local touched = {}

local function add(t, worker, by)
  t[worker] = (t[worker] or 0) + by
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Spec ZSET member: length-prefixed block key, then the worker id (any bytes).
local function member(key, worker)
  return #key .. ':' .. key .. worker
end

-- Where a slot's bits live: bit offset of its confirmed bit (the speculative one is 8 further),
-- and for reading a fetched block string, the confirmed byte's index (1-based) and bit mask.
local function locate(slot)
  local g = math.floor(slot / 8)
  return { off = 16 * g + slot % 8, byte = 2 * g + 1, mask = bit.rshift(128, slot % 8) }
end

-- Confirmed and speculative bits of a slot in block string v (false when the block is absent).
local function bits(v, at)
  if not v then return false, false end
  return bit.band(string.byte(v, at.byte) or 0, at.mask) ~= 0, bit.band(string.byte(v, at.byte + 1) or 0, at.mask) ~= 0
end

-- The worker's slot. allocate: take the lowest free one, which keeps block strings short.
local function slot_of(worker, allocate)
  local s = slots[worker]
  if s then return s end
  s = redis.call('HGET', SLOTS, worker)
  if s then
    s = tonumber(s)
  elseif allocate then
    local free = redis.call('ZPOPMIN', FREE)
    if free[1] then s = tonumber(free[1]) else s = redis.call('HINCRBY', STATS, 'nextslot', 1) - 1 end
    redis.call('HSET', SLOTS, worker, s)
    touched[worker] = true -- so flush gives it back if nothing ends up stored
  else
    return nil
  end
  slots[worker] = s
  return s
end

local function mark(worker, key, present)
  local m = members[worker]
  if not m then
    m = {}
    members[worker] = m
  end
  m[key] = present
  touched[worker] = true
end

local function sync(worker)
  local m = members[worker]
  if not m then return end
  members[worker] = nil
  local wk, put, drop = NS .. ':w:' .. worker, {}, {}
  for key, present in pairs(m) do
    if present then put[#put + 1] = key else drop[#drop + 1] = key end
  end
  for at = 1, #put, 4000 do redis.call('SADD', wk, unpack(put, at, math.min(#put, at + 3999))) end
  for at = 1, #drop, 4000 do redis.call('SREM', wk, unpack(drop, at, math.min(#drop, at + 3999))) end
end

-- 'c' (confirmed), 's' (speculative) or nil, the block string and its key name. GET and
-- decode in Lua beats BITFIELD (~3x from a script) and GETBIT twice.
local function held(key, at)
  local bk = NS .. ':b:' .. key
  local v = redis.call('GET', bk)
  local c, sp = bits(v, at)
  if c then return 'c', v, bk end
  if sp then return 's', v, bk end
  return nil, v, bk
end

-- Whether block string v has a set bit besides (byte idx, mask): deciding in Lua from the string
-- already read saves a BITCOUNT per dropped entry.
local function others(v, idx, mask)
  for j = 1, #v do
    local b = string.byte(v, j)
    if j == idx then b = bit.band(b, bit.bnot(mask)) end
    if b ~= 0 then return true end
  end
  return false
end

-- Drops the entry whose bit is set in v, the current string of block bk; returns whether the
-- block still has other bits (else it was deleted). in_set=false leaves the worker set alone
-- (clear deletes it afterwards).
local function forget(bk, key, worker, at, spec, in_set, v)
  local left = others(v, spec and at.byte + 1 or at.byte, at.mask)
  if left then
    redis.call('SETBIT', bk, spec and at.off + 8 or at.off, 0)
  else
    redis.call('DEL', bk)
    de = de - 1
  end
  if spec then
    redis.call('ZREM', SPEC, member(key, worker))
    add(ds, worker, -1)
  else
    add(dc, worker, -1)
  end
  if in_set then mark(worker, key, false) end
  touched[worker] = true
  return left
end

local function confirm(worker, key, at)
  local bk = NS .. ':b:' .. key
  local v = redis.call('GET', bk)
  local c, sp = bits(v, at)
  if c then return end
  redis.call('SETBIT', bk, at.off, 1)
  if sp then
    redis.call('SETBIT', bk, at.off + 8, 0)
    redis.call('ZREM', SPEC, member(key, worker))
    add(ds, worker, -1)
  else
    mark(worker, key, true)
    if not v then de = de + 1 end
  end
  add(dc, worker, 1)
end

-- Never downgrades a confirmed entry; speculating again only ever extends the expiry (ZADD GT).
local function speculate(worker, key, at, expiry)
  local bk = NS .. ':b:' .. key
  local v = redis.call('GET', bk)
  local c, sp = bits(v, at)
  if c then return end
  redis.call('ZADD', SPEC, 'GT', expiry, member(key, worker))
  if sp then return end
  redis.call('SETBIT', bk, at.off + 8, 1)
  mark(worker, key, true)
  add(ds, worker, 1)
  if not v then de = de + 1 end
end

-- Detach, O(1): the worker loses its slot at once (lookups stop seeing its bits), its set becomes
-- {ns}:gone:<slot> and the slot joins {ns}:drain (slot → worker); drain() frees the bits in bounded steps and
-- only then gives the slot back. Pending counter deltas of the old slot are dropped with it.
local function clear(worker)
  sync(worker)
  local slot = slot_of(worker, false)
  local wk = NS .. ':w:' .. worker
  if slot then
    if redis.call('EXISTS', wk) == 1 then
      redis.call('RENAME', wk, NS .. ':gone:' .. slot)
      redis.call('HSET', NS .. ':drain', slot, worker)
    else
      redis.call('ZADD', FREE, slot, slot)
    end
    redis.call('HDEL', SLOTS, worker)
    slots[worker] = nil
  end
  redis.call('DEL', wk)
  redis.call('HDEL', STATS, 'c:' .. worker, 's:' .. worker, 't:' .. worker)
  dc[worker], ds[worker] = nil, nil
end

-- A worker left with no entries leaves the stats and frees its slot (its bits are all clear).
local function flush()
  for worker in pairs(members) do sync(worker) end
  for worker, by in pairs(dc) do
    if by ~= 0 then redis.call('HINCRBY', STATS, 'c:' .. worker, by) end
  end
  for worker, by in pairs(ds) do
    if by ~= 0 then redis.call('HINCRBY', STATS, 's:' .. worker, by) end
  end
  if de ~= 0 then redis.call('HINCRBY', STATS, 'entries', de) end
  for worker in pairs(touched) do
    if redis.call('EXISTS', NS .. ':w:' .. worker) == 0 then
      redis.call('HDEL', STATS, 'c:' .. worker, 's:' .. worker, 't:' .. worker)
      local s = redis.call('HGET', SLOTS, worker)
      if s then
        redis.call('HDEL', SLOTS, worker)
        redis.call('ZADD', FREE, s, s)
      end
    end
  end
end
`;
