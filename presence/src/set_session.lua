-- Sets or ends one session's status, keeping the user's count of sessions per status in step,
-- so the user's combined status is read from a handful of counts, whatever their session count.
-- KEYS[1]: sessions:{user}  HASH "{edge}/{session}" -> status
-- KEYS[2]: statuses:{user}  HASH status -> how many of the user's sessions have it
-- ARGV[1]: "{edge}/{session}"; ARGV[2]: the status, or "" when the session ended
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  if redis.call('HINCRBY', KEYS[2], old, -1) <= 0 then
    redis.call('HDEL', KEYS[2], old)
  end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
end
return 0
