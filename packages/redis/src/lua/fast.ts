/**
 * The lean reserve (`fast` script): the common case of a reserve, where every counter is a calendar
 * (or lifetime) window without alerts, breaker or throttle, each key once in the call, all in the
 * slot of the call. It answers exactly as the reserve script does for such a call (same checks in the
 * same order, same keys, fields, TTLs, record and answer), with less Lua work: no spec, look or result
 * tables, one pass to hold. The store picks it (`fastEligible` in codec.ts); `fast.test.ts` checks that
 * both scripts agree on random sequences.
 *
 * The script the store sends (`fast` in scripts.ts) makes no prelude either: a few locals
 * ({@link LEAN_FAST_PRELUDE}), then {@link FAST_CORE}. When a reservation is due for expiry it runs the
 * prelude and {@link FAST_BODY}, which sweeps first, at the same instant (as the lean commit does).
 */
import { ARGS, LISTS, NOW_AND_NUMBERS } from './base.js'
import { RECORD_KEYS } from './records.js'
import { LOCATE } from './windows.js'

/**
 * The lean reserve after the sweep: it makes no cells and reads calendar windows straight, so nothing
 * is left to write back when it returns.
 */
export const FAST_CORE = /* lua */ `
-- ARGV[6] id, [7] ttlMs, [8] meta JSON, [9] number of block markers, markers…, number of counters, then
-- FAST_FIELDS per counter: key, tag, metric, amount, cap, mode (k/r expiry then 1/0 enforce), bounds.
-- Answer: as the reserve script's (ROW values per counter, calendar windows read straight: flag 16).
local id, ttl, meta = ARGV[6], tonumber(ARGV[7]), ARGV[8]
-- The same id again (a replay, see the reserve script): held, it answers 'ok' and holds nothing more;
-- closed, remembered or past its expiry, 'again'. One EXISTS in the common case.
local rkey = recordKey(id)
local again = false
if call('EXISTS', rkey, HT .. ':d:' .. id) > 0 then
  local v = call('HMGET', rkey, 's', 'e')
  if v[1] ~= 'held' or tonumber(v[2]) <= now then return { 'again', fmt(now) } end
  again = true
end
local nblocks = tonumber(ARGV[9])
local base = 11 + nblocks
local n = tonumber(ARGV[base - 1])
local names = {}
for i = 1, nblocks do names[i] = PT .. ':b:' .. ARGV[9 + i] end
local q = base
for i = 1, n do
  local key = ARGV[q]
  names[nblocks + i] = ARGV[q + 1] .. ':k:' .. key
  if SHARED then names[nblocks + n + i] = overrideOf(key, ARGV[q + 1]) end
  q = q + 7
end
local found = mget(names)
for i = 1, nblocks do
  if found[i] and not again then
    return { 'blocked', fmt(now), i - 1, found[i] }
  end
end

-- Skew: the window of each counter at now, or none.
local starts, stops = {}, {}
q = base + 6
for i = 1, n do
  local bounds = numbers(ARGV[q])
  local at = locate(bounds, now)
  if not at then
    return { 'skew', fmt(now) }
  end
  starts[i], stops[i] = bounds[at], bounds[at + 1]
  q = q + 7
end

-- Look at every counter (peekFixed's reads and answers, kept in flat lists).
local reply = { 'ok', out(now) }
local wkeys, used, held, fresh, refused = {}, {}, {}, {}, false
-- ':f:<start>:' per window start: the counters of a request mostly share one (formatting is dear in Lua)
local mids = {}
q = base
local r = 2
for i = 1, n do
  local override = SHARED and found[nblocks + n + i]
  local cap = (override and tonumber(override)) or tonumber(ARGV[q + 4])
  local amount = tonumber(ARGV[q + 3])
  local start, stop = starts[i], stops[i]
  local mid = mids[start]
  if not mid then
    mid = ':f:' .. fmt(start) .. ':'
    mids[start] = mid
  end
  local wkey = ARGV[q + 1] .. mid .. ARGV[q]
  local v = call('HMGET', wkey, 'u', 'h')
  local u, h = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local denied = u + amount > cap
  local wait = nil
  if denied and amount <= cap and stop < NEVER then wait = stop - now end
  local flags = 16
  local trippedUntil = found[nblocks + i] and tonumber(found[nblocks + i])
  if trippedUntil and trippedUntil > now then
    wait = breakerWait(trippedUntil - now, denied, wait)
    denied = true
    flags = 18
  end
  local retry = wait and out(wait) or false
  if denied then
    flags = flags + 1
    if string.byte(ARGV[q + 5], 2) == 49 then refused = true end
  end
  wkeys[i], used[i], held[i], fresh[i] = denied == false and wkey, u, h, v[1] == false
  reply[r + 1], reply[r + 2], reply[r + 3], reply[r + 4], reply[r + 5], reply[r + 6], reply[r + 7] =
    out(cap), out(u), out(h), false, false, flags, retry
  r = r + 7
  q = q + 7
end

if again then
  -- A replay: nothing refuses or waits (flags and retry of every row), nothing is held again.
  for f = 8, r, 7 do reply[f], reply[f + 1] = 16, false end
elseif not refused then
  -- Hold on every counter that does not refuse (a shadow counter that would refuse holds nothing).
  local entries = {}
  q = base
  r = 2
  for i = 1, n do
    local wkey = wkeys[i]
    if wkey then
      local amount = tonumber(ARGV[q + 3])
      local u, h = used[i] + amount, held[i] + amount
      call('HSET', wkey, 'u', fmt(u), 'h', fmt(h))
      local stop = stops[i]
      if stop < NEVER and fresh[i] then
        call('PEXPIRE', wkey, fmt(math.ceil(math.max(1, stop - now + GRACE))))
      end
      reply[r + 2], reply[r + 3] = out(u), out(h)
      -- The hold, as the reserve script stores it (see entryArray).
      entries[#entries + 1] = {
        ARGV[q], ARGV[q + 2], ARGV[q + 1], 'fixed', starts[i], false, false, tonumber(ARGV[q + 4]),
        amount, amount, string.byte(ARGV[q + 5], 1) == 114 and 'release' or 'keep',
      }
    end
    r = r + 7
    q = q + 7
  end
  local expiresAt = now + ttl
  call('HSET', rkey, 's', 'held', 'e', fmt(expiresAt), 'm', meta, 'x', cmsgpack.pack(entries))
  index(rkey, id, expiresAt, math.ceil(ttl + IDEM))
else
  reply[1] = 'denied'
end
return reply
`

/** The lean reserve in a script that made the prelude (the general fallback, and batches): sweep first. */
export const FAST_BODY = /* lua */ `
sweep()
if #order > 0 then flush() end
${FAST_CORE}`

/**
 * What the lean reserve needs of the prelude, then the check that sends it to the general path
 * (`general()`, the prelude and {@link FAST_BODY}) at this call's instant when the sweep has work.
 */
export const LEAN_FAST_PRELUDE = /* lua */ `
${ARGS}${NOW_AND_NUMBERS}${LISTS}${LOCATE}${RECORD_KEYS}
if #call('ZRANGEBYSCORE', INDEX, '-inf', fmt(now), 'LIMIT', '0', '1') > 0 then
  ARGV[1] = fmt(now)
  return general()
end
`
