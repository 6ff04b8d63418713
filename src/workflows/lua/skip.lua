-- An operator skips a failed instance. ARGV: graph JSON, instance, ttl ms, cascade (1|0), result
-- JSON. failed -> skipped; with cascade the task's name fires as an input with the given result,
-- as if the run had finished with it. Returns the instances that scheduled.
local graph = cjson.decode(ARGV[1])
local name = ARGV[2]
local meta = load_meta()
local inst = meta and meta.inst[name]
if not inst then return unknown(name) end
if inst.status ~= 'failed' then return invalid(name, inst, 'skipped', 'a failed') end
local now = now_ms()
set_status(inst, 'skipped', now)
local scheduled = {}
if ARGV[4] == '1' then
  local ref = 'r:' .. name
  redis.call('HSET', H, 'v:' .. ref, ARGV[5])
  inst.result = ref
  scheduled = fire(meta, graph, inst.task, ref, now)
end
inst.next = scheduled
save(meta, now, tonumber(ARGV[3]))
return scheduled
