/**
 * The Lua scripts of the Redis store, as text (the build copies no files).
 *
 * They port the memory store's `counters.ts` and `store.ts` line for line: a counter window
 * is loaded into a Lua table (a "cell"), changed in memory exactly as the memory store changes
 * its cell object, and written back at the end of the script (`flush`). Every script:
 *
 * - takes its time from Redis `TIME` (or from `ARGV[1]` when the store was built with a test clock);
 * - first expires, in a bounded sweep, the reservations whose TTL has passed;
 * - leaves every key it writes with a TTL, except documented permanent ones
 *   (lifetime windows, overrides, blocks).
 *
 * ARGV common to all scripts: `[1]` now or '' for `TIME`, `[2]` prefix, `[3]` graceMs,
 * `[4]` idempotencyMs, `[5]` sweep limit; the script's own arguments start at `ARGV[6]`.
 * `KEYS[1]` is the expiry index `<tag>:x` of the slot the call runs in: `{prefix}:x` on a standalone
 * Redis; on a Cluster, a tenant's `{prefix:tenant}:x` for the steps of cluster.ts in its slot. Records
 * live under that tag; overrides and blocks are read only in the shared slot `{prefix}`.
 *
 * Numbers travel as decimal strings both ways (`fmt` below) so that no value is rounded:
 * Redis turns a Lua number reply into a truncated integer and cjson keeps 14 digits.
 */

import { BASE } from './lua/base.js'
import { RECORDS } from './lua/records.js'
import { WINDOWS } from './lua/windows.js'

const PRELUDE = BASE + WINDOWS + RECORDS

