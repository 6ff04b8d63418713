-- Shared by every workflow script (scripts.ts puts this file before each one). A script touches
-- one key, the session's hash KEYS[1] (docs/workflows.md, "Keys"), so it runs on one Redis
-- Cluster slot. The hash holds:
--   meta          JSON: instances, latest inputs, counters (names and statuses only, no user data)
--   workflow, session
--   v:<ref>       an input value or a result, as the JSON text the caller gave: Lua never decodes
--                 user data (cjson keeps 14 significant digits; the data's numbers stay exact)
--   seen:<id>     an applied event id -> JSON list of the instances that input scheduled
local H = KEYS[1]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function contains(list, x)
  for _, v in ipairs(list) do
    if v == x then return true end
  end
  return false
end

-- every name of `list` is a key of `set`
local function all_in(list, set)
  for _, v in ipairs(list) do
    if set[v] == nil then return false end
  end
  return true
end

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function load_meta()
  local raw = redis.call('HGET', H, 'meta')
  if not raw then return nil end
  return cjson.decode(raw)
end

local function new_meta(now, workflow, session)
  redis.call('HSET', H, 'workflow', workflow, 'session', session)
  return { created = now, updated = now, latest = {}, counts = {}, inst = {} }
end

-- A session with a run scheduled or running never expires (the run would find no state);
-- otherwise it expires ttl after its last change.
local function save(meta, now, ttl_ms)
  meta.updated = now
  redis.call('HSET', H, 'meta', cjson.encode(meta))
  for _, inst in pairs(meta.inst) do
    if inst.status == 'scheduled' or inst.status == 'running' then
      redis.call('PERSIST', H)
      return
    end
  end
  redis.call('PEXPIRE', H, ttl_ms)
end

local function set_status(inst, status, now)
  inst.status = status
  inst.ts[status] = now
  inst.ts.lastModified = now
end

local function new_instance(meta, task_name, now)
  local n = meta.counts[task_name] or 0
  meta.counts[task_name] = n + 1
  local name = task_name .. '#' .. n
  local inst = { task = task_name, n = n, status = 'unstarted', inputs = {}, abandon = {}, depth = 0, ts = { created = now, lastModified = now, unstarted = now } }
  meta.inst[name] = inst
  return name, inst
end

-- The instances that `name` names in a list of instance names and that are still scheduled.
local function still_scheduled(meta, names)
  local out = {}
  for _, name in ipairs(names or {}) do
    local inst = meta.inst[name]
    if inst and inst.status == 'scheduled' then table.insert(out, name) end
  end
  return out
end

-- Applying succeeds only to an unstarted instance that does not hold the input yet: first wins.
local function apply_to(inst, task, input, ref)
  if inst.status ~= 'unstarted' then return false end
  local applied = false
  if contains(task.after, input) and inst.inputs[input] == nil then
    inst.inputs[input] = ref
    applied = true
  end
  if contains(task.unless, input) and inst.abandon[input] == nil then
    inst.abandon[input] = true
    applied = true
  end
  return applied
end

-- A new instance starts with the latest values of the other after-inputs and the unless-inputs
-- that already happened.
local function prefill(meta, task, inst, input)
  for _, a in ipairs(task.after) do
    if a ~= input and meta.latest[a] ~= nil then inst.inputs[a] = meta.latest[a] end
  end
  for _, u in ipairs(task.unless) do
    if meta.latest[u] ~= nil then inst.abandon[u] = true end
  end
end

-- abandon when all of unless happened, else schedule when all of after did
local function evaluate(meta, task, now, scheduled)
  for n = 0, (meta.counts[task.name] or 0) - 1 do
    local name = task.name .. '#' .. n
    local inst = meta.inst[name]
    if inst and inst.status == 'unstarted' then
      if #task.unless > 0 and all_in(task.unless, inst.abandon) then
        set_status(inst, 'abandoned', now)
      elseif all_in(task.after, inst.inputs) then
        set_status(inst, 'scheduled', now)
        table.insert(scheduled, name)
      end
    end
  end
end

-- held as an input or as a result
local function referenced(meta, ref)
  for _, inst in pairs(meta.inst) do
    if inst.result == ref then return true end
    for _, r in pairs(inst.inputs) do
      if r == ref then return true end
    end
  end
  return false
end

-- The framework's fire: apply `input` (its value stored under v:<ref>) to every task that waits
-- for it; returns the instances it scheduled.
local function fire(meta, graph, input, ref, now)
  local scheduled = {}
  for _, task in ipairs(graph.tasks) do
    if contains(task.after, input) or contains(task.unless, input) then
      local count = meta.counts[task.name] or 0
      if count == 0 then
        local _, inst = new_instance(meta, task.name, now)
        prefill(meta, task, inst, input)
        apply_to(inst, task, input, ref)
      else
        local accepted = false
        for n = 0, count - 1 do
          local inst = meta.inst[task.name .. '#' .. n]
          if inst and apply_to(inst, task, input, ref) then accepted = true end
        end
        if not accepted and task.every == input then
          local _, inst = new_instance(meta, task.name, now)
          prefill(meta, task, inst, input)
          apply_to(inst, task, input, ref)
        end
      end
      evaluate(meta, task, now, scheduled)
    end
  end
  local old = meta.latest[input]
  meta.latest[input] = ref
  -- a value that is neither the latest any more nor held by an instance is garbage
  if old ~= nil and old ~= ref and not referenced(meta, old) then redis.call('HDEL', H, 'v:' .. old) end
  if meta.first == nil then meta.first = now end
  return scheduled
end

-- A failed instance's copy, scheduled at once: same inputs and abandon state, one level deeper.
local function clone(meta, parent_name, now)
  local parent = meta.inst[parent_name]
  local name, inst = new_instance(meta, parent.task, now)
  inst.inputs = copy(parent.inputs)
  inst.abandon = copy(parent.abandon)
  inst.depth = parent.depth + 1
  inst.parent = parent_name
  set_status(inst, 'scheduled', now)
  return name, inst
end

-- The instance a runner holds: running, and claimed by this work entry and consumer.
local function held(meta, name, entry, consumer)
  local inst = meta and meta.inst[name]
  if not inst or inst.status ~= 'running' or inst.claim == nil then return nil end
  if inst.claim.entry ~= entry or inst.claim.consumer ~= consumer then return nil end
  return inst
end

-- The reply of a runner that no longer holds instance `name` (taken over, or gone): its outcome is dropped.
local function stale(meta, name)
  local current = meta and meta.inst[name]
  return { 'stale', current and current.status or 'gone' }
end

local function invalid(name, inst, verb, only)
  return redis.error_reply('WORKFLOW_STATE instance ' .. name .. ' (' .. inst.status .. ') cannot be ' .. verb .. ': only ' .. only .. ' instance can')
end

local function unknown(name)
  return redis.error_reply('WORKFLOW_STATE no instance ' .. name .. ' in this session')
end
