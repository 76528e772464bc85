/**
 * The Lua scripts of the Redis store, as text (the build copies no files).
 *
 * They port the memory store's `counters.ts` and `store.ts` line for line: a counter window
 * is loaded into a Lua table (a "cell"), changed in memory exactly as the memory store changes
 * its cell object, and written back at the end of the script (`flush`). The hot path skips the
 * cells: a reserve or commit reads and writes a calendar window without alerts or throttle straight
 * in Redis (`peekFixed`/`holdFixed`, `chargeFixed`), after flushing whatever the sweep changed, with
 * the same fields and TTLs as the cell path. A reserve whose counters are all such windows, each key
 * once, runs the lean `fast` script (lua/fast.ts), which answers alike with less Lua work; a commit of
 * such holds runs the lean commit (lua/commit.ts). Both make no prelude unless they must (something
 * is due for expiry, or the commit is not a plain one). Every script:
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

import { BASE, BASE_COLD } from './lua/base.js'
import { LEAN_COMMIT_BODY } from './lua/commit.js'
import { FAST_BODY, FAST_CORE, LEAN_FAST_PRELUDE } from './lua/fast.js'
import { RECORDS, RECORDS_COLD } from './lua/records.js'
import { WINDOWS, WINDOWS_COLD } from './lua/windows.js'

/**
 * Making a Lua function costs Redis time on every call of a script; the functions the common case
 * (calendar windows held and settled straight in Redis, nothing to sweep) never runs are made by
 * `need()`, once per call that needs them.
 */
const COLD = /* lua */ `
local warm = false
function need()
  if warm then return end
  warm = true
${BASE_COLD}
${WINDOWS_COLD}
${RECORDS_COLD}
end
`

const PRELUDE = BASE + WINDOWS + RECORDS + COLD

