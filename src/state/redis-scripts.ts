/**
 * The Lua scripts of RedisCacheIndex, one per method family, each PRELUDE (redis-lua-prelude.ts)
 * plus a body. Kept as string constants so `tsc` ships them in dist/ with no file loading.
 * Layout and semantics: docs/redis-layout.md.
 */
import { PRELUDE } from "./redis-lua-prelude";

/**
 * ARGV: tag, worker, then ops: "A" keys (store) | "S" ttlMs keys (speculate) | "R" keys (remove)
 * | "C" (clear: detach, O(1); drain frees the entries), where keys is one string of 8-byte binary
 * block keys (one argument instead of one per key: ioredis spends ~0.6 µs per argument). The op
 * list is checked whole before anything is written, because Redis does not roll back a script
 * that fails halfway. The buckets of all keys are read by one MGET first and written back once.
 * Returns the number of ops applied.
 */
export const APPLY_LUA = `${PRELUDE}
local worker = ARGV[2]
local i, ops, all = 3, 0, {}
while i <= #ARGV do
  local op, packed = ARGV[i], nil
  if op == 'A' or op == 'R' then
    packed = ARGV[i + 1]
    i = i + 2
  elseif op == 'S' then
    packed = ARGV[i + 2]
    if not tonumber(ARGV[i + 1]) then return redis.error_reply('ERR bad ttl at ' .. i) end
    i = i + 3
  elseif op == 'C' then
    packed = ''
    i = i + 1
  else
    return redis.error_reply('ERR unknown op ' .. tostring(op))
  end
  if not packed or #packed % KW ~= 0 then return redis.error_reply('ERR bad keys at ' .. i) end
  all[#all + 1] = packed
  ops = ops + 1
end
load_keys(table.concat(all))

local now = now_ms()
local reported = false
i = 3
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'A' then
    local packed, at = ARGV[i + 1], locate(slot_of(worker, true))
    for k = 1, #packed, KW do confirm(worker, string.sub(packed, k, k + KW - 1), at) end
    i = i + 2
    reported = true
  elseif op == 'R' then
    local packed, slot = ARGV[i + 1], slot_of(worker, false)
    if slot then
      local at = locate(slot)
      for k = 1, #packed, KW do
        local key = string.sub(packed, k, k + KW - 1)
        local h = held(key, at)
        if h then forget(key, worker, at, h == 's') end
      end
    end
    i = i + 2
    reported = true
  elseif op == 'S' then
    local expiry = string.format('%d', now + tonumber(ARGV[i + 1]))
    local packed, at = ARGV[i + 2], locate(slot_of(worker, true))
    for k = 1, #packed, KW do speculate(worker, string.sub(packed, k, k + KW - 1), at, expiry) end
    i = i + 3
  else
    clear(worker)
    i = i + 1
    reported = true
  end
end
-- Last report from the worker itself (not our speculation): the liveness clock of purgeIdle.
if reported then
  redis.call('HSET', STATS, 't:' .. worker, string.format('%d', now))
  touched[worker] = true
end
flush()
return ops
`;

/**
 * ARGV: tag, the chain's bucket names packed into one string (each "{ns}:h:" plus the key's 2
 * bucket bytes, built by the client: one cut per block in Lua instead of a cut and a join), the
 * chain's record fields (the other 6 key bytes each), then the asked workers. Returns each
 * worker's leading-run length in the order asked. The asked workers form a bit mask, ANDed byte
 * by byte with each block's confirmed bits; the buckets are read by MGET in chunks growing from 8
 * to 256, and the walk stops once the mask is empty. A block whose value equals the previous
 * one's changes nothing (Lua compares interned strings by pointer), which skips the byte loop
 * along runs of blocks held by the same workers. Speculative bits are checked against their
 * expiry; expired ones are dropped on the way.
 */