const RESERVE_BODY = /* lua */ `
-- ARGV[6] id, [7] ttlMs, [8] meta JSON, [9] number of block markers, markers…, number of counters, counters…
-- then, on a Redis Cluster only (see cluster.ts): flags ('d' evaluate without holding, 'p' report the state
-- before the hold too), the position of each counter in the whole reservation (comma list), number of
-- extra counter keys whose overrides to report, keys…, number of other slot groups, their tags…, number of
-- extra calendar bounds to check for skew (the other groups' fixed windows), bounds…
sweep()
local id, ttl, meta = ARGV[6], tonumber(ARGV[7]), ARGV[8]
local p = 9
local nblocks = tonumber(ARGV[p])
if nblocks > 0 then
  local names = {}
  for i = 1, nblocks do names[i] = PT .. ':b:' .. ARGV[p + i] end
  local codes = mget(names)
  for i = 1, nblocks do
    if codes[i] then
      flush()
      return { 'blocked', fmt(now), i - 1, codes[i] }
    end
  end
end
p = p + nblocks + 1
local specs = {}
for i = 1, tonumber(ARGV[p]) do specs[i] = readSpec(p + 1 + (i - 1) * FIELDS) end
local q = p + 1 + #specs * FIELDS
local cluster = ARGV[q] ~= nil
local dry, pre, positions, extra, groups, bounds = false, false, {}, {}, {}, {}
if cluster then
  dry = string.find(ARGV[q], 'd', 1, true) ~= nil
  pre = string.find(ARGV[q], 'p', 1, true) ~= nil
  positions = numbers(ARGV[q + 1])
  for i = 1, tonumber(ARGV[q + 2]) do extra[i] = ARGV[q + 2 + i] end
  q = q + 3 + #extra
  for i = 1, tonumber(ARGV[q]) do groups[i] = ARGV[q + i] end
  q = q + 1 + #groups
  for i = 1, tonumber(ARGV[q]) do bounds[i] = numbers(ARGV[q + i]) end
end

-- Skew first, before a breaker trips: the engine retries with fresh bounds under the same id.
for _, s in ipairs(specs) do
  if s.kind == 'fixed' and not locate(s.bounds, now) then
    flush()
    return { 'skew', fmt(now) }
  end
end
for _, b in ipairs(bounds) do
  if not locate(b, now) then
    flush()
    return { 'skew', fmt(now) }
  end
end

-- Breakers and overrides of every counter (and the extra keys), in one MGET: trip keys first,
-- then override keys, which only the shared slot holds (elsewhere the caps sent are in force).
local names = {}
for i, s in ipairs(specs) do names[i] = s.tag .. ':k:' .. s.key end
if SHARED then
  for i, s in ipairs(specs) do names[#specs + i] = PT .. ':o:' .. s.key end
  for i, key in ipairs(extra) do names[2 * #specs + i] = PT .. ':o:' .. key end
end
local found = mget(names)

local looks, gates, results, refused = {}, {}, {}, false
for i, s in ipairs(specs) do
  local override = SHARED and found[#specs + i]
  local cap = (override and tonumber(override)) or s.cap
  local look = inspect(s, cap)
  local r = {
    cap = cap, used = look.used, held = look.held, resetAt = look.resetAt, windowStart = look.windowStart,
    denied = look.denied, retry = look.retry, from = 0, to = 0,
    tripped = false, trippedNow = false, throttled = false,
  }
  if pre then r.before = { out(look.used), out(look.held), look.resetAt and out(look.resetAt) or false } end
  local tripKey = names[i]
  local trippedUntil = found[i] and tonumber(found[i])
  if trippedUntil and trippedUntil > now then
    r.denied = true
    r.tripped = true
    r.retry = trippedUntil - now
  elseif s.cooldown and look.denied and s.enforce then
    redis.call('SET', tripKey, fmt(now + s.cooldown), 'PX', fmt(math.ceil(s.cooldown + GRACE)))
    r.tripped = true
    r.trippedNow = true
    r.retry = s.cooldown
  elseif not look.denied and s.throttle and look.used + s.amount >= s.throttle.at * cap then
    local t = s.throttle
    local spec = { kind = 'bucket', tag = s.tag, key = s.key, amount = 1, interval = t.period / t.limit }
    local gate = inspect(spec, t.limit, 't')
    gates[i] = { spec = spec, look = gate }
    if gate.denied then
      r.denied = true
      r.throttled = true
      r.retry = gate.retry
    end
  end
  if r.denied and s.enforce then refused = true end
  looks[i] = look
  results[i] = r
end

local entries = {}
if not refused and not dry then
  for i, s in ipairs(specs) do
    local r = results[i]
    if not r.denied then -- a shadow counter that would refuse holds nothing
      local gate = gates[i]
      if gate then
        hold(gate.spec, gate.look, id)
        keep(gate.look)
      end
      local look = looks[i]
      r.resetAt = hold(s, look, id)
      keep(look)
      if s.kind == 'bucket' then
        r.used = r.used + s.amount
        r.held = 0
      else
        r.used = get(look.cell, 'u') or 0
        r.held = get(look.cell, 'h') or 0
      end
      local alerted = s.alerts and (get(look.cell, 'a') or 0)
      if s.alerts then r.from, r.to = crossed(s, look.cell, r.cap) end
      local e = {
        key = s.key, metric = s.metric, tag = s.tag, kind = s.kind, start = look.windowStart,
        slot = s.slot, interval = s.interval, cap = s.cap, charged = s.amount, open = s.amount, expiry = s.expiry,
      }
      if cluster then
        -- What a cancel must undo besides the hold: the position, alerts marked fired, a throttle unit.
        e.n = positions[i]
        if s.alerts then e.a0, e.a1 = alerted, r.to end
        if gate then e.th = gate.spec.interval end
      end
      entries[#entries + 1] = e
    end
  end
  local key = recordKey(id)
  local expiresAt = now + ttl
  local life = math.ceil(ttl + IDEM)
  redis.call('HSET', key, 's', 'held', 'e', fmt(expiresAt), 'm', meta, 'x', cmsgpack.pack(entries))
  if #groups > 0 then redis.call('HSET', key, 'g', cmsgpack.pack(groups))
  elseif cluster then redis.call('HDEL', key, 'g') end
  redis.call('PEXPIRE', key, fmt(life))
  redis.call('ZADD', INDEX, fmt(expiresAt), id)
  if redis.call('PTTL', INDEX) < life then redis.call('PEXPIRE', INDEX, fmt(life)) end
end
flush()

local reply = { refused and 'denied' or 'ok', out(now) }
for i, r in ipairs(results) do
  reply[i + 2] = {
    out(r.cap), out(r.used), out(r.held), r.resetAt and out(r.resetAt) or false, out(r.windowStart),
    r.denied and 1 or 0, r.retry and out(r.retry) or false, r.from, r.to,
    r.tripped and 1 or 0, r.trippedNow and 1 or 0, r.throttled and 1 or 0,
  }
  if pre then
    for j = 1, 3 do reply[i + 2][12 + j] = r.before[j] end
  end
end
if cluster then
  local values = {}
  for i = 1, #extra do values[i] = found[2 * #specs + i] or false end
  reply[#results + 3] = values
end
return reply
`

