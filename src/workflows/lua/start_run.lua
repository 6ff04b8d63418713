-- A runner took a work entry for an instance. ARGV: instance, work entry id, consumer, ttl ms.
-- scheduled -> running, claimed by (entry, consumer). A running instance claimed by the same
-- entry is taken over: the stream gives an entry to another consumer only after its holder
-- stopped heartbeating (XAUTOCLAIM), or the same consumer reads its own pending entries again
-- after a restart. Anything else is not run again.
-- Returns {'run', depth, attempts, session created (ms), first input (ms), task, input, value JSON,
--          input, value JSON, ...}
--      or {'skip', status, instances to point at again}: the entry is a duplicate, or it did its
--         work but was not acknowledged (its follow-ups may lack their pointers)
--      or {'gone'}: the session expired
local name, entry, consumer = ARGV[1], ARGV[2], ARGV[3]
local meta = load_meta()
local inst = meta and meta.inst[name]
if not inst then return { 'gone' } end

local now = now_ms()
if inst.status == 'scheduled' then
  inst.claim = { entry = entry, consumer = consumer }
  inst.attempts = 1
  set_status(inst, 'running', now)
  if inst.ts.firstRun == nil then inst.ts.firstRun = now end
elseif inst.status == 'running' and inst.claim and inst.claim.entry == entry then
  inst.claim.consumer = consumer
  inst.attempts = (inst.attempts or 1) + 1
  inst.ts.lastModified = now
else
  local again = {}
  if inst.claim and inst.claim.entry == entry then again = still_scheduled(meta, inst.next) end
  return { 'skip', inst.status, again }
end
save(meta, now, tonumber(ARGV[4]))

local out = { 'run', inst.depth, inst.attempts, string.format('%d', meta.created), string.format('%d', meta.first or meta.created), inst.task }
for input, ref in pairs(inst.inputs) do
  table.insert(out, input)
  table.insert(out, redis.call('HGET', H, 'v:' .. ref) or 'null')
end
return out