export const LOOKUP_LUA = `${PRELUDE}
local sub, byte, sfind, band = string.sub, string.byte, string.find, bit.band
local names, fields = ARGV[2], ARGV[3]
local nw = #ARGV - 3
local nkeys = math.floor(#fields / F)
local width = #BUCKET + 2
local runs, mask, who, live = {}, {}, {}, {}
for j = 1, nw do runs[j] = 0 end
if nkeys == 0 or nw == 0 then return runs end
if #names ~= nkeys * width then return redis.error_reply('ERR bucket names do not match the fields') end
local found = redis.call('HMGET', SLOTS, unpack(ARGV, 4))
for j = 1, nw do
  if found[j] then
    local s = tonumber(found[j])
    local b = math.floor(s / 8) + 1
    who[s] = j
    if not mask[b] then
      mask[b] = 0
      live[#live + 1] = b
    end
    mask[b] = bit.bor(mask[b], bit.rshift(128, s % 8))
  end
end

-- Workers whose bits are in gone (mask byte b) hold exactly run leading blocks.
local function settle(b, gone, run)
  for pos = 0, 7 do
    if band(gone, bit.rshift(128, pos)) ~= 0 then runs[who[(b - 1) * 8 + pos]] = run end
  end
end

local now, prev, changed = nil, nil, false
local i, chunk = 0, 8
while i < nkeys and #live > 0 do
  local last = math.min(nkeys, i + chunk)
  local chunkNames = {}
  for k = i + 1, last do chunkNames[k - i] = sub(names, (k - 1) * width + 1, k * width) end
  local got = redis.call('MGET', unpack(chunkNames))
  for k = 1, last - i do
    local at = i + k - 1
    local s = got[k]
    if changed then -- this walk dropped an expired entry: its bucket copy is the current one
      local mine = buckets[chunkNames[k]]
      if mine ~= nil then s = mine end
    end
    local p, r
    if s then
      local field = sub(fields, at * F + 1, at * F + F)
      r = F + byte(s, 1)
      p = sfind(s, field, 2, true)
      while p and (p - 2) % r ~= 0 do p = sfind(s, field, p + 1, true) end
    end
    if not p then
      for _, b in ipairs(live) do settle(b, mask[b], at) end
      live = {}
      break
    end
    local v = sub(s, p + F, p + r - 1)
    if v ~= prev then
      local emptied, pure = false, true
      for _, b in ipairs(live) do
        local a = mask[b]
        local keep = band(a, byte(v, 2 * b - 1) or 0)
        if keep ~= a then
          local spec = band(band(a, bit.bnot(keep)), byte(v, 2 * b) or 0)
          for pos = 0, 7 do
            local one = bit.rshift(128, pos)
            if band(spec, one) ~= 0 then
              local key, slot = sub(chunkNames[k], -2) .. sub(fields, at * F + 1, at * F + F), (b - 1) * 8 + pos
              local worker = ARGV[3 + who[slot]]
              now = now or now_ms()
              local expiry = tonumber(redis.call('ZSCORE', SPEC, member(key, worker)))
              pure = false
              if expiry and expiry > now then
                keep = bit.bor(keep, one)
              else
                if buckets[chunkNames[k]] == nil then buckets[chunkNames[k]] = s end
                forget(key, worker, locate(slot), true)
                changed = true
                v = value(key) or '' -- another expired bit of this block may follow
              end
            end
          end
        end
        if keep ~= a then
          settle(b, band(a, bit.bnot(keep)), at)
          mask[b] = keep
          if keep == 0 then emptied = true end
        end
      end
      -- Only a block decided by confirmed bits alone may stand for the next identical one.
      prev = pure and v or nil
      if emptied then
        local still = {}
        for _, b in ipairs(live) do if mask[b] ~= 0 then still[#still + 1] = b end end
        live = still
        if #live == 0 then break end
      end
    end
  end
  i = last
  chunk = math.min(chunk * 2, 256)
end
for _, b in ipairs(live) do settle(b, mask[b], nkeys) end
flush()
return runs
`;

/**
 * ARGV: tag, limit. Drops up to `limit` expired speculative entries, earliest expiry first, from
 * the spec ZSET (no keyspace scan). Returns how many ZSET members it processed: call again while
 * that equals `limit`.
 */
