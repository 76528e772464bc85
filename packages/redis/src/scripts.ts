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
 * `KEYS[1]` is the expiry index `{prefix}:x`.
 *
 * Numbers travel as decimal strings both ways (`fmt` below) so that no value is rounded:
 * Redis turns a Lua number reply into a truncated integer and cjson keeps 14 digits.
 */

const PRELUDE = /* lua */ `
local P = ARGV[2]
local PT = '{' .. P .. '}'
local GRACE = tonumber(ARGV[3])
local IDEM = tonumber(ARGV[4])
local SWEEP = tonumber(ARGV[5])
local INDEX = KEYS[1]
local NEVER = 9007199254740991
local INF = math.huge
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- A number as text without loss: integers in full, anything else with 17 significant digits.
local function fmt(x)
  if x == math.floor(x) and x > -9007199254740992 and x < 9007199254740992 then
    return string.format('%d', x)
  end
  return string.format('%.17g', x)
end

-- A number for a reply: integers as Redis integers (exact below 2^53), anything else as text.
local function out(x)
  if x == math.floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end
  return string.format('%.17g', x)
end

local function numbers(text)
  local list = {}
  for part in string.gmatch(text, '[^,]+') do list[#list + 1] = tonumber(part) end
  return list
end

-- Runs a variadic command over a long list in chunks (Lua's unpack has a stack limit).
local function batch(command, key, list)
  for i = 1, #list, 500 do
    redis.call(command, key, unpack(list, i, math.min(i + 499, #list)))
  end
end

-- MGET over a long list in chunks: position → value or false.
local function mget(names)
  local values = {}
  for i = 1, #names, 500 do
    local part = redis.call('MGET', unpack(names, i, math.min(i + 499, #names)))
    for j = 1, #part do values[i + j - 1] = part[j] end
  end
  return values
end

------------------------------------------------------------------------------------------
-- Cells: one Redis hash per counter window, loaded once per script, written back by flush.
------------------------------------------------------------------------------------------
local cells, order = {}, {}

-- whole: load every field now (fixed, sliding, bucket); otherwise fields load one by one (lease).
local function cell(key, whole)
  local c = cells[key]
  if c then return c end
  c = { key = key, f = {}, known = {}, dirty = {}, whole = whole, exists = false }
  if whole then
    local flat = redis.call('HGETALL', key)
    for i = 1, #flat, 2 do c.f[flat[i]] = tonumber(flat[i + 1]) end
    c.exists = #flat > 0
  end
  cells[key] = c
  order[#order + 1] = c
  return c
end

local function get(c, name)
  if not c.whole and not c.known[name] then
    local v = redis.call('HGET', c.key, name)
    c.known[name] = true
    if v then c.f[name] = tonumber(v) end
  end
  return c.f[name]
end

local function set(c, name, value)
  c.f[name] = value
  c.known[name] = true
  c.dirty[name] = true
end

local function add(c, name, delta)
  set(c, name, (get(c, name) or 0) + delta)
end

-- Remember how long a cell must live (memory store: keep). forgetAt = INF: never forget.
-- A calendar window that already exists keeps the deadline it got when it was made (its end
-- plus grace never moves), so its TTL is not set again.
local function keep(look)
  local c = look.cell
  if look.forgetAt == INF then
    c.permanent = true
    c.ttl = nil
  elseif not (look.fixed and c.exists) then
    c.ttl = math.max(1, look.forgetAt - now + GRACE)
  end
end

-- Write every changed field back, then the TTLs (a cell that existed keeps its own TTL, or none).
local function flush()
  for _, c in ipairs(order) do
    local sets, dels = {}, {}
    for name in pairs(c.dirty) do
      local v = c.f[name]
      if v == nil then
        dels[#dels + 1] = name
      else
        sets[#sets + 1] = name
        sets[#sets + 1] = v -- Redis writes a number with all its digits; only these scripts read it back
      end
    end
    if #dels > 0 then batch('HDEL', c.key, dels) end
    if #sets > 0 then batch('HSET', c.key, sets) end
    if c.ttl then
      local ms = fmt(math.ceil(c.ttl))
      redis.call('PEXPIRE', c.key, ms)
      if c.zset then redis.call('PEXPIRE', c.zset, ms) end
    elseif #sets > 0 and c.whole and not c.exists and not c.permanent then
      redis.call('PEXPIRE', c.key, fmt(GRACE)) -- created here without a keep: never reached, a safety net
    end
  end
  cells, order = {}, {}
end

------------------------------------------------------------------------------------------
-- Counter specs (13 arguments each) and the window algorithms (memory store: counters.ts).
------------------------------------------------------------------------------------------
local FIELDS = 13

local function readSpec(p)
  local s = {
    key = ARGV[p], tag = ARGV[p + 1], metric = ARGV[p + 2],
    amount = tonumber(ARGV[p + 3]), cap = tonumber(ARGV[p + 4]),
    enforce = ARGV[p + 5] == '1', expiry = ARGV[p + 6], kind = ARGV[p + 7],
  }
  local a, b = ARGV[p + 8], ARGV[p + 9]
  if s.kind == 'fixed' then s.bounds = numbers(a)
  elseif s.kind == 'sliding' then s.size = tonumber(a); s.slot = tonumber(b)
  elseif s.kind == 'bucket' then s.interval = tonumber(a)
  else s.ttl = tonumber(a) end
  if ARGV[p + 10] ~= '' then s.alerts = numbers(ARGV[p + 10]) end
  if ARGV[p + 11] ~= '' then s.cooldown = tonumber(ARGV[p + 11]) end
  if ARGV[p + 12] ~= '' then
    local t = numbers(ARGV[p + 12])
    s.throttle = { at = t[1], limit = t[2], period = t[3] }
  end
  return s
end

-- Runtime cap overrides of a list of counter keys, in one MGET: position → number or nil.
local function overrides(keys)
  local names = {}
  for i, key in ipairs(keys) do names[i] = PT .. ':o:' .. key end
  local values = mget(names)
  local found = {}
  for i = 1, #names do found[i] = values[i] and tonumber(values[i]) end
  return found
end

-- The effective cap of each spec: its override, else its own cap.
local function capsOf(specs)
  local keys = {}
  for i, s in ipairs(specs) do keys[i] = s.key end
  local found = overrides(keys)
  local caps = {}
  for i, s in ipairs(specs) do caps[i] = found[i] or s.cap end
  return caps
end

-- Index of the interval [bounds[i], bounds[i + 1]) holding now, or nil.
local function locate(bounds, t)
  for i = 1, #bounds - 1 do
    if bounds[i] <= t and t < bounds[i + 1] then return i end
  end
  return nil
end

-- The cell of a counter window. Letters: f fixed, s sliding, g bucket, t throttle bucket, m lease.
local function fixedCell(tag, key, start) return cell(tag .. ':f:' .. fmt(start) .. ':' .. key, true) end
local function slidingCell(tag, key) return cell(tag .. ':s:' .. key, true) end
local function bucketCell(tag, key, letter) return cell(tag .. ':' .. (letter or 'g') .. ':' .. key, true) end
local function leaseCell(tag, key)
  local c = cell(tag .. ':m:' .. key, false)
  c.zset = tag .. ':l:' .. key
  return c
end

-- Slot indices of a sliding cell (fields v<index>), ascending.
local function slotsOf(c)
  local list = {}
  for name in pairs(c.f) do
    if string.sub(name, 1, 1) == 'v' then list[#list + 1] = tonumber(string.sub(name, 2)) end
  end
  table.sort(list)
  return list
end

-- Look at the counter of s at now with effective cap (memory store: inspect). nil: skew.
local function inspect(s, cap, letter)
  local amount = s.amount
  if s.kind == 'fixed' then
    local i = locate(s.bounds, now)
    if not i then return nil end
    local start, stop = s.bounds[i], s.bounds[i + 1]
    local c = fixedCell(s.tag, s.key, start)
    local used = c.f.u or 0
    local denied = used + amount > cap
    local lifetime = stop >= NEVER
    local look = { cell = c, fixed = true, windowStart = start, used = used, held = c.f.h or 0, denied = denied }
    if lifetime then
      look.forgetAt = INF
      c.permanent = true
    else
      look.forgetAt = stop
      look.resetAt = stop
      if denied and amount <= cap then look.retry = stop - now end
    end
    return look
  elseif s.kind == 'sliding' then
    local size, slot = s.size, s.slot
    local c = slidingCell(s.tag, s.key)
    local oldest = math.floor((now - size) / slot)
    local kept = {}
    for _, index in ipairs(slotsOf(c)) do
      if index < oldest then
        local name = fmt(index)
        add(c, 'u', -c.f['v' .. name])
        add(c, 'h', -(c.f['o' .. name] or 0))
        set(c, 'v' .. name, nil)
        set(c, 'o' .. name, nil)
      else
        kept[#kept + 1] = index
      end
    end
    local used = c.f.u or 0
    local denied = used + amount > cap
    local retry = nil
    if denied and amount <= cap then
      local left = used
      for _, index in ipairs(kept) do
        left = left - c.f['v' .. fmt(index)]
        if left + amount <= cap then
          retry = (index + 1) * slot + size - now
          break
        end
      end
    end
    local current = math.floor(now / slot)
    local resetAt = now
    if kept[1] then resetAt = (kept[1] + 1) * slot + size end
    return {
      cell = c, windowStart = current * slot, forgetAt = (current + 1) * slot + size,
      used = used, held = c.f.h or 0, resetAt = resetAt, denied = denied, retry = retry,
    }
  elseif s.kind == 'bucket' then
    local interval = s.interval
    local c = bucketCell(s.tag, s.key, letter)
    local tat = math.max(c.f.t or now, now)
    local nxt = tat + amount * interval
    local denied = nxt - now > cap * interval
    local look = {
      cell = c, windowStart = now, forgetAt = nxt, used = math.ceil((tat - now) / interval),
      held = 0, resetAt = tat, denied = denied,
    }
    if denied and amount <= cap then look.retry = nxt - now - cap * interval end
    return look
  else
    local c = leaseCell(s.tag, s.key)
    local gone = redis.call('ZRANGEBYSCORE', c.zset, '-inf', fmt(now))
    for _, id in ipairs(gone) do
      local a = get(c, 'i' .. id) or 0
      add(c, 'u', -a)
      add(c, 'h', -a)
      set(c, 'i' .. id, nil)
    end
    if #gone > 0 then batch('ZREM', c.zset, gone) end
    local first = redis.call('ZRANGE', c.zset, '0', '0', 'WITHSCORES')
    local last = redis.call('ZRANGE', c.zset, '-1', '-1', 'WITHSCORES')
    local earliest = INF
    local latest = now
    if first[2] then earliest = tonumber(first[2]) end
    if last[2] then latest = math.max(now, tonumber(last[2])) end
    local used = get(c, 'u') or 0
    local denied = used + amount > cap
    local look = {
      cell = c, windowStart = now, forgetAt = latest + s.ttl, used = used, held = get(c, 'h') or 0,
      denied = denied,
    }
    if earliest < INF then look.resetAt = earliest end
    if denied and amount <= cap then look.retry = math.min(1000, earliest - now) end
    return look
  end
end

-- Place a hold of s.amount for reservation id (memory store: hold). Returns the new reset time.
local function hold(s, look, id)
  local c, amount = look.cell, s.amount
  if s.kind == 'bucket' then
    local tat = math.max(c.f.t or now, now) + amount * s.interval
    set(c, 't', tat)
    return tat
  elseif s.kind == 'lease' then
    local previous = get(c, 'i' .. id)
    if previous then
      -- The same id again replaces its lease (the memory store would count both).
      add(c, 'u', -previous)
      add(c, 'h', -previous)
    end
    redis.call('ZADD', c.zset, fmt(now + s.ttl), id)
    set(c, 'i' .. id, amount)
    add(c, 'u', amount)
    add(c, 'h', amount)
    return look.resetAt or (now + s.ttl)
  elseif s.kind == 'sliding' then
    local name = fmt(look.windowStart / s.slot)
    add(c, 'v' .. name, amount)
    add(c, 'o' .. name, amount)
    add(c, 'u', amount)
    add(c, 'h', amount)
    if look.used == 0 then return look.windowStart + s.slot + s.size end
    return look.resetAt
  else
    add(c, 'u', amount)
    add(c, 'h', amount)
    return look.resetAt
  end
end

-- Alert fractions newly crossed, as a range [from, to) of s.alerts (0-based).
local function crossed(s, c, cap)
  local alerts = s.alerts
  local used = get(c, 'u') or 0
  local before = get(c, 'a') or 0
  local alerted = before
  if s.kind == 'sliding' then
    while alerted > 0 and used < alerts[alerted] * cap do alerted = alerted - 1 end
  end
  local from = alerted
  while alerted < #alerts and used >= alerts[alerted + 1] * cap do alerted = alerted + 1 end
  if alerted ~= before then set(c, 'a', alerted) end
  return from, alerted
end

------------------------------------------------------------------------------------------
-- Reservations: a hash {prefix}:r:<id> (s state, e expiresAt, m meta JSON, x entries as
-- msgpack), indexed by expiry in the sorted set {prefix}:x.
------------------------------------------------------------------------------------------
local function recordKey(id) return PT .. ':r:' .. id end

local function loadRecord(id)
  local key = recordKey(id)
  local v = redis.call('HMGET', key, 's', 'e', 'x')
  if not v[1] then return nil end
  local entries = {}
  if v[3] then entries = cmsgpack.unpack(v[3]) end
  return { id = id, key = key, state = v[1], expiresAt = tonumber(v[2]), entries = entries }
end

-- A closed reservation only keeps its state (to answer duplicates) and meta (for look-ups);
-- an expired one keeps its entries too, for a late settle.
local function saveRecord(r)
  if r.state == 'expired' then
    redis.call('HSET', r.key, 's', r.state, 'x', cmsgpack.pack(r.entries))
  else
    redis.call('HSET', r.key, 's', r.state)
    redis.call('HDEL', r.key, 'x')
  end
  redis.call('PEXPIRE', r.key, fmt(IDEM))
end

-- The cell an entry's hold went into, or nil when it no longer exists.
local function entryCell(e)
  local c
  if e.kind == 'fixed' then c = fixedCell(e.tag, e.key, e.start)
  elseif e.kind == 'sliding' then c = slidingCell(e.tag, e.key)
  elseif e.kind == 'bucket' then c = bucketCell(e.tag, e.key)
  else return leaseCell(e.tag, e.key) end
  if c.exists then return c end
  return nil
end

-- Move an entry's hold from e.charged to target (memory store: charge). Leases are removed.
local function charge(e, c, id, target)
  local delta = target - e.charged
  if e.kind == 'bucket' then
    set(c, 't', (c.f.t or 0) + delta * e.interval)
  elseif e.kind == 'lease' then
    local a = get(c, 'i' .. id)
    if a then
      set(c, 'i' .. id, nil)
      redis.call('ZREM', c.zset, id)
      add(c, 'u', -a)
      add(c, 'h', -a)
    end
  elseif e.kind == 'sliding' then
    local name = fmt(e.start / e.slot)
    local v = c.f['v' .. name]
    if v == nil then return end -- the slot, and the hold with it, has left the window
    set(c, 'v' .. name, v + delta)
    add(c, 'u', delta)
    add(c, 'h', -e.open)
    add(c, 'o' .. name, -e.open)
  else
    add(c, 'u', delta)
    add(c, 'h', -e.open)
  end
end

-- An unsettled reservation past its TTL: leases freed, holds kept or returned by their expiry.
local function expire(r)
  for _, e in ipairs(r.entries) do
    local release = e.expiry == 'release' or e.kind == 'lease'
    local c = entryCell(e)
    if c then
      local target = e.charged
      if release then target = 0 end
      charge(e, c, r.id, target)
    end
    if release then e.charged = 0 end
    e.open = 0
  end
  r.state = 'expired'
  saveRecord(r)
  redis.call('ZREM', INDEX, r.id)
end

-- Expire at most SWEEP reservations whose TTL has passed.
local function sweep()
  local due = redis.call('ZRANGEBYSCORE', INDEX, '-inf', fmt(now), 'LIMIT', '0', fmt(SWEEP))
  for _, id in ipairs(due) do
    local r = loadRecord(id)
    if r and r.state == 'held' then expire(r) else redis.call('ZREM', INDEX, id) end
  end
end

-- A record still held past its expiry (the bounded sweep has not reached it yet) expires now.
local function current(r)
  if r and r.state == 'held' and r.expiresAt <= now then expire(r) end
  return r
end
`

