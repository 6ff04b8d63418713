-- An operator replays a failed instance. ARGV: instance, ttl ms, replace (1|0), then input and
-- value JSON pairs. failed -> replayed, and a clone #n+1 (same inputs and abandon state, one
-- level deeper) is scheduled; replacement inputs replace the clone's inputs entirely.
-- Returns {clone}.
local name = ARGV[1]
local meta = load_meta()
local inst = meta and meta.inst[name]
if not inst then return unknown(name) end
if inst.status ~= 'failed' then return invalid(name, inst, 'replayed', 'a failed') end
local now = now_ms()
set_status(inst, 'replayed', now)
local clone_name, c = clone(meta, name, now)
if ARGV[3] == '1' then
  c.inputs = {}
  for i = 4, #ARGV, 2 do
    local ref = 'p:' .. clone_name .. ':' .. ARGV[i]
    redis.call('HSET', H, 'v:' .. ref, ARGV[i + 1])
    c.inputs[ARGV[i]] = ref
  end
end
inst.next = { clone_name }
save(meta, now, tonumber(ARGV[2]))
return { clone_name }
