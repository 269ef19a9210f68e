/**
 * The Lua helpers every RedisCacheIndex script starts with (redis-scripts.ts): slots, the bucket
 * layout, counters and the store / speculate / forget / clear steps. Layout and semantics:
 * docs/redis-layout.md.
 *
 * KEYS = [stats, spec] of the namespace (both carry its hash tag, so Redis Cluster routes every
 * call to the one slot that holds the namespace); ARGV[1] = the key prefix ("{pr}:v2", indexKeyPrefix), from which the
 * scripts build the other key names. Block keys arrive as 8 binary bytes (the 16 hex digits of
 * docs/prefix-keys.md, decoded by the client). Blocks live in 65,536 bucket STRINGs
 * `{ns}:v2:h:<first 2 key bytes>`: one header byte V (value width), then fixed-width records of the
 * other 6 key bytes followed by V value bytes. The value holds two bits per worker slot,
 * interleaved by byte (byte 2g: confirmed bits of slots 8g…8g+7, byte 2g+1: their speculative
 * bits); a record whose bits all clear is removed, an empty bucket deleted. A speculative bit's
 * expiry is its score in the spec ZSET (Redis TIME in ms, one clock for every router); it is live
 * while expiry > now. A slot never has both bits set.
 *
 * Scripts read the buckets they need with MGET (get / load), change them in Lua, and write the
 * changed ones back once, at flush.
 */