const RESERVE_BODY = /* lua */ `
-- ARGV[6] id, [7] ttlMs, [8] meta JSON, [9] number of block markers, markers…, number of counters, counters…
-- then, on a Redis Cluster only (see cluster.ts): flags ('d' evaluate without holding, 'p' report the state
-- before the hold too), the position of each counter in the whole reservation (comma list), number of
-- extra override names to report (other groups' counters, see overrideKey), names…, number of other slot groups, their tags…, number of
-- extra calendar bounds to check for skew (the other groups' fixed windows), bounds…
-- Answer: status, now, then ROW values per counter (see codec.ts), then (Cluster) the extra overrides;
-- { 'again', now } for an id closed before (see below).
sweep()
-- What the sweep changed is written now: calendar windows are then read straight from Redis (peekFixed).
if #order > 0 then flush() end
local id, ttl, meta = ARGV[6], tonumber(ARGV[7]), ARGV[8]
local p = 9
local nblocks = tonumber(ARGV[p])
local markers = {}
for i = 1, nblocks do markers[i] = ARGV[p + i] end
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

-- The same id again: a reserve replayed after its answer was lost (ioredis resends an unanswered
-- command after a reconnect, a caller may retry), or one the store abandoned meanwhile. It changes
-- nothing. An open reservation answers 'ok' as its first reserve did (each counter as it is now, with
-- that hold, nothing refusing); a closed one, a remembered id (<tag>:d:<id>, which an abandon leaves
-- too) or a held one past its expiry answers 'again'. A dry evaluation (Cluster) holds nothing anyway.
local again = false
if not dry then
  local key = recordKey(id)
  if call('EXISTS', key, HT .. ':d:' .. id) > 0 then
    local v = call('HMGET', key, 's', 'e')
    if v[1] ~= 'held' or tonumber(v[2]) <= now then
      flush()
      return { 'again', fmt(now) }
    end
    again = true
  end
end

-- Block markers, breakers and overrides of every counter (and the extra keys), in one MGET: block
-- keys first, then trip keys, then override keys, which only the shared slot holds (elsewhere the caps
-- sent are in force).
local nspecs = #specs
local names = {}
for i = 1, nblocks do names[i] = PT .. ':b:' .. markers[i] end
local TRIPS, OVERRIDES = nblocks, nblocks + nspecs
for i, s in ipairs(specs) do names[TRIPS + i] = s.tag .. ':k:' .. s.key end
if SHARED then
  for i, s in ipairs(specs) do names[OVERRIDES + i] = overrideOf(s.key, s.tag) end
  for i, name in ipairs(extra) do names[OVERRIDES + nspecs + i] = name end
end
local found = mget(names)
for i = 1, nblocks do
  if found[i] and not again then
    flush()
    return { 'blocked', fmt(now), i - 1, found[i] }
  end
end

-- Skew next, before a breaker trips: the engine retries with fresh bounds under the same id.
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

-- Calendar windows without alerts or throttle, each once in the call, skip the cells (peekFixed).
local seen = {}
for _, s in ipairs(specs) do seen[s.key] = (seen[s.key] or 0) + 1 end
local looks, gates, results, refused = {}, {}, {}, false
for i, s in ipairs(specs) do
  local override = SHARED and found[OVERRIDES + i]
  local cap = (override and tonumber(override)) or s.cap
  local look
  if s.kind == 'fixed' and not s.alerts and not s.throttle and seen[s.key] == 1 then
    look = peekFixed(s, cap)
  else
    need()
    look = inspect(s, cap)
  end
  local r = {
    cap = cap, used = look.used, held = look.held, resetAt = look.resetAt, windowStart = look.windowStart,
    denied = look.denied, retry = look.retry, from = 0, to = 0,
    tripped = false, trippedNow = false, throttled = false, before = nil,
  }
  if pre then r.before = { out(look.used), out(look.held), look.resetAt and out(look.resetAt) or false } end
  local trippedUntil = found[TRIPS + i] and tonumber(found[TRIPS + i])
  if again then
    -- a replay refuses, trips and throttles nothing: its reservation holds already
    r.denied, r.retry = false, nil
  elseif trippedUntil and trippedUntil > now then
    r.denied = true
    r.tripped = true
    r.retry = breakerWait(trippedUntil - now, look.denied, look.retry)
  elseif s.cooldown and look.denied and s.enforce then
    call('SET', names[TRIPS + i], fmt(now + s.cooldown), 'PX', fmt(math.ceil(s.cooldown + GRACE)))
    r.tripped = true
    r.trippedNow = true
    r.retry = breakerWait(s.cooldown, look.denied, look.retry)
  elseif not look.denied and s.throttle and look.used + s.amount >= s.throttle.at * cap then
    need()
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
if not refused and not dry and not again then
  for i, s in ipairs(specs) do
    local r = results[i]
    if not r.denied then -- a shadow counter that would refuse holds nothing
      local gate = gates[i]
      if gate then
        hold(gate.spec, gate.look, id)
        keep(gate.look)
      end
      local look = looks[i]
      local c = look.cell
      local alerted = false
      if look.direct then
        r.resetAt = look.resetAt
        r.used, r.held = holdFixed(s, look)
      else
        r.resetAt = hold(s, look, id)
        keep(look)
        if s.kind == 'bucket' then
          r.used = r.used + s.amount
          r.held = 0
        else
          r.used = get(c, 'u') or 0
          r.held = get(c, 'h') or 0
        end
        alerted = s.alerts and (get(c, 'a') or 0)
        if s.alerts then r.from, r.to = crossed(s, c, r.cap) end
      end
      -- The hold, as an array (see entryArray): what a settle, release, expiry or cancel must undo.
      -- Outside a Cluster the last four are absent (read as nil): a shorter array to make and pack.
      local e = {
        s.key, s.metric, s.tag, s.kind, look.windowStart, s.slot or false, s.interval or false, s.cap,
        s.amount, s.amount, s.expiry,
      }
      if cluster then
        -- What a cancel must undo besides the hold: the position, alerts marked fired, a throttle unit.
        e[12], e[13], e[14], e[15] = positions[i], false, false, false
        if s.alerts then e[13], e[14] = alerted, r.to end
        if gate then e[15] = gate.spec.interval end
      end
      entries[#entries + 1] = e
    end
  end
  local key = recordKey(id)
  local expiresAt = now + ttl
  local life = math.ceil(ttl + IDEM)
  if #groups > 0 then
    call('HSET', key, 's', 'held', 'e', fmt(expiresAt), 'm', meta, 'x', cmsgpack.pack(entries), 'g', cmsgpack.pack(groups))
  else
    call('HSET', key, 's', 'held', 'e', fmt(expiresAt), 'm', meta, 'x', cmsgpack.pack(entries))
    if cluster then call('HDEL', key, 'g') end
  end
  index(key, id, expiresAt, life)
end
flush()

-- One flat array (ROW values per counter, ROW + 3 with 'p'), cheaper to answer than nested ones:
-- cap, used, held, resetAt, windowStart, flags (with the alerts crossed, from and to), retry. A
-- calendar window read straight (peekFixed) sends no resetAt and windowStart (flag 16): the client
-- finds them in the bounds it sent, at now.
local reply = { refused and 'denied' or 'ok', out(now) }
local n = 2
for i, r in ipairs(results) do
  local flags = r.from * 32 + r.to * 2097152
  if r.denied then flags = flags + 1 end
  if r.tripped then flags = flags + 2 end
  if r.trippedNow then flags = flags + 4 end
  if r.throttled then flags = flags + 8 end
  reply[n + 1] = out(r.cap)
  reply[n + 2] = out(r.used)
  reply[n + 3] = out(r.held)
  if looks[i].direct then
    flags = flags + 16
    reply[n + 4], reply[n + 5] = false, false
  else
    reply[n + 4] = r.resetAt and out(r.resetAt) or false
    reply[n + 5] = out(r.windowStart)
  end
  reply[n + 6] = flags
  reply[n + 7] = r.retry and out(r.retry) or false
  n = n + 7
  if pre then
    reply[n + 1], reply[n + 2], reply[n + 3] = r.before[1], r.before[2], r.before[3]
    n = n + 3
  end
end
if cluster then
  for i = 1, #extra do reply[n + i] = found[OVERRIDES + nspecs + i] or false end
end
return reply
`

