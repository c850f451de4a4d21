-- 002: accounts, profiles, workspace settings, invitations and their outbox,
-- avatars, scoped API tokens and the visit log (the HTTP API, issue 3).

-- Accounts: an argon2id hash (libsodium's crypto_pwhash_str text, which
-- carries its own parameters, so a rehash on login can tell old ones) and a
-- profile the person may rectify. Emails are stored lower-cased so that the
-- unique index means one account per address.
ALTER TABLE people
    ADD COLUMN password_hash text,
    ADD COLUMN first_name    text CHECK (length(first_name) <= 100),
    ADD COLUMN last_name     text CHECK (length(last_name) <= 100),
    ADD COLUMN picture_url   text CHECK (length(picture_url) <= 2000),
    ADD CONSTRAINT people_email_lower CHECK (email = lower(email));

ALTER TABLE workspaces
    ADD COLUMN created_by      uuid REFERENCES people(id) ON DELETE SET NULL,
    -- Empty: any address may be invited; else only these domains (lower case).
    ADD COLUMN allowed_domains text[] NOT NULL DEFAULT '{}',
    -- How long messages are kept; NULL: indefinitely.
    ADD COLUMN retention_days  integer CHECK (retention_days BETWEEN 1 AND 36500);

-- Organisation fields belong to a person's place in one workspace (the same
-- person may hold different titles for two clients).
ALTER TABLE workspace_members
    ADD COLUMN title        text CHECK (length(title) <= 200),
    ADD COLUMN department   text CHECK (length(department) <= 200),
    ADD COLUMN superior_id  uuid REFERENCES people(id) ON DELETE SET NULL,
    ADD COLUMN removed_by   uuid REFERENCES people(id) ON DELETE SET NULL;

-- Tokens get an id (to list and revoke one without knowing its secret) and an
-- optional room scope (an avatar limited to some rooms).
ALTER TABLE access_tokens
    ADD COLUMN id       uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    ADD COLUMN room_ids uuid[];

-- An avatar (bot) is a person with is_avatar, a member of exactly one
-- workspace with role 'avatar'; this row holds what only bots have.
CREATE TABLE avatars (
    person_id     uuid PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    persona       text NOT NULL DEFAULT '' CHECK (length(persona) <= 4000),
    owner_id      uuid REFERENCES people(id) ON DELETE SET NULL,
    created_by    uuid REFERENCES people(id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX avatars_workspace ON avatars(workspace_id);

-- An invitation is a single-use secret (stored hashed like tokens) that
-- expires. Exactly one of email and phone.
CREATE TABLE invitations (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    hash          bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    email         text CHECK (email = lower(email)),
    phone         text,
    role          text NOT NULL CHECK (role IN ('admin', 'keyuser', 'member')),
    profile       jsonb NOT NULL DEFAULT '{}',
    invited_by    uuid REFERENCES people(id) ON DELETE SET NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    redeemed_at   timestamptz,
    redeemed_by   uuid REFERENCES people(id) ON DELETE SET NULL,
    revoked_at    timestamptz,
    CHECK ((email IS NULL) <> (phone IS NULL))
);
CREATE INDEX invitations_workspace ON invitations(workspace_id);

-- What an operator's mailer or SMS gateway must deliver. The invitation
-- secret is kept here only until delivery is acknowledged, then erased.
CREATE TABLE outbox (
    id             bigserial PRIMARY KEY,
    workspace_id   uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    invitation_id  uuid REFERENCES invitations(id) ON DELETE CASCADE,
    channel        text NOT NULL CHECK (channel IN ('email', 'sms')),
    recipient      text NOT NULL,
    payload        jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 0,
    leased_until   timestamptz,
    sent_at        timestamptz,
    failed_at      timestamptz,
    last_error     text
);
CREATE INDEX outbox_pending ON outbox(id) WHERE sent_at IS NULL AND failed_at IS NULL;

-- One row per WebSocket authentication and per login: family names only, and
-- the IP address until the anonymisation job zeroes its host part.
CREATE TABLE visits (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid REFERENCES workspaces(id) ON DELETE CASCADE,
    person_id     uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('websocket', 'login')),
    at            timestamptz NOT NULL DEFAULT now(),
    ip            inet,
    ip_anonymised boolean NOT NULL DEFAULT false,
    os            text NOT NULL DEFAULT 'Other',
    browser       text NOT NULL DEFAULT 'Other'
);
CREATE INDEX visits_workspace_at ON visits(workspace_id, at);
CREATE INDEX visits_anon ON visits(at) WHERE NOT ip_anonymised;
