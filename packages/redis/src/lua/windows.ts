/**
 * Lua shared by every script (part 2 of the prelude): counter specs as arguments, overrides,
 * and the window algorithms (a line-for-line port of the memory store's `counters.ts`).
 */
/** The calendar window holding an instant, for the prelude and the lean reserve. */
export const LOCATE = /* lua */ `
-- Index of the interval [bounds[i], bounds[i + 1]) holding now, or nil.
local function locate(bounds, t)
  for i = 1, #bounds - 1 do
    if bounds[i] <= t and t < bounds[i + 1] then return i end
  end
  return nil
end
`

export const WINDOWS = /* lua */ `
------------------------------------------------------------------------------------------
-- Counter specs (8 arguments each, see codec.ts) and the window algorithms (memory store: counters.ts).
------------------------------------------------------------------------------------------
local FIELDS = 8
-- The first letter of a counter's mode (as a byte): its window kind.
local KINDS = { [102] = 'fixed', [115] = 'sliding', [103] = 'bucket', [108] = 'lease' }

-- key, tag, metric, amount, cap, mode (kind letter, k/r expiry, 1/0 enforce), window, extras
-- (alerts|cooldown|throttle, or empty).
local function readSpec(p)
  local k, x, e = string.byte(ARGV[p + 5], 1, 3)
  local kind = KINDS[k]
  local key, tag, metric, amount, cap = ARGV[p], ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 3]), tonumber(ARGV[p + 4])
  local enforce, expiry = e == 49, x == 114 and 'release' or 'keep'
  local w = ARGV[p + 6]
  -- One constructor per kind, with only the fields the kind has: a table made whole is sized once
  -- (a field added after the constructor makes Lua grow it, and one sized for every field costs more).
  local s
  if kind == 'fixed' then
    s = {
      key = key, tag = tag, metric = metric, amount = amount, cap = cap, enforce = enforce, expiry = expiry,
      kind = kind, bounds = numbers(w),
    }
  elseif kind == 'sliding' then
    local l = numbers(w)
    s = {
      key = key, tag = tag, metric = metric, amount = amount, cap = cap, enforce = enforce, expiry = expiry,
      kind = kind, size = l[1], slot = l[2],
    }
  elseif kind == 'bucket' then
    s = {
      key = key, tag = tag, metric = metric, amount = amount, cap = cap, enforce = enforce, expiry = expiry,
      kind = kind, interval = tonumber(w),
    }
  else
    s = {
      key = key, tag = tag, metric = metric, amount = amount, cap = cap, enforce = enforce, expiry = expiry,
      kind = kind, ttl = tonumber(w),
    }
  end
  local extras = ARGV[p + 7]
  if extras ~= '' then
    local alerts, cooldown, throttle = string.match(extras, '^([^|]*)|([^|]*)|(.*)$')
    if alerts ~= '' then s.alerts = numbers(alerts) end
    if cooldown ~= '' then s.cooldown = tonumber(cooldown) end
    if throttle ~= '' then
      local t = numbers(throttle)
      s.throttle = { at = t[1], limit = t[2], period = t[3] }
    end
  end
  return s
end

-- Runtime cap overrides of a list of counters (keys and their tags), in one MGET: position → number
-- or nil. Outside the shared slot there are none to read: the caller has sent the caps in force.
local function overrides(keys, tags)
  if not SHARED then return {} end
  local names = {}
  for i, key in ipairs(keys) do names[i] = overrideOf(key, tags[i]) end
  local values = mget(names)
  local found = {}
  for i = 1, #names do found[i] = values[i] and tonumber(values[i]) end
  return found
end

${LOCATE}
-- A calendar window without alerts or throttle, read and written directly instead of through a
-- cell (the common case of a reserve, kept cheap): the same hash and fields as fixedCell. The caller
-- makes sure no cell of the same window is pending (flush) and that the key is once in the call.
local function peekFixed(s, cap)
  local bounds = s.bounds
  local i = locate(bounds, now)
  if not i then return nil end
  local start, stop = bounds[i], bounds[i + 1]
  local key = s.tag .. ':f:' .. fmt(start) .. ':' .. s.key
  -- u and h are always written together: a window without them has not been held yet (at worst it
  -- holds only alert marks, and its TTL is then set again to the same deadline).
  local v = call('HMGET', key, 'u', 'h')
  local used, held = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local amount = s.amount
  local denied = used + amount > cap
  local look = {
    direct = key, exists = v[1] ~= false, fixed = true, windowStart = start, used = used, held = held,
    denied = denied, forgetAt = INF, resetAt = nil, retry = nil,
  }
  if stop < NEVER then
    look.forgetAt = stop
    look.resetAt = stop
    if denied and amount <= cap then look.retry = stop - now end
  end
  return look
end

-- Hold s.amount on a window looked at by peekFixed (hold, keep and flush in one): the new used and held.
local function holdFixed(s, look)
  local used, held = look.used + s.amount, look.held + s.amount
  call('HSET', look.direct, 'u', fmt(used), 'h', fmt(held))
  if look.forgetAt ~= INF and not look.exists then
    call('PEXPIRE', look.direct, fmt(math.ceil(math.max(1, look.forgetAt - now + GRACE))))
  end
  return used, held
end

`

