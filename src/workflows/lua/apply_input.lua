-- An input happened (an event of the workflow, by id): apply it once and schedule what it made
-- ready. ARGV: graph JSON, input name, event id, value JSON, workflow, session, ttl ms.
-- Returns {1, scheduled names}; for an event id applied before, {0, the names it scheduled that
-- are still scheduled} so that the caller writes their work pointers again (docs/workflows.md).
local graph = cjson.decode(ARGV[1])
local input, event_id, value = ARGV[2], ARGV[3], ARGV[4]
local ttl_ms = tonumber(ARGV[7])

local seen = redis.call('HGET', H, 'seen:' .. event_id)
if seen then
  return { 0, still_scheduled(load_meta(), cjson.decode(seen)) }
end

local now = now_ms()
local meta = load_meta() or new_meta(now, ARGV[5], ARGV[6])
local ref = 'e:' .. event_id
redis.call('HSET', H, 'v:' .. ref, value)
local scheduled = fire(meta, graph, input, ref, now)
redis.call('HSET', H, 'seen:' .. event_id, cjson.encode(scheduled))
save(meta, now, ttl_ms)
return { 1, scheduled }