export const SWEEP_LUA = `${PRELUDE}
local limit = tonumber(ARGV[2])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', SPEC, '-inf', now, 'LIMIT', 0, limit)
local names = {}
for j, m in ipairs(due) do names[j] = bucket_of(m) end
load(names)
for _, m in ipairs(due) do
  local key, worker = string.sub(m, 1, KW), string.sub(m, KW + 1)
  local slot = slot_of(worker, false)
  local at = slot and locate(slot)
  if at and held(key, at) == 's' then
    forget(key, worker, at, true)
  else
    redis.call('ZREM', SPEC, m)
  end
end
flush()
return #due
`;

/**
 * ARGV: tag, idleMs. Detaches (O(1) each, see clear) every worker whose last own report
 * (add/remove/clear, not speculation) is at least idleMs old by Redis TIME. Returns the detached
 * worker ids; their entries are freed by drain.
 */
export const PURGE_IDLE_LUA = `${PRELUDE}
local idle = tonumber(ARGV[2])
local now = now_ms()
local all = redis.call('HGETALL', STATS)
local purged = {}
for j = 1, #all, 2 do
  local field = all[j]
  if string.sub(field, 1, 2) == 't:' and now - tonumber(all[j + 1]) >= idle then
    local worker = string.sub(field, 3)
    clear(worker)
    purged[#purged + 1] = worker
  end
end
flush()
return purged
`;

/**
 * ARGV: tag, record limit, bucket limit. Moves the bucket cursor (stats field "cursor", a count of
 * buckets passed that only grows; bucket = cursor mod 65,536) over the non-empty buckets (the
 * {ns}:nb bitmap, searched with BITPOS), in windows of up to 64 buckets read by one MGET, and
 * clears the bits of every detached slot ({ns}:drain, slot → "<end> <worker>") in the records it
 * passes — deleting records left with none, and the spec ZSET member of a speculative one unless
 * the worker, attached again, holds the same key speculatively under the same member. It stops
 * after `record limit` records or `bucket limit` buckets, or once every detached slot's pass is
 * complete. A slot whose end the cursor has reached has had every bucket visited since it was
 * detached (no new bits appear for a detached slot), so it goes back to {ns}:free. Bitmap bits
 * of buckets found empty are cleared. Returns { records passed, detached slots left }: call again
 * while slots are left.
 */
