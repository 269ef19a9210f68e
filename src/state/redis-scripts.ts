/**
 * The Lua scripts of RedisCacheIndex, one per method family, each PRELUDE (redis-lua-prelude.ts)
 * plus a body. Kept as string constants so `tsc` ships them in dist/ with no file loading.
 * Layout and semantics: docs/redis-layout.md.
 */
import { PRELUDE } from "./redis-lua-prelude";

/**
 * ARGV: tag, worker, key width w, then ops: "A" keys (store) | "S" ttlMs keys (speculate) |
 * "R" keys (remove) | "C" (clear: detach, O(1); drain frees the entries), where keys is one string of block keys w characters each (one
 * argument instead of one per key: ioredis spends ~0.6 µs per argument). The op list is checked
 * whole before anything is written, because Redis does not roll back a script that fails halfway.
 * Returns the number of ops applied.
 */
export const APPLY_LUA = `${PRELUDE}
local worker = ARGV[2]
local w = tonumber(ARGV[3])
local i, ops = 4, 0
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
  if not packed or not w or w < 1 or #packed % w ~= 0 then return redis.error_reply('ERR bad keys at ' .. i) end
  ops = ops + 1
end

local now = now_ms()
local reported = false
i = 4
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'A' then
    local packed, at = ARGV[i + 1], locate(slot_of(worker, true))
    for k = 1, #packed, w do confirm(worker, string.sub(packed, k, k + w - 1), at) end
    i = i + 2
    reported = true
  elseif op == 'R' then
    local packed, slot = ARGV[i + 1], slot_of(worker, false)
    if slot then
      local at = locate(slot)
      for k = 1, #packed, w do
        local key = string.sub(packed, k, k + w - 1)
        local h, v, bk = held(key, at)
        if h then forget(bk, key, worker, at, h == 's', true, v) end
      end
    end
    i = i + 2
    reported = true
  elseif op == 'S' then
    local expiry = string.format('%d', now + tonumber(ARGV[i + 1]))
    local packed, at = ARGV[i + 2], locate(slot_of(worker, true))
    for k = 1, #packed, w do speculate(worker, string.sub(packed, k, k + w - 1), at, expiry) end
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
 * ARGV: tag, name width w, the chain's block key names ("{pr}:b:<key>") in prefix order packed
 * into one string, then the asked workers. Returns each worker's leading-run length in the order
 * asked. The asked workers form a bit mask, ANDed byte by byte with each block's confirmed bits;
 * blocks are read by MGET in chunks growing from 8 to 256, and the walk stops once the mask is
 * empty. A block whose string equals the previous one's changes nothing (Lua compares interned
 * strings by pointer), which skips the byte loop along runs of blocks held by the same workers.
 * Speculative bits are checked against their expiry; expired ones are dropped on the way.
 */
export const LOOKUP_LUA = `${PRELUDE}
local w = tonumber(ARGV[2])
local packed = ARGV[3]
local nw = #ARGV - 3
local nkeys = math.floor(#packed / w)
local skip = #NS + 3 -- "{ns}:b:" before the block key
local runs, mask, who, live = {}, {}, {}, {}
for j = 1, nw do runs[j] = 0 end
if nkeys == 0 or nw == 0 then return runs end
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
    if bit.band(gone, bit.rshift(128, pos)) ~= 0 then runs[who[(b - 1) * 8 + pos]] = run end
  end
end

local now, prev = nil, nil
local i, chunk = 0, 8
while i < nkeys and #live > 0 do
  local last = math.min(nkeys, i + chunk)
  local names = {}
  for k = i + 1, last do names[k - i] = string.sub(packed, (k - 1) * w + 1, k * w) end
  local vals = redis.call('MGET', unpack(names))
  for k = 1, last - i do
    local v, at = vals[k], i + k - 1
    if not v then
      for _, b in ipairs(live) do settle(b, mask[b], at) end
      live = {}
      break
    end
    if v ~= prev then
      local emptied, pure = false, true
      for _, b in ipairs(live) do
        local a = mask[b]
        local keep = bit.band(a, string.byte(v, 2 * b - 1) or 0)
        if keep ~= a then
          local spec = bit.band(bit.band(a, bit.bnot(keep)), string.byte(v, 2 * b) or 0)
          for pos = 0, 7 do
            local one = bit.rshift(128, pos)
            if bit.band(spec, one) ~= 0 then
              local key, slot = string.sub(names[k], skip + 1), (b - 1) * 8 + pos
              local worker = ARGV[3 + who[slot]]
              now = now or now_ms()
              local expiry = tonumber(redis.call('ZSCORE', SPEC, member(key, worker)))
              pure = false
              if expiry and expiry > now then
                keep = bit.bor(keep, one)
              else
                local at = locate(slot)
                if forget(names[k], key, worker, at, true, true, v) then
                  -- keep v current: another expired bit of this block may follow
                  local idx = at.byte + 1
                  v = string.sub(v, 1, idx - 1) .. string.char(bit.band(string.byte(v, idx), bit.bnot(at.mask))) .. string.sub(v, idx + 1)
                else
                  v = ''
                end
              end
            end
          end
        end
        if keep ~= a then
          settle(b, bit.band(a, bit.bnot(keep)), at)
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
for _, m in ipairs(due) do
  local colon = string.find(m, ':', 1, true)
  local len = tonumber(string.sub(m, 1, colon - 1))
  local key = string.sub(m, colon + 1, colon + len)
  local worker = string.sub(m, colon + len + 1)
  local slot = slot_of(worker, false)
  local at = slot and locate(slot)
  local h, v, bk = nil, nil, nil
  if at then h, v, bk = held(key, at) end
  if h == 's' then
    forget(bk, key, worker, at, true, true, v)
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
 * ARGV: tag, limit. Frees up to `limit` entries of detached slots ({ns}:drain, slot → worker):
 * pops block keys from a slot's gone set and clears that slot's bits (deleting blocks left with
 * none), and the spec ZSET member of a speculative one unless the worker, attached again, holds
 * the same key speculatively under the same member. A slot whose set is empty goes back to
 * {ns}:free. Returns { entries freed, detached slots left }: call again while slots are left.
 */
export const DRAIN_LUA = `${PRELUDE}
local limit = tonumber(ARGV[2])
local DRAIN = NS .. ':drain'
local freed = 0
while freed < limit do
  local slot = redis.call('HRANDFIELD', DRAIN)
  if not slot then break end
  local worker = redis.call('HGET', DRAIN, slot)
  local gone = NS .. ':gone:' .. slot
  local keys = redis.call('SPOP', gone, limit - freed)
  local at = locate(tonumber(slot))
  local now_slot = slot_of(worker, false)
  local now_at = now_slot and locate(now_slot)
  for _, key in ipairs(keys) do
    local bk = NS .. ':b:' .. key
    local v = redis.call('GET', bk)
    local c, sp = bits(v, at)
    if c or sp then
      if others(v, sp and at.byte + 1 or at.byte, at.mask) then
        redis.call('SETBIT', bk, sp and at.off + 8 or at.off, 0)
      else
        redis.call('DEL', bk)
        de = de - 1
      end
      if sp and not (now_at and select(2, bits(v, now_at))) then redis.call('ZREM', SPEC, member(key, worker)) end
    end
  end
  freed = freed + #keys
  if redis.call('EXISTS', gone) == 0 then
    redis.call('HDEL', DRAIN, slot)
    redis.call('ZADD', FREE, slot, slot)
  end
end
flush()
return { freed, redis.call('HLEN', DRAIN) }
`;

/**
 * ARGV: tag, worker, shadow. The end of a resync built under the shadow name: detaches the
 * worker's current slot (see clear) and hands it the shadow's slot, set and counters, in one step,
 * so a lookup sees the old entries or the new ones, never a mix. Returns the worker's new count.
 */
export const SWAP_LUA = `${PRELUDE}
local worker, shadow = ARGV[2], ARGV[3]
clear(worker)
local slot = slot_of(shadow, false)
local count = 0
if slot then
  redis.call('HSET', SLOTS, worker, slot)
  redis.call('HDEL', SLOTS, shadow)
  slots[shadow] = nil
  slots[worker] = slot
  if redis.call('EXISTS', NS .. ':w:' .. shadow) == 1 then redis.call('RENAME', NS .. ':w:' .. shadow, NS .. ':w:' .. worker) end
  count = tonumber(redis.call('HGET', STATS, 'c:' .. shadow) or '0')
  redis.call('HSET', STATS, 'c:' .. worker, count, 't:' .. worker, string.format('%d', now_ms()))
  redis.call('HDEL', STATS, 'c:' .. shadow, 's:' .. shadow, 't:' .. shadow)
end
touched[worker] = true
flush()
return count
`;
