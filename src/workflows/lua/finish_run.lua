-- A run succeeded. ARGV: graph JSON, instance, work entry id, consumer, result JSON, ttl ms.
-- running -> finished with the result, and in the same step the cascade: the task's name fires
-- as an input with the result. Returns {'ok', scheduled names} or {'stale', status} when this
-- runner no longer holds the instance (it was taken over; its result is dropped).
local graph = cjson.decode(ARGV[1])
local name, entry, consumer, result = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local meta = load_meta()
local inst = held(meta, name, entry, consumer)
if not inst then return stale(meta, name) end
local now = now_ms()
local ref = 'r:' .. name
redis.call('HSET', H, 'v:' .. ref, result)
inst.result = ref
set_status(inst, 'finished', now)
local scheduled = fire(meta, graph, inst.task, ref, now)
inst.next = scheduled
save(meta, now, tonumber(ARGV[6]))
return { 'ok', scheduled }
