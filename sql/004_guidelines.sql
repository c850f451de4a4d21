-- 004: communication guidelines. A rule set per workspace and optionally per
-- room (a room's rules override the workspace's rules of the same id and add
-- their own); every change audited; every hit recorded for moderators and
-- for the evaluation.

CREATE TABLE guidelines (
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    room_id       uuid REFERENCES rooms(id) ON DELETE CASCADE,
    rules         jsonb NOT NULL,
    version       integer NOT NULL DEFAULT 1,
    updated_by    uuid REFERENCES people(id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX guidelines_scope
    ON guidelines(workspace_id, coalesce(room_id, '00000000-0000-0000-0000-000000000000'));

CREATE TABLE guideline_audit (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    room_id       uuid REFERENCES rooms(id) ON DELETE CASCADE,
    actor_id      uuid REFERENCES people(id) ON DELETE SET NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    before        jsonb,
    after         jsonb NOT NULL
);
CREATE INDEX guideline_audit_ws ON guideline_audit(workspace_id, at);

CREATE TABLE guideline_hits (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    room_id       uuid NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
    person_id     uuid NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    rule_id       text NOT NULL,
    action        text NOT NULL,
    kind          text NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX guideline_hits_ws ON guideline_hits(workspace_id, at);
