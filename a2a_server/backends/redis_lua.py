"""The Lua scripts of the Redis store: each write is one script, so it is atomic and fenced in Redis itself.

Keys of a deployment (prefix ``a2a`` by default, ``?prefix=`` in the URL):

    <p>:t:<task>   hash   j (task JSON) s (state) ts (status timestamp) c (context) o (owner) k (skill)
                          e (epoch) q (id of the last event the snapshot reflects) n (last event id)
                          ls (state as of the newest event) cr (creation number) w/wr (last write token/first id)
    <p>:l:<task>   stream ids 0-1, 0-2 …: y (kind) e (event JSON) g (its global cursor) [s (snapshot JSON)]
    <p>:g          stream ids 0-<cursor>: every event of every task, for /a2a/events (t n s c k o y e)
    <p>:gc         the global cursor;   <p>:seq  the creation counter
    <p>:all        zset task → creation number (listing, newest first)
    <p>:open       zset of the tasks neither terminal nor interrupted (recovery, oldest first)
    <p>:done       zset (lex) "<timestamp>\\0<task>" of the terminal ones (retention)
"""

from __future__ import annotations

# KEYS: task hash, all, seq, open, done.
# ARGV: task id, json, state, ts, context, owner, skill, epoch, settled (0/1), terminal (0/1)
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local cr = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], 'j', ARGV[2], 's', ARGV[3], 'ts', ARGV[4], 'c', ARGV[5], 'o', ARGV[6], 'k', ARGV[7],
           'e', ARGV[8], 'q', 0, 'n', 0, 'cr', cr)
redis.call('ZADD', KEYS[2], cr, ARGV[1])
if ARGV[9] == '0' then redis.call('ZADD', KEYS[4], cr, ARGV[1]) end
if ARGV[10] == '1' then redis.call('ZADD', KEYS[5], 0, ARGV[4] .. '\\0' .. ARGV[1]) end
return 1
"""

# KEYS: task hash.  Returns the new epoch, or -1 when there is no such task.
TAKE_OVER = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HINCRBY', KEYS[1], 'e', 1)
"""

# KEYS: task hash, log, global, global cursor, all, seq, open, done.
# ARGV: 1 task id, 2 epoch, 3 create (0/1), 4 write token, 5 has snapshot (0/1), 6 snapshot JSON, 7 its state,
#       8 its timestamp, 9 context, 10 owner, 11 skill, 12 snapshot epoch, 13 settled (0/1), 14 terminal (0/1),
#       15 log cap, 16 global cap, 17 ttl after final (s, 0 = none), 18 event count, then per event: kind, JSON,
#       state it sets ('' = unchanged).
# Returns {'ok', first id, first cursor} | {'again', first id, 0} (a retried write that was applied) |
#         {'fenced', epoch} | {'missing'}
APPEND = """
local h = KEYS[1]
if ARGV[3] == '1' and ARGV[5] == '1' and redis.call('EXISTS', h) == 0 then
  local cr = redis.call('INCR', KEYS[6])
  redis.call('HSET', h, 'j', ARGV[6], 's', ARGV[7], 'ts', ARGV[8], 'c', ARGV[9], 'o', ARGV[10], 'k', ARGV[11],
             'e', ARGV[12], 'q', 0, 'n', 0, 'cr', cr)
  redis.call('ZADD', KEYS[5], cr, ARGV[1])
  if ARGV[13] == '0' then redis.call('ZADD', KEYS[7], cr, ARGV[1]) end
end
local head = redis.call('HMGET', h, 'e', 'n', 'ls', 's', 'c', 'k', 'o', 'w', 'wr', 'cr')
if not head[1] then return {'missing'} end
if head[8] == ARGV[4] then return {'again', tonumber(head[9]), 0} end
if tonumber(head[1]) ~= tonumber(ARGV[2]) then return {'fenced', tonumber(head[1])} end
local n = tonumber(head[2])
local state = head[3] or head[4]
local first = n + 1
local count = tonumber(ARGV[18])
local gfirst = 0
for i = 0, count - 1 do
  local kind, ev, set = ARGV[19 + 3 * i], ARGV[20 + 3 * i], ARGV[21 + 3 * i]
  n = n + 1
  if set ~= '' then state = set end
  local g = redis.call('INCR', KEYS[4])
  if gfirst == 0 then gfirst = g end
  if i == count - 1 and ARGV[5] == '1' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[15], '0-' .. n, 'y', kind, 'e', ev, 'g', g, 's', ARGV[6])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[15], '0-' .. n, 'y', kind, 'e', ev, 'g', g)
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[16], '0-' .. g, 't', ARGV[1], 'n', n, 's', state,
             'c', head[5], 'k', head[6], 'o', head[7], 'y', kind, 'e', ev)
end
redis.call('HSET', h, 'n', n, 'ls', state, 'w', ARGV[4], 'wr', first)
if ARGV[5] == '1' then
  redis.call('HSET', h, 'j', ARGV[6], 's', ARGV[7], 'ts', ARGV[8], 'q', n)
  if ARGV[13] == '1' then redis.call('ZREM', KEYS[7], ARGV[1]) else redis.call('ZADD', KEYS[7], head[10], ARGV[1]) end
  if ARGV[14] == '1' then
    redis.call('ZADD', KEYS[8], 0, ARGV[8] .. '\\0' .. ARGV[1])
    local ttl = tonumber(ARGV[17])
    if ttl > 0 then
      redis.call('EXPIRE', h, ttl)
      redis.call('EXPIRE', KEYS[2], ttl)
    end
  end
end
return {'ok', first, gfirst}
"""
