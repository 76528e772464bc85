/**
 * Lua shared by every script (part 1 of the prelude): the common arguments, time, number
 * formatting, chunked commands, and cells (one Redis hash per counter window, loaded once
 * per script call and written back by `flush`).
 */
/**
 * The call's time (`ARGV[1]`, or Redis `TIME`) and number formatting, for every script: the prelude
 * and the lean commit, which makes no prelude. Needs the locals `call`, `tonumber`, `floor`, `format`.
 */
export const NOW_AND_NUMBERS = /* lua */ `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = call('TIME')
  now = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
end

-- A number as text without loss: integers in full, anything else with 17 significant digits.
local function fmt(x)
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then
    return format('%d', x)
  end
  return format('%.17g', x)
end

-- A number for a reply: integers as Redis integers (exact below 2^53), anything else as text.
local function out(x)
  if x == floor(x) and x > -9007199254740992 and x < 9007199254740992 then return x end
  return format('%.17g', x)
end
`

/**
 * The common arguments as locals (ARGV[2]… and KEYS[1]) and the library functions every script uses,
 * for the prelude and the lean reserve, which makes no prelude. Time and numbers follow (NOW_AND_NUMBERS).
 */
export const ARGS = /* lua */ `
local ARGV, KEYS = ARGV, KEYS -- locals: every use of a global is a table look-up
local P = ARGV[2]
local PT = '{' .. P .. '}'
local GRACE = tonumber(ARGV[3])
local IDEM = tonumber(ARGV[4])
local SWEEP = tonumber(ARGV[5])
local INDEX = KEYS[1]
-- The tag of the slot this call runs in: KEYS[1] is '<tag>:x'. Overrides and blocks live under
-- PT; a call in another slot (a tenant's, on a Redis Cluster) cannot read them and is given caps.
local HT = string.sub(INDEX, 1, -3)
local SHARED = HT == PT
local NEVER = 9007199254740991
local INF = math.huge
-- Library functions as locals: a global look-up costs two table reads on every use.
local call, unpack, tonumber, floor, format, ipairs = redis.call, unpack, tonumber, math.floor, string.format, ipairs
-- How long a breaker's refusal lasts (breakerWait in the memory store): its cool-down and, past
-- it, as long as the counter itself would still refuse; nil when waiting never helps.
local function breakerWait(wait, denied, retry)
  if not denied then return wait end
  if not retry then return nil end
  return math.max(wait, retry)
end
-- The name of a counter's runtime cap override (overrideKey in keys.ts): per key, and per tenant
-- for a counter under a scope (its tag is not the shared one).
local function overrideOf(key, tag)
  if tag == PT then return PT .. ':o:' .. key end
  return PT .. ':so:' .. tag .. key
end
`

/** Number lists and chunked MGET, for the prelude and the lean reserve. */
export const LISTS = /* lua */ `
-- A comma list of numbers, parsed once per script call: the counters of one request mostly
-- share their calendar bounds and alert fractions. The lists returned are shared: never change one.
local lists = {}
local function numbers(text)
  local list = lists[text]
  if list then return list end
  list = {}
  for part in string.gmatch(text, '[^,]+') do list[#list + 1] = tonumber(part) end
  lists[text] = list
  return list
end

-- MGET over a long list in chunks: position → value or false.
local function mget(names)
  local values = {}
  for i = 1, #names, 500 do
    local part = call('MGET', unpack(names, i, math.min(i + 499, #names)))
    for j = 1, #part do values[i + j - 1] = part[j] end
  end
  return values
end

`

export const BASE = /* lua */ `
${ARGS}-- Made by need() on first use (the *_COLD parts): cells, the other window kinds, expiry. A call that
-- only holds or settles calendar windows and finds nothing to sweep never makes them.
local batch, cell, get, set, add, keep, capsOf, fixedCell, slidingCell, bucketCell, leaseCell, slotsOf
local inspect, hold, crossed, entryArray, packEntries, entryCell, charge, expire, need
${NOW_AND_NUMBERS}
${LISTS}
------------------------------------------------------------------------------------------
-- Cells: one Redis hash per counter window, loaded once per script, written back by flush.
------------------------------------------------------------------------------------------
local cells, order = {}, {}

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
    if #sets > 500 then batch('HSET', c.key, sets)
    elseif #sets > 0 then call('HSET', c.key, unpack(sets)) end
    if c.ttl then
      local ms = fmt(math.ceil(c.ttl))
      call('PEXPIRE', c.key, ms)
      if c.zset then call('PEXPIRE', c.zset, ms) end
    elseif #sets > 0 and c.whole and not c.exists and not c.permanent then
      call('PEXPIRE', c.key, fmt(GRACE)) -- created here without a keep: never reached, a safety net
    end
  end
  cells, order = {}, {}
end

`

/** The part of BASE made only when a call needs it (see `need` in scripts.ts). */
export const BASE_COLD = /* lua */ `
-- Runs a variadic command over a long list in chunks (Lua's unpack has a stack limit).
function batch(command, key, list)
  for i = 1, #list, 500 do
    call(command, key, unpack(list, i, math.min(i + 499, #list)))
  end
end

-- whole: load every field now (fixed, sliding, bucket); otherwise fields load one by one (lease),
-- and known lists the fields loaded. The constructors name (as nil) the fields set later, so that
-- Lua sizes each table once instead of growing it field by field.
function cell(key, whole)
  local c = cells[key]
  if c then return c end
  c = {
    key = key, f = { u = nil, h = nil, a = nil, t = nil }, dirty = { u = nil, h = nil, a = nil, t = nil },
    whole = whole, exists = false, known = nil, ttl = nil, permanent = nil, zset = nil,
  }
  if whole then
    local flat = call('HGETALL', key)
    local f = c.f
    for i = 1, #flat, 2 do f[flat[i]] = tonumber(flat[i + 1]) end
    c.exists = #flat > 0
  else
    c.known = {}
  end
  cells[key] = c
  order[#order + 1] = c
  return c
end

function get(c, name)
  if not c.whole and not c.known[name] then
    local v = call('HGET', c.key, name)
    c.known[name] = true
    if v then c.f[name] = tonumber(v) end
  end
  return c.f[name]
end

function set(c, name, value)
  c.f[name] = value
  if c.known then c.known[name] = true end
  c.dirty[name] = true
end

function add(c, name, delta)
  set(c, name, (get(c, name) or 0) + delta)
end

-- Remember how long a cell must live (memory store: keep). forgetAt = INF: never forget.
-- A calendar window that already exists keeps the deadline it got when it was made (its end
-- plus grace never moves), so its TTL is not set again.
function keep(look)
  local c = look.cell
  if look.forgetAt == INF then
    c.permanent = true
    c.ttl = nil
  elseif not (look.fixed and c.exists) then
    c.ttl = math.max(1, look.forgetAt - now + GRACE)
  end
end
`