export const PRELUDE = `
local NS = ARGV[1]
local STATS = KEYS[1]
local SPEC = KEYS[2]
local SLOTS = NS .. ':slot'
local FREE = NS .. ':free'
local DRAIN = NS .. ':drain'
local NONEMPTY = NS .. ':nb' -- bitmap: bit i set when bucket i may be non-empty
local BUCKET = NS .. ':h:'
local KW, F = 8, 6 -- key bytes; record field bytes (the key after its 2 bucket bytes)
local NBUCKETS = 65536
local slots = {}
-- Counter deltas, written once per script: per worker confirmed / speculative, and entries.
local dc, ds, de = {}, {}, 0
local touched = {}
-- Buckets read so far: name -> string | false (absent); changed ones and new ones to flush.
local buckets, dirty, created = {}, {}, {}
local ZEROS = {}

local function add(t, worker, by)
  t[worker] = (t[worker] or 0) + by
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function zeros(n)
  local z = ZEROS[n]
  if not z then
    z = string.rep('\\0', n)
    ZEROS[n] = z
  end
  return z
end

-- Spec ZSET member: the 8-byte block key, then the worker id (any bytes).
local function member(key, worker)
  return key .. worker
end

local function bucket_of(key)
  return BUCKET .. string.sub(key, 1, 2)
end

-- Reads the buckets named in list (those not read yet) with MGET, 1,000 names per call.
local function load(list)
  local want, seen = {}, {}
  for _, name in ipairs(list) do
    if buckets[name] == nil and not seen[name] then
      seen[name] = true
      want[#want + 1] = name
    end
  end
  for at = 1, #want, 1000 do
    local last = math.min(#want, at + 999)
    local got = redis.call('MGET', unpack(want, at, last))
    for j = at, last do buckets[want[j]] = got[j - at + 1] or false end
  end
end

-- Loads the buckets of the keys packed in one string (KW bytes each).
local function load_keys(packed)
  local list = {}
  for k = 1, #packed, KW do list[#list + 1] = bucket_of(string.sub(packed, k, k + 1)) end
  load(list)
end

-- Position of field's record in bucket string s (records start at byte 2, R bytes each), or nil.
local function find(s, field)
  if not s then return nil end
  local r = F + string.byte(s, 1)
  local p = string.find(s, field, 2, true)
  while p and (p - 2) % r ~= 0 do p = string.find(s, field, p + 1, true) end
  return p
end

-- The value (bit string) of block key, or nil; the bucket must be loaded.
local function value(key)
  local name = bucket_of(key)
  local s = buckets[name]
  if s == nil then
    load({ name })
    s = buckets[name]
  end
  local p = find(s, string.sub(key, 3))
  if not p then return nil end
  return string.sub(s, p + F, p + F + string.byte(s, 1) - 1)
end

-- Where a slot's bits live in a value: the confirmed byte's index (1-based; the speculative byte
-- follows it) and the bit mask.
local function locate(slot)
  local g = math.floor(slot / 8)
  return { byte = 2 * g + 1, mask = bit.rshift(128, slot % 8) }
end

-- Confirmed and speculative bits of a slot in value v (false when the block is absent).
local function bits(v, at)
  if not v then return false, false end
  return bit.band(string.byte(v, at.byte) or 0, at.mask) ~= 0, bit.band(string.byte(v, at.byte + 1) or 0, at.mask) ~= 0
end

-- Bucket s with every value widened to w bytes (zero bytes appended).
local function widen(s, w)
  local v = string.byte(s, 1)
  local r, pad, parts = F + v, zeros(w - v), { string.char(w) }
  for p = 2, #s, r do parts[#parts + 1] = string.sub(s, p, p + r - 1) .. pad end
  return table.concat(parts)
end

-- Sets a slot's two bits of block key to (c, sp); creates or removes the record as needed.
local function put(key, at, c, sp)
  local name, field = bucket_of(key), string.sub(key, 3)
  local s = buckets[name]
  if s == nil then
    load({ name })
    s = buckets[name]
  end
  local p = find(s, field)
  if not p and not (c or sp) then return end
  local need = at.byte + 1
  if s and string.byte(s, 1) < need then
    if not (c or sp) then return end -- no byte for this slot yet: its bits are clear already
    s = widen(s, need)
    p = p and find(s, field)
  end
  if not s then
    s = string.char(need)
    created[#created + 1] = name
  end
  local v = string.byte(s, 1)
  if not p then
    p = #s + 1
    s = s .. field .. zeros(v)
    de = de + 1
  end
  local q = p + F + at.byte - 1
  local cb, sb = string.byte(s, q, q + 1)
  cb = c and bit.bor(cb, at.mask) or bit.band(cb, bit.bnot(at.mask))
  sb = sp and bit.bor(sb, at.mask) or bit.band(sb, bit.bnot(at.mask))
  s = string.sub(s, 1, q - 1) .. string.char(cb, sb) .. string.sub(s, q + 2)
  if string.sub(s, p + F, p + F + v - 1) == zeros(v) then
    s = string.sub(s, 1, p - 1) .. string.sub(s, p + F + v)
    de = de - 1
    if #s == 1 then s = false end
  end
  buckets[name] = s
  dirty[name] = true
end

-- The worker's slot. allocate: take the lowest free one, which keeps values short.
local function slot_of(worker, allocate)
  local s = slots[worker]
  if s then return s end
  s = redis.call('HGET', SLOTS, worker)
  if s then
    s = tonumber(s)
  elseif allocate then
    local free = redis.call('ZPOPMIN', FREE)
    if free[1] then s = tonumber(free[1]) else s = redis.call('HINCRBY', STATS, 'nextslot', 1) - 1 end
    if s >= 1016 then error('ERR more than 1016 worker slots in one namespace') end
    redis.call('HSET', SLOTS, worker, s)
    touched[worker] = true -- so flush gives it back if nothing ends up stored
  else
    return nil
  end
  slots[worker] = s
  return s
end

-- 'c' (confirmed), 's' (speculative) or nil, and the block's value.
local function held(key, at)
  local v = value(key)
  local c, sp = bits(v, at)
  if c then return 'c', v end
  if sp then return 's', v end
  return nil, v
end

-- Drops the worker's entry (speculative when spec) of block key.
local function forget(key, worker, at, spec)
  put(key, at, false, false)
  if spec then
    redis.call('ZREM', SPEC, member(key, worker))
    add(ds, worker, -1)
  else
    add(dc, worker, -1)
  end
  touched[worker] = true
end

local function confirm(worker, key, at)
  local c, sp = bits(value(key), at)
  if c then return end
  put(key, at, true, false)
  if sp then
    redis.call('ZREM', SPEC, member(key, worker))
    add(ds, worker, -1)
  end
  add(dc, worker, 1)
end

-- Never downgrades a confirmed entry; speculating again only ever extends the expiry (ZADD GT).
local function speculate(worker, key, at, expiry)
  local c, sp = bits(value(key), at)
  if c then return end
  redis.call('ZADD', SPEC, 'GT', expiry, member(key, worker))
  if sp then return end
  put(key, at, false, true)
  add(ds, worker, 1)
end

-- The worker's entries, confirmed plus speculative, counting this script's pending deltas.
local function count(worker)
  local got = redis.call('HMGET', STATS, 'c:' .. worker, 's:' .. worker)
  return (tonumber(got[1]) or 0) + (tonumber(got[2]) or 0) + (dc[worker] or 0) + (ds[worker] or 0)
end

-- Detach, O(1): the worker loses its slot at once (lookups stop seeing its bits) and the slot
-- joins {ns}:v2:drain as "<cursor position that ends its pass> <worker>"; drain clears its bits in
-- one pass of the bucket cursor and only then gives the slot back. A slot with no entries is
-- freed at once. Pending counter deltas of the old slot are dropped with it.
local function clear(worker)
  local slot = slot_of(worker, false)
  if slot then
    if count(worker) > 0 then
      local pos = tonumber(redis.call('HGET', STATS, 'cursor') or '0')
      redis.call('HSET', DRAIN, slot, string.format('%d', pos + NBUCKETS) .. ' ' .. worker)
    else
      redis.call('ZADD', FREE, slot, slot)
    end
    redis.call('HDEL', SLOTS, worker)
    slots[worker] = nil
  end
  redis.call('HDEL', STATS, 'c:' .. worker, 's:' .. worker, 't:' .. worker)
  dc[worker], ds[worker] = nil, nil
end

-- Writes the changed buckets (one MSET, one DEL), marks new ones in the bitmap, then the
-- counters. A worker left with no entries leaves the stats and frees its slot (its bits are all
-- clear).
local function flush()
  local set, del = {}, {}
  for name in pairs(dirty) do
    local s = buckets[name]
    if s then
      set[#set + 1] = name
      set[#set + 1] = s
    else
      del[#del + 1] = name
    end
  end
  for at = 1, #set, 1000 do redis.call('MSET', unpack(set, at, math.min(#set, at + 999))) end
  for at = 1, #del, 1000 do redis.call('DEL', unpack(del, at, math.min(#del, at + 999))) end
  local marks = {}
  for _, name in ipairs(created) do
    if buckets[name] then
      local b1, b2 = string.byte(name, #name - 1, #name)
      marks[#marks + 1] = 'SET'
      marks[#marks + 1] = 'u1'
      marks[#marks + 1] = b1 * 256 + b2
      marks[#marks + 1] = 1
    end
  end
  for at = 1, #marks, 1000 do redis.call('BITFIELD', NONEMPTY, unpack(marks, at, math.min(#marks, at + 999))) end
  for worker, by in pairs(dc) do
    if by ~= 0 then redis.call('HINCRBY', STATS, 'c:' .. worker, by) end
  end
  for worker, by in pairs(ds) do
    if by ~= 0 then redis.call('HINCRBY', STATS, 's:' .. worker, by) end
  end
  dc, ds = {}, {}
  if de ~= 0 then redis.call('HINCRBY', STATS, 'entries', de) end
  for worker in pairs(touched) do
    if count(worker) == 0 then
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