/** The part of WINDOWS made only when a call needs it (see `need` in scripts.ts). */
export const WINDOWS_COLD = /* lua */ `
-- The effective cap of each spec: its override, else its own cap.
function capsOf(specs)
  local keys, tags = {}, {}
  for i, s in ipairs(specs) do
    keys[i] = s.key
    tags[i] = s.tag
  end
  local found = overrides(keys, tags)
  local caps = {}
  for i, s in ipairs(specs) do caps[i] = found[i] or s.cap end
  return caps
end

-- The cell of a counter window. Letters: f fixed, s sliding, g bucket, t throttle bucket, m lease.
function fixedCell(tag, key, start) return cell(tag .. ':f:' .. fmt(start) .. ':' .. key, true) end

function slidingCell(tag, key) return cell(tag .. ':s:' .. key, true) end

function bucketCell(tag, key, letter) return cell(tag .. ':' .. (letter or 'g') .. ':' .. key, true) end

function leaseCell(tag, key)
  local c = cell(tag .. ':m:' .. key, false)
  c.zset = tag .. ':l:' .. key
  return c
end

-- Slot indices of a sliding cell (fields v<index>), ascending.
function slotsOf(c)
  local list = {}
  for name in pairs(c.f) do
    if string.sub(name, 1, 1) == 'v' then list[#list + 1] = tonumber(string.sub(name, 2)) end
  end
  table.sort(list)
  return list
end

-- Look at the counter of s at now with effective cap (memory store: inspect). nil: skew.
function inspect(s, cap, letter)
  local amount = s.amount
  if s.kind == 'fixed' then
    local i = locate(s.bounds, now)
    if not i then return nil end
    local start, stop = s.bounds[i], s.bounds[i + 1]
    local c = fixedCell(s.tag, s.key, start)
    local used = c.f.u or 0
    local denied = used + amount > cap
    local lifetime = stop >= NEVER
    local look = {
      cell = c, fixed = true, windowStart = start, used = used, held = c.f.h or 0, denied = denied,
      forgetAt = nil, resetAt = nil, retry = nil,
    }
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
    local oldest = floor((now - size) / slot)
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
    local current = floor(now / slot)
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
    -- bucketSlackMs (memory store's counters.ts): rounding in tat's sums never refuses at the cap
    local slack = math.min(0.1, interval * 0.001)
    local room = cap * interval
    local denied = nxt - now > room + slack
    local look = {
      cell = c, windowStart = now, forgetAt = nxt, used = math.max(0, math.ceil((tat - now - slack) / interval)),
      held = 0, resetAt = tat, denied = denied, retry = nil,
    }
    if denied and amount <= cap then look.retry = nxt - now - room end
    return look
  else
    local c = leaseCell(s.tag, s.key)
    local gone = call('ZRANGEBYSCORE', c.zset, '-inf', fmt(now))
    for _, id in ipairs(gone) do
      local a = get(c, 'i' .. id) or 0
      add(c, 'u', -a)
      add(c, 'h', -a)
      set(c, 'i' .. id, nil)
    end
    if #gone > 0 then batch('ZREM', c.zset, gone) end
    local first = call('ZRANGE', c.zset, '0', '0', 'WITHSCORES')
    local last = call('ZRANGE', c.zset, '-1', '-1', 'WITHSCORES')
    local earliest = INF
    local latest = now
    if first[2] then earliest = tonumber(first[2]) end
    if last[2] then latest = math.max(now, tonumber(last[2])) end
    local used = get(c, 'u') or 0
    local denied = used + amount > cap
    local look = {
      cell = c, windowStart = now, forgetAt = latest + s.ttl, used = used, held = get(c, 'h') or 0,
      denied = denied, resetAt = nil, retry = nil,
    }
    if earliest < INF then look.resetAt = earliest end
    if denied and amount <= cap then look.retry = math.min(1000, earliest - now) end
    return look
  end
end

-- Place a hold of s.amount for reservation id (memory store: hold). Returns the new reset time.
function hold(s, look, id)
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
    call('ZADD', c.zset, fmt(now + s.ttl), id)
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
function crossed(s, c, cap)
  local alerts = s.alerts
  local used = get(c, 'u') or 0
  local before = get(c, 'a') or 0
  local alerted = before
  if s.kind == 'sliding' then
    -- re-armed by the usage before this hold (crossedAlerts in the memory store)
    local was = used - s.amount
    while alerted > 0 and was < alerts[alerted] * cap do alerted = alerted - 1 end
  end
  local from = alerted
  while alerted < #alerts and used >= alerts[alerted + 1] * cap do alerted = alerted + 1 end
  if alerted ~= before then set(c, 'a', alerted) end
  return from, alerted
end
`
