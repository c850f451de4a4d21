-- 001: the gateway core. Workspaces, people and their roles, rooms with their
-- sequence counters, room membership, messages and access tokens (hashed).
-- UUID ids everywhere a client sees one: sequential ids would let one
-- workspace count another's rooms and people.

CREATE TABLE workspaces (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A person is an account; one person may belong to several workspaces.
-- An invitation needs only an email or a phone number.
CREATE TABLE people (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email         text UNIQUE,
    phone         text UNIQUE,
    display_name  text,
    is_avatar     boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (email IS NOT NULL OR phone IS NOT NULL OR is_avatar)
);

CREATE TABLE workspace_members (
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    person_id     uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    role          text NOT NULL
                  CHECK (role IN ('owner', 'admin', 'keyuser', 'support', 'member', 'avatar')),
    removed_at    timestamptz,            -- soft delete: access revoked, data kept
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, person_id)
);
CREATE INDEX workspace_members_person ON workspace_members(person_id);

-- last_seq is the room's sequence counter: a write batch takes k numbers with
-- UPDATE ... SET last_seq = last_seq + k RETURNING, under the row lock, so
-- seqs are dense and commit in order per room.
CREATE TABLE rooms (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind          text NOT NULL DEFAULT 'chat' CHECK (kind IN ('chat', 'dialogue')),
    -- 'workspace': every member of the workspace may join; 'members': only room_members.
    visibility    text NOT NULL DEFAULT 'workspace' CHECK (visibility IN ('workspace', 'members')),
    last_seq      bigint NOT NULL DEFAULT 0,
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX rooms_workspace ON rooms(workspace_id);

CREATE TABLE room_members (
    room_id     uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    person_id   uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, person_id)
);

-- (room_id, seq) is the order of a room; (room_id, sender_id, client_msg_id)
-- makes a retried send return the row already stored.
CREATE TABLE messages (
    room_id        uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    seq            bigint NOT NULL,
    sender_id      uuid NOT NULL REFERENCES people(id),
    client_msg_id  text NOT NULL CHECK (length(client_msg_id) BETWEEN 1 AND 64),
    body           text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, seq),
    UNIQUE (room_id, sender_id, client_msg_id)
);

-- Tokens are 32 random bytes given to the client once; only their BLAKE2b-256
-- hash is stored. workspace_id NULL: valid in every workspace of the person.
CREATE TABLE access_tokens (
    hash          bytea PRIMARY KEY CHECK (length(hash) = 32),
    person_id     uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    workspace_id  uuid REFERENCES workspaces(id) ON DELETE CASCADE,
    kind          text NOT NULL DEFAULT 'session' CHECK (kind IN ('session', 'api')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX access_tokens_person ON access_tokens(person_id);