const COMMIT_BODY = /* lua */ `
-- ARGV[6] id, [7] 'settle', 'release' or 'cancel', then metric, amount pairs (settle only).
-- 'cancel' (Redis Cluster: compensation of a reserve refused in another slot) releases every hold
-- and forgets the reservation, as if it had never been made. Answers carry the record's other slot
-- groups (g) last, so that a commit on a Cluster finds every part of a reservation.
sweep()
local id = ARGV[6]
local cancel = ARGV[7] == 'cancel'
local release = cancel or ARGV[7] == 'release'
local amounts = {}
for i = 8, #ARGV, 2 do amounts[ARGV[i]] = tonumber(ARGV[i + 1]) end
local r = current(loadRecord(id))
if not r then
  flush()
  return { 'unknown' }
end
if r.state == 'settled' or r.state == 'released' then
  flush()
  return { 'duplicate', r.state, r.groups }
end
local late = r.state == 'expired'
if not late then redis.call('ZREM', INDEX, id) end
local keys = {}
for i, e in ipairs(r.entries) do keys[i] = e.key end
local found = overrides(keys)
local rows = {}
for i, e in ipairs(r.entries) do
  local target = 0
  if not release then target = amounts[e.metric] or e.charged end
  local c = entryCell(e)
  if c then charge(e, c, id, target) end
  local cap = found[i] or e.cap
  local over = 0
  if c and e.kind ~= 'bucket' and e.kind ~= 'lease' then over = (get(c, 'u') or 0) - cap end
  rows[i] = { e.key, e.metric, out(e.charged), out(target), out(math.max(0, over)) }
  if e.n then rows[i][6] = e.n end
  e.charged = target
  e.open = 0
end
r.state = release and 'released' or 'settled'
if cancel then
  for _, e in ipairs(r.entries) do
    -- Alerts this hold marked fired are re-armed unless another hold has moved them since.
    local c = e.a1 and entryCell(e)
    if c and (get(c, 'a') or 0) == e.a1 then set(c, 'a', e.a0) end
    if e.th then
      local t = bucketCell(e.tag, e.key, 't')
      if t.f.t then set(t, 't', t.f.t - e.th) end
    end
  end
  redis.call('DEL', r.key)
  redis.call('ZREM', INDEX, id)
else
  saveRecord(r)
end
flush()
return { r.state, late and 1 or 0, rows, r.groups }
`

const READ_BODY = /* lua */ `
-- ARGV[6] number of counters, then counters (amounts are 0).
sweep()
local specs = {}
for i = 1, tonumber(ARGV[6]) do specs[i] = readSpec(7 + (i - 1) * FIELDS) end
local caps = capsOf(specs)
local rows = {}
for i, s in ipairs(specs) do
  local cap = caps[i]
  local look = inspect(s, cap)
  if look then
    rows[i] = { out(cap), out(look.used), out(look.held), look.resetAt and out(look.resetAt) or false, out(look.windowStart) }
  else
    rows[i] = { out(cap), 0, 0, false, out(now) }
  end
end
flush()
return { out(now), rows }
`

const ADJUST_BODY = /* lua */ `
-- ARGV[6] amount to add, then one counter (its amount is 0).
local s = readSpec(7)
if s.kind == 'lease' then return redis.error_reply('a concurrency counter cannot be adjusted') end
sweep()
local amount = tonumber(ARGV[6])
local cap = capsOf({ s })[1]
local look = inspect(s, cap)
if not look then
  flush()
  return { fmt(now), { fmt(cap), '0', '0', false, fmt(now) } }
end
local c = look.cell
local used, held
if s.kind == 'bucket' then
  set(c, 't', math.max(c.f.t or 0, look.windowStart) + amount * s.interval)
  used, held = 0, 0 -- a bucket cell counts no usage of its own (memory store: cell.used)
else
  if s.kind == 'sliding' then add(c, 'v' .. fmt(look.windowStart / s.slot), amount) end
  add(c, 'u', amount)
  used, held = get(c, 'u'), get(c, 'h') or 0
end
keep(look)
flush()
return { fmt(now), { fmt(cap), fmt(used), fmt(held), look.resetAt and fmt(look.resetAt) or false, fmt(look.windowStart) } }
`

const LOOKUP_BODY = /* lua */ `
-- ARGV[6] id.
sweep()
local r = current(loadRecord(ARGV[6]))
flush()
if not r then return { fmt(now), false } end
return { fmt(now), { r.state, fmt(r.expiresAt), redis.call('HGET', r.key, 'm') } }
`

/** The Lua scripts, each the shared prelude followed by its body. */
export const SCRIPTS = {
  reserve: PRELUDE + RESERVE_BODY,
  commit: PRELUDE + COMMIT_BODY,
  read: PRELUDE + READ_BODY,
  adjust: PRELUDE + ADJUST_BODY,
  lookup: PRELUDE + LOOKUP_BODY,
} as const

export type ScriptName = keyof typeof SCRIPTS

/** Arguments per counter spec (see `readSpec`). */
export const SPEC_FIELDS = 13
