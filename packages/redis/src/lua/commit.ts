import { ARGS, NOW_AND_NUMBERS } from './base.js'

/**
 * The lean commit (`leanCommit` script): the common case of a settle or release, where every entry of
 * the reservation is a calendar (or lifetime) window hold, each key once, in a record without other
 * slot groups, and nothing is due for expiry. It answers exactly as the commit script does (same reads
 * and writes in the same order, same record, TTLs and answer) without making the shared prelude: a
 * few locals instead of some forty functions. Anything else (a due reservation to sweep, a held record
 * past its expiry, another window kind, a key twice, a Cluster home record, a cancel or an abandon) runs the general
 * commit, `general()`, before anything is written, at the same instant. `fast.test.ts` checks that both
 * commits agree on random sequences.
 */
export const LEAN_COMMIT_BODY = /* lua */ `
-- ARGV as the commit script's: [6] id, [7] 'settle', 'release', 'cancel' or 'abandon' ('!' after:
-- brief), then metric, amount pairs.
${ARGS}${NOW_AND_NUMBERS}
-- The general commit at this call's instant (it reads its time from ARGV[1]). Only before any write.
local function fallback()
  ARGV[1] = fmt(now)
  return general()
end

local id = ARGV[6]
local brief = string.byte(ARGV[7], -1) == 33
local mode = brief and string.sub(ARGV[7], 1, -2) or ARGV[7]
if mode ~= 'settle' and mode ~= 'release' then return fallback() end
-- The sweep: with nothing due (the common case) it reads the index and changes nothing.
if #call('ZRANGEBYSCORE', INDEX, '-inf', fmt(now), 'LIMIT', '0', fmt(SWEEP)) > 0 then
  return fallback()
end
local key = HT .. ':r:' .. id
local v = call('HMGET', key, 's', 'e', 'x', 'g')
local state = v[1]
if not state then
  local done = call('GET', HT .. ':d:' .. id)
  if done then return { 'duplicate', done, false } end
  return { 'unknown' }
end
if state == 'settled' or state == 'released' then
  return { 'duplicate', state, v[4] and cmsgpack.unpack(v[4]) or false }
end
-- A held record past its expiry is due in the index too (see the sweep above): checked all the same.
if v[4] or not v[3] or (state == 'held' and tonumber(v[2]) <= now) then return fallback() end
local entries = cmsgpack.unpack(v[3])
if #entries > 500 then return fallback() end
local seen = {}
for _, e in ipairs(entries) do
  -- Stored arrays only (an earlier version's maps have no e[4]), calendar windows, each key once.
  if e[4] ~= 'fixed' or seen[e[1]] then return fallback() end
  seen[e[1]] = true
end

local late = state == 'expired'
if not late then call('ZREM', INDEX, id) end
local release = mode == 'release'
local amounts = {}
for i = 8, #ARGV, 2 do amounts[ARGV[i]] = tonumber(ARGV[i + 1]) end
-- Overrides live in the shared slot only (elsewhere the entry's cap is the one in force).
local found = {}
if SHARED and #entries > 0 then
  local names = {}
  for i, e in ipairs(entries) do names[i] = overrideOf(e[1], e[3]) end
  found = call('MGET', unpack(names))
end
-- As the commit script's chargeFixed, straight from the stored arrays; the same flat rows.
local rows = {}
-- ':f:<start>:' per window start: the entries mostly share one (formatting is dear in Lua)
local mids = {}
for i, e in ipairs(entries) do
  local target = 0
  if not release then target = amounts[e[2]] or e[9] end
  local mid = mids[e[5]]
  if not mid then
    mid = ':f:' .. fmt(e[5]) .. ':'
    mids[e[5]] = mid
  end
  local wkey = e[3] .. mid .. e[1]
  local w = call('HMGET', wkey, 'u', 'h')
  local over = 0
  if w[1] or w[2] or call('EXISTS', wkey) == 1 then
    local used = (tonumber(w[1]) or 0) + target - e[9]
    call('HSET', wkey, 'u', fmt(used), 'h', fmt((tonumber(w[2]) or 0) - e[10]))
    over = used - ((found[i] and tonumber(found[i])) or e[8])
  end
  if not brief or over > 0 then
    local n = #rows
    rows[n + 1], rows[n + 2], rows[n + 3] = e[1], e[2], out(e[9])
    rows[n + 4], rows[n + 5], rows[n + 6] = out(target), out(math.max(0, over)), e[12] or false
  end
end
state = release and 'released' or 'settled'
-- As saveRecord: only the state is left, as <tag>:d:<id> (this record lists no other slot groups).
call('DEL', key)
call('SET', HT .. ':d:' .. id, state, 'PX', fmt(tonumber(ARGV[4])))
return { state, late and 1 or 0, rows, false }
`