const RESERVE_BODY = /* lua */ `
-- ARGV[6] id, [7] ttlMs, [8] meta JSON, [9] number of block markers, markers…, number of counters, counters…
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

-- Skew first, before a breaker trips: the engine retries with fresh bounds under the same id.
for _, s in ipairs(specs) do
  if s.kind == 'fixed' and not locate(s.bounds, now) then
    flush()
    return { 'skew', fmt(now) }
  end
end

-- Overrides and breakers of every counter, in one MGET: override keys first, then trip keys.
local names = {}
for i, s in ipairs(specs) do
  names[i] = PT .. ':o:' .. s.key
  names[#specs + i] = s.tag .. ':k:' .. s.key
end
local found = mget(names)

local looks, gates, results, refused = {}, {}, {}, false
for i, s in ipairs(specs) do
  local cap = (found[i] and tonumber(found[i])) or s.cap
  local look = inspect(s, cap)
  local r = {
    cap = cap, used = look.used, held = look.held, resetAt = look.resetAt, windowStart = look.windowStart,
    denied = look.denied, retry = look.retry, from = 0, to = 0,
    tripped = false, trippedNow = false, throttled = false,
  }
  local tripKey = names[#specs + i]
  local trippedUntil = found[#specs + i] and tonumber(found[#specs + i])
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
if not refused then
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
      if s.alerts then r.from, r.to = crossed(s, look.cell, r.cap) end
      entries[#entries + 1] = {
        key = s.key, metric = s.metric, tag = s.tag, kind = s.kind, start = look.windowStart,
        slot = s.slot, interval = s.interval, cap = s.cap, charged = s.amount, open = s.amount, expiry = s.expiry,
      }
    end
  end
  local key = recordKey(id)
  local expiresAt = now + ttl
  local life = math.ceil(ttl + IDEM)
  redis.call('HSET', key, 's', 'held', 'e', fmt(expiresAt), 'm', meta, 'x', cmsgpack.pack(entries))
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
end
return reply
`

const COMMIT_BODY = /* lua */ `
-- ARGV[6] id, [7] 'settle' or 'release', then metric, amount pairs (settle only).
sweep()
local id = ARGV[6]
local release = ARGV[7] == 'release'
local amounts = {}
for i = 8, #ARGV, 2 do amounts[ARGV[i]] = tonumber(ARGV[i + 1]) end
local r = current(loadRecord(id))
if not r then
  flush()
  return { 'unknown' }
end
if r.state == 'settled' or r.state == 'released' then
  flush()
  return { 'duplicate', r.state }
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
  e.charged = target
  e.open = 0
end
r.state = release and 'released' or 'settled'
saveRecord(r)
flush()
return { r.state, late and 1 or 0, rows }
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