const COMMIT_BODY = /* lua */ `
-- ARGV[6] id, [7] 'settle', 'release', 'cancel' or 'abandon', then metric, amount pairs (settle only). A '!' after
-- settle or release: brief, the rows of counters charged past their cap only (the engine reads no other).
-- 'cancel' (Redis Cluster: compensation of a reserve refused in another slot) releases every hold
-- and forgets the reservation, as if it had never been made. 'abandon' (a reserve whose answer was
-- lost: it may have landed, or land later if resent) cancels it too, and remembers the id as released
-- (<tag>:d:<id>, for idempotencyMs) even when the reserve never landed, so that a reserve arriving
-- later under the id holds nothing. Answers carry the record's other slot groups (g) last, so that a
-- commit on a Cluster finds every part of a reservation.
sweep()
local id = ARGV[6]
local brief = string.byte(ARGV[7], -1) == 33
local mode = brief and string.sub(ARGV[7], 1, -2) or ARGV[7]
local abandon = mode == 'abandon'
local cancel = abandon or mode == 'cancel'
local release = cancel or mode == 'release'
local amounts = {}
for i = 8, #ARGV, 2 do amounts[ARGV[i]] = tonumber(ARGV[i + 1]) end
-- The entries stay arrays (see entryArray) unless a path below needs them as maps (entryOf).
local r = current(loadRecord(id, true))
if not r then
  if abandon then call('SET', HT .. ':d:' .. id, 'released', 'PX', fmt(IDEM)) end
  flush()
  return { 'unknown' }
end
if r.state == 'settled' or r.state == 'released' then
  flush()
  return { 'duplicate', r.state, r.groups }
end
local late = r.state == 'expired'
if not late then call('ZREM', INDEX, id) end
-- What the sweep or this record's expiry changed is written now: calendar windows are then
-- changed straight in Redis (chargeFixed).
if #order > 0 then flush() end
local keys, tags, seen = {}, {}, {}
for i, e in ipairs(r.entries) do
  local key = e[1] or e.key
  keys[i] = key
  tags[i] = e[3] or e.tag
  seen[key] = (seen[key] or 0) + 1
end
local found = overrides(keys, tags)
-- One flat list of rows: key, metric, held, charged, overdraft, position (false outside a Cluster).
local rows = {}
for i, e in ipairs(r.entries) do
  local target = 0
  local n = #rows
  if e[4] == 'fixed' and seen[e[1]] == 1 then
    -- A calendar window, straight from the stored array (see entryArray): nothing reads it after.
    if not release then target = amounts[e[2]] or e[9] end
    local over = chargeFixed(e[3], e[5], e[1], e[9], e[10], target, found[i] or e[8]) or 0
    if not brief or over > 0 then
      rows[n + 1], rows[n + 2], rows[n + 3] = e[1], e[2], out(e[9])
      rows[n + 4], rows[n + 5], rows[n + 6] = out(target), out(math.max(0, over)), e[12] or false
    end
  else
    e = entryOf(e)
    r.entries[i] = e
    if not release then target = amounts[e.metric] or e.charged end
    local cap = found[i] or e.cap
    local over = 0
    if e.kind == 'fixed' and seen[e.key] == 1 then
      over = chargeFixed(e.tag, e.start, e.key, e.charged, e.open, target, cap) or 0
    else
      need()
      local c = entryCell(e)
      if c then charge(e, c, id, target) end
      if c and e.kind ~= 'bucket' and e.kind ~= 'lease' then over = (get(c, 'u') or 0) - cap end
    end
    if not brief or over > 0 then
      rows[n + 1], rows[n + 2], rows[n + 3] = e.key, e.metric, out(e.charged)
      rows[n + 4], rows[n + 5], rows[n + 6] = out(target), out(math.max(0, over)), e.n or false
    end
    e.charged = target
    e.open = 0
  end
end
r.state = release and 'released' or 'settled'
if cancel then
  need()
  for i, e in ipairs(r.entries) do r.entries[i] = entryOf(e) end
  for _, e in ipairs(r.entries) do
    -- Alerts this hold marked fired are re-armed unless another hold has moved them since.
    local c = e.a1 and entryCell(e)
    if c and (get(c, 'a') or 0) == e.a1 then set(c, 'a', e.a0) end
    if e.th then
      local t = bucketCell(e.tag, e.key, 't')
      if t.f.t then set(t, 't', t.f.t - e.th) end
    end
  end
  call('DEL', r.key)
  call('ZREM', INDEX, id)
  if abandon then call('SET', HT .. ':d:' .. id, 'released', 'PX', fmt(IDEM)) end
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
need()
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
need()
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
-- A closed reservation's meta is gone with its record (false): the engine needs none to answer duplicate.
return { fmt(now), { r.state, fmt(r.expiresAt), call('HGET', r.key, 'm') } }
`

