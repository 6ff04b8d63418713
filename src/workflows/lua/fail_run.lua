-- A run failed for good (the delivery engine gave up). ARGV: instance, work entry id, consumer,
-- error type, error message, retry max, ttl ms.
-- running -> failed; with retries left (depth < retry max) the instance is replayed at once:
-- failed -> replayed and a clone #n+1, one level deeper, is scheduled. With none left the
-- instance stays failed, with MaxRetriesExceeded when retries were configured.
-- Returns {'failed', {}} or {'replayed', {clone}} or {'stale', status}.
local name, entry, consumer = ARGV[1], ARGV[2], ARGV[3]
local retry_max = tonumber(ARGV[6])
local meta = load_meta()
local inst = held(meta, name, entry, consumer)
if not inst then return stale(meta, name) end
local now = now_ms()
inst.error = { type = ARGV[4], message = ARGV[5] }
set_status(inst, 'failed', now)
local outcome, scheduled = 'failed', {}
if retry_max > 0 then
  if inst.depth < retry_max then
    set_status(inst, 'replayed', now)
    local clone_name = clone(meta, name, now)
    scheduled = { clone_name }
    outcome = 'replayed'
  else
    inst.error = {
      type = 'MaxRetriesExceeded',
      message = 'attempting retry #' .. (inst.depth + 1) .. ', but retry.max = ' .. retry_max .. ' (last error: ' .. ARGV[4] .. ': ' .. ARGV[5] .. ')',
    }
  end
end
inst.next = scheduled
save(meta, now, tonumber(ARGV[7]))
return { outcome, scheduled }
