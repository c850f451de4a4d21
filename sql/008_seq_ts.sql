-- 008: a room's ts never decreases along its seq. created_at defaulted to
-- now(), the start of the transaction, while the seq is taken later under the
-- room's row lock, so a transaction that began earlier but got the lock later
-- stored an older time with a higher seq. Now every statement that takes a
-- seq also takes the time there, under the same lock:
--   last_ts = GREATEST(clock_timestamp(), last_ts)
-- and stores it as created_at. GREATEST with the room's previous time keeps
-- the order even if the server clock steps back.
ALTER TABLE rooms ADD COLUMN last_ts timestamptz;

-- Rows stored before this migration: each takes the latest time of any lower
-- seq of its room (a move of milliseconds), so the order holds for them too.
UPDATE messages m SET created_at = f.ts
  FROM (SELECT room_id, seq,
               max(created_at) OVER (PARTITION BY room_id ORDER BY seq) AS ts
          FROM messages) f
 WHERE m.room_id = f.room_id AND m.seq = f.seq AND m.created_at < f.ts;

UPDATE rooms r SET last_ts = t.ts
  FROM (SELECT room_id, max(created_at) AS ts FROM messages GROUP BY room_id) t
 WHERE r.id = t.room_id;