const BATCH_BODY = /* lua */ `
-- A batch of reserves and commits from concurrent callers of one process, one after the other in
-- one atomic call (standalone Redis only): one TIME and one sweep for all of them. ARGV[6]… is a list
-- of operations, each 'r' (reserve), 'f' (lean reserve, the fast script) or 'c' (commit), its number of
-- arguments, then the arguments that script takes from ARGV[6]. Each operation runs exactly as its own script would,
-- after the ones before it (so it sees their holds), and ends with every cell written back.
-- Answer: now, then one answer per operation: the reserve or commit script's, or { '!error', message }
-- when that operation failed (what it wrote before failing stays, as after a failed script).
local all = ARGV
local common = { all[1], all[2], all[3], all[4], all[5] }
local replies = { fmt(now) }
local p, last = 6, #all
while p <= last do
  local op, count = all[p], tonumber(all[p + 1])
  local a = { common[1], common[2], common[3], common[4], common[5] }
  for i = 1, count do a[5 + i] = all[p + 1 + i] end
  ARGV = a
  local ok, reply = pcall(op == 'f' and fastOp or op == 'r' and reserveOp or commitOp)
  if not ok then
    cells, order = {}, {}
    local message = reply
    if type(reply) == 'table' then message = reply.err or 'error' end
    reply = { '!error', tostring(message) }
  end
  replies[#replies + 1] = reply
  p = p + 2 + count
end
return replies
`

/** The Lua scripts, each the shared prelude followed by its body. */
export const SCRIPTS = {
  reserve: PRELUDE + RESERVE_BODY,
  // The lean reserve makes no prelude unless it must (a sweep to run): then it is the general fast.
  fast: `local function general()\n${PRELUDE}${FAST_BODY}\nend\n${LEAN_FAST_PRELUDE}${FAST_CORE}`,
  commit: PRELUDE + COMMIT_BODY,
  // The general commit is a function the lean one calls, making the prelude, only when it must.
  leanCommit: `local function general()\n${PRELUDE}${COMMIT_BODY}\nend\n${LEAN_COMMIT_BODY}`,
  batch: `${PRELUDE}local function reserveOp()\n${RESERVE_BODY}\nend\nlocal function fastOp()\n${FAST_BODY}\nend\nlocal function commitOp()\n${COMMIT_BODY}\nend\n${BATCH_BODY}`,
  read: PRELUDE + READ_BODY,
  adjust: PRELUDE + ADJUST_BODY,
  lookup: PRELUDE + LOOKUP_BODY,
} as const

export type ScriptName = keyof typeof SCRIPTS
