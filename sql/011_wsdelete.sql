-- 011: workspace deletion with a grace period (issue 17). DELETE marks the
-- workspace deleted: it vanishes for everyone (every route answers 404 as
-- for a workspace that never existed, connections close, sign-in to it,
-- invitations and self-join stop), but nothing is removed, so an owner can
-- restore it until purge_at. After that the purge job removes everything
-- of it in small batches, then the people who belong to no other
-- workspace, with their sessions and sign-in visits. And: a held message
-- that was approved and then deleted keeps no text.

ALTER TABLE workspaces
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN deleted_by uuid REFERENCES people(id) ON DELETE SET NULL,
    -- when the purge may start; set with deleted_at, cleared by a restore
    ADD COLUMN purge_at   timestamptz,
    ADD CONSTRAINT workspaces_deleted_check CHECK ((deleted_at IS NULL) = (purge_at IS NULL));
CREATE INDEX workspaces_purge ON workspaces(purge_at) WHERE purge_at IS NOT NULL;

-- What happened to deleted workspaces: delete, restore and purge, by whom
-- and when, with the purge's counts. No foreign key to the workspace: the
-- record outlives it (a workspace id names no person).
CREATE TABLE workspace_deletions (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid NOT NULL,
    action        text NOT NULL CHECK (action IN ('delete', 'restore', 'purge')),
    actor_id      uuid REFERENCES people(id) ON DELETE SET NULL, -- NULL: the purge job
    counts        jsonb,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspace_deletions_ws ON workspace_deletions(workspace_id, id);

-- The purge walks the tables by person too (people of the workspace whose
-- only membership it was).
CREATE INDEX invitations_redeemed_by ON invitations(redeemed_by) WHERE redeemed_by IS NOT NULL;

-- A held message approved and later deleted: the copy in pending goes with
-- the message's text. A trigger, not each delete statement: a message is
-- deleted by its sender, by moderators and by retention, and any later
-- path is covered too. It fires only on the one update that sets
-- deleted_at (never on the frequent vote and edit updates).
CREATE FUNCTION parley_pending_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE pending x SET body = '' WHERE x.room_id = NEW.room_id AND x.seq = NEW.seq
        AND x.body <> '';
    RETURN NULL;
END $$;
CREATE TRIGGER messages_deleted_forget_pending AFTER UPDATE OF deleted_at ON messages
    FOR EACH ROW WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION parley_pending_forget();
CREATE INDEX pending_seq ON pending(room_id, seq) WHERE seq IS NOT NULL;
-- ... and what was deleted before this migration
UPDATE pending x SET body = '' FROM messages m
    WHERE m.room_id = x.room_id AND m.seq = x.seq AND m.deleted_at IS NOT NULL AND x.body <> '';

-- One run of the purge: the deleted workspace whose grace ended first,
-- at most `batch` rows in all. The rows go in an order in which no delete
-- cascades into a large table: what hangs off messages and people first,
-- then the messages, the workspace's other large tables, the people whose
-- only workspace it was (their sessions, sign-in visits, proofs and
-- notices with them), and last the workspace row, whose cascade takes the
-- small rest (rooms, memberships, settings, logs). A step that removed
-- fewer rows than it was allowed found nothing more, so the next starts
-- only after the previous is complete. One gateway at a time.
-- Returns {workspace, rows, done} ('{}' when there is nothing to do).
CREATE FUNCTION parley_ws_purge(batch int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    w uuid;
    left_ bigint := batch;
    n bigint;
    k bigint;
    lim bigint;
    q text;
    c jsonb := '{}';
    -- room-scoped and workspace-scoped tables, in order; $1 the workspace,
    -- $2 how many rows at most
    steps text[] := ARRAY[
        'seen', 'likes', 'ratings', 'read_state', 'pending', 'room_retention', 'messages',
        'room_members', 'room_bans'];
    wsteps text[] := ARRAY[
        'guideline_hits', 'moderation_log', 'visits', 'outbox', 'invitations', 'access_tokens',
        'mutes', 'guideline_audit', 'export_log', 'erasures'];
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('parley_ws_purge')) THEN
        RETURN '{}';
    END IF;
    SELECT ws.id INTO w FROM workspaces ws WHERE ws.purge_at <= now()
        ORDER BY ws.purge_at LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF w IS NULL THEN
        RETURN '{}';
    END IF;
    FOREACH q IN ARRAY steps LOOP
        EXIT WHEN left_ <= 0;
        EXECUTE format('DELETE FROM %I x WHERE x.ctid = ANY(ARRAY(SELECT y.ctid FROM %I y'
                       ' WHERE y.room_id IN (SELECT r.id FROM rooms r WHERE r.workspace_id = $1)'
                       ' LIMIT $2))', q, q) USING w, left_;
        GET DIAGNOSTICS n = ROW_COUNT;
        left_ := left_ - n;
        IF n > 0 THEN c := c || jsonb_build_object(q, n); END IF;
    END LOOP;
    FOREACH q IN ARRAY wsteps LOOP
        EXIT WHEN left_ <= 0;
        EXECUTE format('DELETE FROM %I x WHERE x.ctid = ANY(ARRAY(SELECT y.ctid FROM %I y'
                       ' WHERE y.workspace_id = $1 LIMIT $2))', q, q) USING w, left_;
        GET DIAGNOSTICS n = ROW_COUNT;
        left_ := left_ - n;
        IF n > 0 THEN c := c || jsonb_build_object(q, n); END IF;
    END LOOP;
    -- the people whose only workspace this is (pseudonyms and avatars of it
    -- included), a tenth of the batch: each takes its own rows with it;
    -- one who wrote anywhere else stays (that log needs its sender)
    IF left_ > 0 THEN
        lim := greatest(left_ / 10, 1);
        WITH pp AS (SELECT pe.id, pe.email, pe.phone FROM workspace_members m
                      JOIN people pe ON pe.id = m.person_id
                     WHERE m.workspace_id = w
                       AND NOT EXISTS (SELECT 1 FROM workspace_members o
                                        WHERE o.person_id = m.person_id AND o.workspace_id <> w)
                       AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.sender_id = m.person_id)
                     LIMIT lim),
             v AS (DELETE FROM verifications x USING pp WHERE x.person_id = pp.id
                   OR x.address = pp.email OR x.address = pp.phone RETURNING 1),
             o AS (DELETE FROM outbox x USING pp WHERE x.recipient = pp.email
                   OR x.recipient = pp.phone RETURNING 1),
             d AS (DELETE FROM people x USING pp WHERE x.id = pp.id RETURNING 1)
        SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM v) + (SELECT count(*) FROM o)
          INTO n, k;
        left_ := left_ - n * 10 - k;
        IF n > 0 THEN c := c || jsonb_build_object('people', n); END IF;
        -- as many as allowed: there may be more, found only through the
        -- workspace's memberships, so the workspace must wait for them
        IF n = lim THEN left_ := 0; END IF;
    END IF;
    IF left_ > 0 THEN
        -- the rest is small: rooms, memberships of people who stay, settings
        DELETE FROM workspaces x WHERE x.id = w;
        -- the counts of this last run; /metrics counts every run's
        INSERT INTO workspace_deletions (workspace_id, action, counts) VALUES (w, 'purge', c);
    END IF;
    RETURN jsonb_build_object('workspace', w, 'rows', batch - greatest(left_, 0),
                              'done', left_ > 0, 'counts', c);
END $$;
