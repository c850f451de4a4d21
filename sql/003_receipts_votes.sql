-- 003: dialogue entries and replies, read state, likes and star ratings.
--
-- A room's log holds messages (chat), entries and replies (dialogue), and
-- events: 'votes' (the aggregates of a message changed) and 'read' (a
-- person's read watermark moved). Events take seqs like messages, so they are
-- persisted before acknowledgement, fanned out in order and recovered with
-- `since`; the gateway coalesces them (one per message or person per
-- interval), so they cost a row per burst, not per vote or receipt.

ALTER TABLE rooms
    -- Large rooms may keep read state private: no 'read' events.
    ADD COLUMN broadcast_reads boolean NOT NULL DEFAULT true;

ALTER TABLE messages
    ADD COLUMN kind text NOT NULL DEFAULT 'message'
        CHECK (kind IN ('message', 'entry', 'reply', 'votes', 'read')),
    ADD COLUMN parent_seq bigint CHECK ((kind = 'reply') = (parent_seq IS NOT NULL)),
    -- Aggregates kept on the row (history and entry lists read them with the
    -- message); votes_v counts changes, so a client keeps the newest.
    ADD COLUMN like_count integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    ADD COLUMN star_count integer NOT NULL DEFAULT 0 CHECK (star_count >= 0),
    ADD COLUMN star_sum integer NOT NULL DEFAULT 0 CHECK (star_sum >= 0),
    ADD COLUMN votes_v integer NOT NULL DEFAULT 0;
CREATE INDEX messages_replies ON messages(room_id, parent_seq) WHERE parent_seq IS NOT NULL;
CREATE INDEX messages_entries ON messages(room_id, seq) WHERE kind = 'entry';

-- Read state: one watermark per (room, person) for reading in order, and a
-- row per entry only for what was seen out of order (above the watermark at
-- the time). "Who has seen X" is the union of both; storage grows with
-- out-of-order reads, not with messages x members.
CREATE TABLE read_state (
    room_id    uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    up_to      bigint NOT NULL CHECK (up_to >= 0),
    at         timestamptz NOT NULL DEFAULT now(),  -- when the watermark last moved
    PRIMARY KEY (room_id, person_id)
);
CREATE TABLE seen (
    room_id    uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq, person_id)
);
CREATE INDEX seen_person ON seen(person_id, room_id);

-- One like per person per chat message; one rating per person per entry.
CREATE TABLE likes (
    room_id    uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq, person_id)
);
CREATE INDEX likes_person ON likes(person_id);
CREATE TABLE ratings (
    room_id    uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    person_id  uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    stars      smallint NOT NULL CHECK (stars BETWEEN 1 AND 5),
    at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq, person_id)
);
CREATE INDEX ratings_person ON ratings(person_id);
