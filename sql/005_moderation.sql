-- 005: moderation. Deleted and edited messages, held and shadowed messages,
-- mutes, removals from rooms, locked rooms and slow mode, and the audit log
-- of every moderation action.
--
-- A room's public sequence holds only what its members may see: a held
-- message takes its seq when a moderator approves it (a new row then, in
-- order), a shadowed one never takes one (it lives in `pending` and reaches
-- its sender and the moderators outside the sequence). Deletions, edits and
-- room setting changes are events in the room's log ('delete', 'edit',
-- 'settings'), so they are fanned out in order and recovered with `since`
-- like everything else.

ALTER TABLE messages DROP CONSTRAINT messages_kind_check;
ALTER TABLE messages
    ADD CONSTRAINT messages_kind_check CHECK (kind IN
        ('message', 'entry', 'reply', 'votes', 'read', 'delete', 'edit', 'settings')),
    -- A deleted message keeps its row and seq (a stub, body emptied) so
    -- recovery never meets a hole.
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN edited_at  timestamptz;

ALTER TABLE rooms
    ADD COLUMN locked      boolean NOT NULL DEFAULT false,
    ADD COLUMN slow_mode_s integer NOT NULL DEFAULT 0 CHECK (slow_mode_s BETWEEN 0 AND 86400);

ALTER TABLE workspaces
    -- How long a sender may edit or delete their own message.
    ADD COLUMN edit_window_s integer NOT NULL DEFAULT 900
        CHECK (edit_window_s BETWEEN 0 AND 604800);

CREATE TABLE pending (
    id             bigserial PRIMARY KEY,
    room_id        uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    sender_id      uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    client_msg_id  text NOT NULL CHECK (length(client_msg_id) BETWEEN 1 AND 64),
    body           text NOT NULL,
    parent_seq     bigint,
    state          text NOT NULL CHECK (state IN ('held', 'shadow', 'approved', 'rejected')),
    rules          text[] NOT NULL DEFAULT '{}',   -- the guidelines that decided
    created_at     timestamptz NOT NULL DEFAULT now(),
    decided_by     uuid REFERENCES people(id) ON DELETE SET NULL,
    decided_at     timestamptz,
    seq            bigint,                         -- approved: its seq in the room
    UNIQUE (room_id, sender_id, client_msg_id)
);
CREATE INDEX pending_open ON pending(room_id, id) WHERE state IN ('held', 'shadow');

-- room_id NULL: muted in every room of the workspace.
CREATE TABLE mutes (
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    room_id       uuid REFERENCES rooms(id) ON DELETE CASCADE,
    person_id     uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    until         timestamptz NOT NULL,
    muted_by      uuid REFERENCES people(id) ON DELETE SET NULL,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX mutes_scope ON mutes(workspace_id,
    coalesce(room_id, '00000000-0000-0000-0000-000000000000'), person_id);

-- Removed from a room: the join is refused until someone adds them back.
CREATE TABLE room_bans (
    room_id     uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    banned_by   uuid REFERENCES people(id) ON DELETE SET NULL,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, person_id)
);

CREATE TABLE moderation_log (
    id             bigserial PRIMARY KEY,
    workspace_id   uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    room_id        uuid REFERENCES rooms(id) ON DELETE CASCADE,
    actor_id       uuid REFERENCES people(id) ON DELETE SET NULL,
    action         text NOT NULL,
    target_person  uuid REFERENCES people(id) ON DELETE SET NULL,
    target_seq     bigint,
    target_pending bigint,
    reason         text,
    detail         jsonb,
    at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_log_ws ON moderation_log(workspace_id, id);