export const DRAIN_LUA = `${PRELUDE}
local limit, blimit = tonumber(ARGV[2]), tonumber(ARGV[3])
local list = redis.call('HGETALL', DRAIN)
if #list == 0 then return { 0, 0 } end
-- Per value byte: the detached slots' bits; per detached slot: its worker and where its pass ends.
local dmask, gone, target = {}, {}, 0
for j = 1, #list, 2 do
  local slot = tonumber(list[j])
  local space = string.find(list[j + 1], ' ', 1, true)
  local stop, worker = tonumber(string.sub(list[j + 1], 1, space - 1)), string.sub(list[j + 1], space + 1)
  local at = locate(slot)
  dmask[at.byte] = bit.bor(dmask[at.byte] or 0, at.mask)
  gone[#gone + 1] = { slot = slot, at = at, worker = worker, stop = stop, now = slot_of(worker, false) }
  target = math.max(target, stop)
end
local bytes = {}
for b in pairs(dmask) do bytes[#bytes + 1] = b end
local pos = tonumber(redis.call('HGET', STATS, 'cursor') or '0')
local records, visited, unmark = 0, 0, {}

-- Bucket s with the detached slots' bits cleared (key prefix kp = the 2 bucket bytes); false when
-- no record is left.
local function scrub(s, kp)
  local v = string.byte(s, 1)
  local r = F + v
  local parts, changed = { string.char(v) }, false
  for p = 2, #s, r do
    records = records + 1
    local rec = string.sub(s, p, p + r - 1)
    local hit = false
    for _, b in ipairs(bytes) do
      if b < v and bit.band(bit.bor(string.byte(rec, F + b), string.byte(rec, F + b + 1)), dmask[b]) ~= 0 then hit = true end
    end
    if hit then
      changed = true
      local val = string.sub(rec, F + 1)
      for _, g in ipairs(gone) do
        local c, sp = bits(val, g.at)
        if sp then
          local key = kp .. string.sub(rec, 1, F)
          local again = g.now and select(2, bits(val, locate(g.now)))
          if not again then redis.call('ZREM', SPEC, member(key, g.worker)) end
        end
      end
      local out = {}
      for j = 1, v do
        local m = dmask[j % 2 == 1 and j or j - 1] or 0 -- a slot's spec byte follows its confirmed one
        out[j] = string.char(bit.band(string.byte(val, j), bit.bnot(m)))
      end
      val = table.concat(out)
      if val ~= zeros(v) then parts[#parts + 1] = string.sub(rec, 1, F) .. val else de = de - 1 end
    else
      parts[#parts + 1] = rec
    end
  end
  if not changed then return s end
  if #parts == 1 then return false end
  return table.concat(parts)
end

while pos < target and records < limit and visited < blimit do
  local i = pos % NBUCKETS
  local j = redis.call('BITPOS', NONEMPTY, 1, i, NBUCKETS - 1, 'BIT')
  if j < 0 then
    pos = pos + NBUCKETS - i
  else
    local e = math.min(j + 64, NBUCKETS)
    local map = redis.call('GETRANGE', NONEMPTY, math.floor(j / 8), math.floor((e - 1) / 8))
    local names, ids = {}, {}
    for b = j, e - 1 do
      local byte = string.byte(map, math.floor(b / 8) - math.floor(j / 8) + 1) or 0
      if bit.band(byte, bit.rshift(128, b % 8)) ~= 0 then
        ids[#ids + 1] = b
        names[#names + 1] = BUCKET .. string.char(math.floor(b / 256), b % 256)
      end
    end
    local got = redis.call('MGET', unpack(names))
    for k, name in ipairs(names) do
      local s = got[k] or false
      local after = s and scrub(s, string.sub(name, -2))
      if after ~= s then
        buckets[name] = after
        dirty[name] = true
      end
      if not after then
        unmark[#unmark + 1] = 'SET'
        unmark[#unmark + 1] = 'u1'
        unmark[#unmark + 1] = ids[k]
        unmark[#unmark + 1] = 0
      end
    end
    visited = visited + #names
    pos = pos + e - i
  end
end
redis.call('HSET', STATS, 'cursor', string.format('%d', pos))
if #unmark > 0 then redis.call('BITFIELD', NONEMPTY, unpack(unmark)) end
local left = #gone
for _, g in ipairs(gone) do
  if g.stop <= pos then
    redis.call('HDEL', DRAIN, g.slot)
    redis.call('ZADD', FREE, g.slot, g.slot)
    left = left - 1
  end
end
flush()
return { records, left }
`;

/**
 * ARGV: tag, worker, shadow. The end of a resync built under the shadow name: detaches the
 * worker's current slot (see clear) and hands it the shadow's slot and counters, in one step, so a
 * lookup sees the old entries or the new ones, never a mix. Returns the worker's new count.
 */
export const SWAP_LUA = `${PRELUDE}
local worker, shadow = ARGV[2], ARGV[3]
clear(worker)
local slot = slot_of(shadow, false)
local n = 0
if slot then
  redis.call('HSET', SLOTS, worker, slot)
  redis.call('HDEL', SLOTS, shadow)
  slots[shadow] = nil
  slots[worker] = slot
  n = tonumber(redis.call('HGET', STATS, 'c:' .. shadow) or '0')
  redis.call('HSET', STATS, 'c:' .. worker, n, 't:' .. worker, string.format('%d', now_ms()))
  redis.call('HDEL', STATS, 'c:' .. shadow, 's:' .. shadow, 't:' .. shadow)
end
touched[worker] = true
flush()
return n
`;
