/**
 * Lua shared by every script (part 3 of the prelude): reservation records, their expiry
 * and the bounded sweep of the expiry index.
 */
/** A record's key and its indexing, for the prelude and the lean reserve. */
export const RECORD_KEYS = /* lua */ `
local function recordKey(id) return HT .. ':r:' .. id end

-- Gives a new record its TTL and indexes it for expiry; the index lives at least as long as the
-- record (PEXPIRE GT, or NX for an index without a TTL yet: one call in the common case).
local function index(key, id, expiresAt, life)
  local ms = fmt(life)
  call('PEXPIRE', key, ms)
  call('ZADD', INDEX, fmt(expiresAt), id)
  if call('PEXPIRE', INDEX, ms, 'GT') == 0 then call('PEXPIRE', INDEX, ms, 'NX') end
end
`

export const RECORDS = /* lua */ `
------------------------------------------------------------------------------------------
-- Reservations: a hash <tag>:r:<id> (s state, e expiresAt, m meta JSON, x entries as
-- msgpack; on a Cluster, g: the other slot groups of the reservation, msgpack), indexed by
-- expiry in the sorted set <tag>:x, where <tag> is the tag of the slot the script runs in.
-- A settled or released reservation without other slot groups leaves only <tag>:d:<id>, a
-- string holding its state, for idempotencyMs (a third of the memory of the closed hash).
------------------------------------------------------------------------------------------
${RECORD_KEYS}
local function entryOf(a)
  if a.kind then return a end -- a record written as maps by an earlier version
  return {
    key = a[1], metric = a[2], tag = a[3], kind = a[4], start = a[5], slot = a[6] or nil,
    interval = a[7] or nil, cap = a[8], charged = a[9], open = a[10], expiry = a[11], n = a[12] or nil,
    a0 = a[13] or nil, a1 = a[14] or nil, th = a[15] or nil,
  }
end

-- raw: leave the entries as stored (arrays, or maps from an earlier version); entryOf makes a map of one.
local function loadRecord(id, raw)
  local key = recordKey(id)
  local v = call('HMGET', key, 's', 'e', 'x', 'g')
  if not v[1] then
    local done = call('GET', HT .. ':d:' .. id)
    if not done then return nil end
    return { id = id, key = key, state = done, expiresAt = now, entries = {}, groups = false }
  end
  local entries, groups = {}, false
  if v[3] then
    entries = cmsgpack.unpack(v[3])
    if not raw then
      for i, a in ipairs(entries) do entries[i] = entryOf(a) end
    end
  end
  if v[4] then groups = cmsgpack.unpack(v[4]) end
  return { id = id, key = key, state = v[1], expiresAt = tonumber(v[2]), entries = entries, groups = groups }
end

-- A closed reservation only keeps its state, to answer duplicates: as <tag>:d:<id>, or in its
-- record when that lists other slot groups (a Cluster home record: a duplicate answers them, so
-- that the caller closes every group). An expired one keeps its entries too, for a late settle.
local function saveRecord(r)
  if r.state == 'expired' then
    call('HSET', r.key, 's', r.state, 'x', packEntries(r.entries))
  elseif r.groups then
    call('HSET', r.key, 's', r.state)
    call('HDEL', r.key, 'x')
  else
    call('DEL', r.key)
    call('SET', HT .. ':d:' .. r.id, r.state, 'PX', fmt(IDEM))
    return
  end
  call('PEXPIRE', r.key, fmt(IDEM))
end

-- Settle or release a calendar-window hold straight in Redis, as charge does through a cell (the
-- common case of a commit, kept cheap). Answers how far the window is now past cap, or nil when the
-- window no longer exists. The caller has flushed every pending cell and has the key once in the call.
-- The entry's fields are passed one by one: the commit reads them straight from the stored array.
local function chargeFixed(tag, start, counter, charged, open, target, cap)
  local key = tag .. ':f:' .. fmt(start) .. ':' .. counter
  local v = call('HMGET', key, 'u', 'h')
  if not v[1] and not v[2] and call('EXISTS', key) == 0 then return nil end
  local used, held = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  used = used + target - charged
  call('HSET', key, 'u', fmt(used), 'h', fmt(held - open))
  return used - cap
end

-- Expire at most SWEEP reservations whose TTL has passed, once per script call (a batch of
-- reservations and commits sweeps once: its time does not move).
local swept = false
local function sweep()
  if swept then return end
  swept = true
  local due = call('ZRANGEBYSCORE', INDEX, '-inf', fmt(now), 'LIMIT', '0', fmt(SWEEP))
  if #due == 0 then return end
  need()
  for _, id in ipairs(due) do
    local r = loadRecord(id)
    if r and r.state == 'held' then expire(r) else call('ZREM', INDEX, id) end
  end
end

-- A record still held past its expiry (the bounded sweep has not reached it yet) expires now.
local function current(r)
  if r and r.state == 'held' and r.expiresAt <= now then
    need()
    for i, e in ipairs(r.entries) do r.entries[i] = entryOf(e) end
    expire(r)
  end
  return r
end
`

/** The part of RECORDS made only when a call needs it (see `need` in scripts.ts). */
export const RECORDS_COLD = /* lua */ `
-- An entry (one counter's hold) is kept as an array, cheaper to build and to pack than a map:
-- key, metric, tag, kind, start, slot, interval, cap, charged, open, expiry, then on a Cluster n
-- (its position in the reservation), a0 and a1 (alerts before and after), th (throttle interval);
-- false where absent (msgpack keeps an array only without holes).
function entryArray(e)
  return {
    e.key, e.metric, e.tag, e.kind, e.start, e.slot or false, e.interval or false, e.cap, e.charged, e.open,
    e.expiry, e.n or false, e.a0 or false, e.a1 or false, e.th or false,
  }
end

function packEntries(entries)
  local list = {}
  for i, e in ipairs(entries) do list[i] = entryArray(e) end
  return cmsgpack.pack(list)
end

-- The cell an entry's hold went into, or nil when it no longer exists.
function entryCell(e)
  local c
  if e.kind == 'fixed' then c = fixedCell(e.tag, e.key, e.start)
  elseif e.kind == 'sliding' then c = slidingCell(e.tag, e.key)
  elseif e.kind == 'bucket' then c = bucketCell(e.tag, e.key)
  else return leaseCell(e.tag, e.key) end
  if c.exists then return c end
  return nil
end

-- Move an entry's hold from e.charged to target (memory store: charge). Leases are removed.
function charge(e, c, id, target)
  local delta = target - e.charged
  if e.kind == 'bucket' then
    -- a refund gives back only what of the hold has not refilled since, never past full (now); a
    -- charge past the estimate counts from now when the bucket refilled (memory: bucketCharge)
    local t = c.f.t or 0
    if delta >= 0 then
      set(c, 't', math.max(t, now) + delta * e.interval)
    elseif t > now then
      local left = math.max(0, e.start + e.charged * e.interval - now)
      set(c, 't', math.max(now, t - math.min(-delta * e.interval, left)))
    end
  elseif e.kind == 'lease' then
    local a = get(c, 'i' .. id)
    if a then
      set(c, 'i' .. id, nil)
      call('ZREM', c.zset, id)
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
function expire(r)
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
  call('ZREM', INDEX, r.id)
end
`
