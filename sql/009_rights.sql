-- 009: data rights and retention (issue 17). Erasure replaces a person, in
-- each workspace, by a pseudonym ("Former member 7f3a") that keeps the
-- others' conversations readable and every seq in place (stubs); exports
-- and erasures are recorded without the data they concern; a periodic job
-- applies each workspace's retention and the operator's retention of the
-- visit log, tokens, invitations and outbox items.

-- A pseudonym is a person row with no address, no password and no names,
-- standing in one workspace for someone erased from it.
ALTER TABLE people ADD COLUMN pseudonym boolean NOT NULL DEFAULT false;
ALTER TABLE people DROP CONSTRAINT people_check;
ALTER TABLE people ADD CONSTRAINT people_address_check
    CHECK (email IS NOT NULL OR phone IS NOT NULL OR is_avatar OR pseudonym);
ALTER TABLE people ADD CONSTRAINT people_pseudonym_blank
    CHECK (NOT pseudonym OR (email IS NULL AND phone IS NULL AND password_hash IS NULL
           AND first_name IS NULL AND last_name IS NULL AND picture_url IS NULL));

ALTER TABLE workspaces
    -- What erasure does with the bodies of what the person wrote: 'delete'
    -- (stubs, the default) or 'keep' (the text stays under the pseudonym).
    ADD COLUMN erasure_content text NOT NULL DEFAULT 'delete'
        CHECK (erasure_content IN ('delete', 'keep')),
    -- Removed members (soft delete) are erased after this many days.
    ADD COLUMN member_grace_days integer NOT NULL DEFAULT 30
        CHECK (member_grace_days BETWEEN 1 AND 3650);

-- The membership of a pseudonym: when the person it replaces was erased.
ALTER TABLE workspace_members ADD COLUMN erased_at timestamptz;

-- A session minted by a password login at this time (DELETE /me needs a
-- recent one: re-authentication).
ALTER TABLE access_tokens ADD COLUMN password_at timestamptz;

-- Lookups by person for export and erasure (the existing indexes lead with
-- the room or the workspace).
CREATE INDEX messages_sender ON messages(sender_id, room_id, seq);
CREATE INDEX read_state_person ON read_state(person_id);
CREATE INDEX visits_person ON visits(person_id, id);
CREATE INDEX guideline_hits_person ON guideline_hits(person_id, id);
CREATE INDEX moderation_log_target ON moderation_log(target_person, id);
CREATE INDEX pending_sender ON pending(sender_id, id);
-- What the retention jobs look for, each run, without scanning a table.
CREATE INDEX access_tokens_expires ON access_tokens(expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX access_tokens_revoked ON access_tokens(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX visits_at ON visits(at);
CREATE INDEX invitations_expires ON invitations(expires_at);
CREATE INDEX outbox_done ON outbox(coalesce(sent_at, failed_at))
    WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
CREATE INDEX workspace_members_removed ON workspace_members(removed_at)
    WHERE removed_at IS NOT NULL AND erased_at IS NULL;

-- Each erasure: who asked (the person, an admin, the grace job), when,
-- the workspace's content policy and what was removed, counted. Nothing
-- that was erased, not even the erased person's id: the pseudonym is the
-- only link, and it leads nowhere.
CREATE TABLE erasures (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid REFERENCES workspaces(id) ON DELETE CASCADE, -- NULL: the account
    pseudonym_id  uuid REFERENCES people(id) ON DELETE SET NULL,
    actor_id      uuid REFERENCES people(id) ON DELETE SET NULL,
    via           text NOT NULL CHECK (via IN ('self', 'admin', 'grace')),
    reason        text CHECK (length(reason) <= 500),
    policy        text NOT NULL,
    counts        jsonb NOT NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX erasures_ws ON erasures(workspace_id, id);

-- Each export: who, whom, when, and the workspace it was limited to.
CREATE TABLE export_log (
    id            bigserial PRIMARY KEY,
    workspace_id  uuid REFERENCES workspaces(id) ON DELETE CASCADE, -- NULL: everything (own)
    actor_id      uuid REFERENCES people(id) ON DELETE SET NULL,
    subject_id    uuid REFERENCES people(id) ON DELETE SET NULL,
    at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX export_log_ws ON export_log(workspace_id, id);

-- Retention walks each room's log in seq order (created_at never decreases
-- along seq, 008), so everything up to purged_seq is already done. A table
-- of its own: the rooms row is the batcher's seq lock, which a retention
-- batch must never hold.
CREATE TABLE room_retention (
    room_id     uuid PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    purged_seq  bigint NOT NULL DEFAULT 0
);

-- Erases person p from workspace w in the caller's transaction: a new
-- pseudonym takes their place in every row of the workspace that the
-- others' data needs (messages stay in their seqs, as stubs unless the
-- workspace keeps content), and everything else about them there goes:
-- receipts and votes (aggregates adjusted), held messages, guideline hits,
-- mutes, bans, room memberships, invitations and their outbox items,
-- tokens scoped to the workspace, visits. Returns the pseudonym's id and
-- the counts; NULL when p has no membership there to erase.
CREATE FUNCTION parley_erase_member(p uuid, w uuid, actor uuid, via text, reason text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    ps uuid := gen_random_uuid();
    label text := 'Former member ' || substr(replace(ps::text, '-', ''), 1, 4);
    pol text;
    em text;
    ph text;
    c jsonb := '{}';
    n bigint;
BEGIN
    PERFORM 1 FROM workspace_members m WHERE m.workspace_id = w AND m.person_id = p
        AND m.erased_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT ws.erasure_content INTO pol FROM workspaces ws WHERE ws.id = w;
    SELECT pe.email, pe.phone INTO em, ph FROM people pe WHERE pe.id = p;
    INSERT INTO people (id, display_name, pseudonym) VALUES (ps, label, true);

    -- votes and receipts, with the aggregates of the messages they were on
    WITH d AS (DELETE FROM likes x USING rooms r WHERE r.workspace_id = w
               AND x.room_id = r.id AND x.person_id = p RETURNING x.room_id, x.seq),
         g AS (SELECT room_id, seq, count(*) AS k FROM d GROUP BY 1, 2),
         u AS (UPDATE messages m SET like_count = greatest(m.like_count - g.k, 0),
               votes_v = m.votes_v + 1 FROM g WHERE m.room_id = g.room_id AND m.seq = g.seq
               RETURNING 1)
    SELECT (SELECT count(*) FROM d) INTO n FROM (SELECT count(*) FROM u) z;
    c := c || jsonb_build_object('likes', n);
    WITH d AS (DELETE FROM ratings x USING rooms r WHERE r.workspace_id = w
               AND x.room_id = r.id AND x.person_id = p RETURNING x.room_id, x.seq, x.stars),
         g AS (SELECT room_id, seq, count(*) AS k, sum(stars) AS s FROM d GROUP BY 1, 2),
         u AS (UPDATE messages m SET star_count = greatest(m.star_count - g.k, 0),
               star_sum = greatest(m.star_sum - g.s, 0), votes_v = m.votes_v + 1
               FROM g WHERE m.room_id = g.room_id AND m.seq = g.seq RETURNING 1)
    SELECT (SELECT count(*) FROM d) INTO n FROM (SELECT count(*) FROM u) z;
    c := c || jsonb_build_object('ratings', n);
    DELETE FROM seen x USING rooms r WHERE r.workspace_id = w AND x.room_id = r.id
        AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('seen', n);
    DELETE FROM read_state x USING rooms r WHERE r.workspace_id = w AND x.room_id = r.id
        AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('read_state', n);

    -- what they wrote: the rows stay in their seqs, under the pseudonym
    UPDATE messages m SET sender_id = ps,
        body = CASE
            WHEN m.kind = 'read' THEN replace(m.body, p::text, ps::text)
            WHEN pol = 'keep' THEN m.body
            WHEN m.kind = 'edit' THEN json_build_object('target',
                (m.body::json->>'target')::int8, 'body', '')::text
            WHEN m.kind IN ('message', 'entry', 'reply') THEN ''
            ELSE m.body END,
        deleted_at = CASE WHEN pol <> 'keep' AND m.kind IN ('message', 'entry', 'reply')
            THEN coalesce(m.deleted_at, now()) ELSE m.deleted_at END
      FROM rooms r WHERE r.workspace_id = w AND m.room_id = r.id AND m.sender_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('messages', n);
    -- a held message that was approved and later deleted keeps no text either
    DELETE FROM pending x USING rooms r WHERE r.workspace_id = w AND x.room_id = r.id
        AND x.sender_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('held', n);
    UPDATE pending x SET decided_by = ps FROM rooms r WHERE r.workspace_id = w
        AND x.room_id = r.id AND x.decided_by = p;
    DELETE FROM guideline_hits x WHERE x.workspace_id = w AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('guideline_hits', n);
    DELETE FROM mutes x WHERE x.workspace_id = w AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('mutes', n);
    UPDATE mutes x SET muted_by = ps WHERE x.workspace_id = w AND x.muted_by = p;
    DELETE FROM room_bans x USING rooms r WHERE r.workspace_id = w AND x.room_id = r.id
        AND x.person_id = p;
    UPDATE room_bans x SET banned_by = ps FROM rooms r WHERE r.workspace_id = w
        AND x.room_id = r.id AND x.banned_by = p;
    DELETE FROM room_members x USING rooms r WHERE r.workspace_id = w AND x.room_id = r.id
        AND x.person_id = p;
    -- the moderation log keeps what moderators did, about a pseudonym; the
    -- detail of an action on them may hold their text
    UPDATE moderation_log x SET target_person = ps, detail = NULL
        WHERE x.workspace_id = w AND x.target_person = p;
    UPDATE moderation_log x SET actor_id = ps WHERE x.workspace_id = w AND x.actor_id = p;
    UPDATE guideline_audit x SET actor_id = ps WHERE x.workspace_id = w AND x.actor_id = p;
    UPDATE guidelines x SET updated_by = ps WHERE x.workspace_id = w AND x.updated_by = p;
    UPDATE avatars x SET owner_id = NULL WHERE x.workspace_id = w AND x.owner_id = p;
    UPDATE avatars x SET created_by = ps WHERE x.workspace_id = w AND x.created_by = p;
    UPDATE workspaces x SET created_by = NULL WHERE x.id = w AND x.created_by = p;
    UPDATE workspace_members x SET superior_id = NULL
        WHERE x.workspace_id = w AND x.superior_id = p;
    UPDATE workspace_members x SET removed_by = ps WHERE x.workspace_id = w AND x.removed_by = p;
    UPDATE export_log x SET subject_id = ps WHERE x.workspace_id = w AND x.subject_id = p;
    UPDATE export_log x SET actor_id = ps WHERE x.workspace_id = w AND x.actor_id = p;
    UPDATE erasures x SET actor_id = ps WHERE x.workspace_id = w AND x.actor_id = p;

    -- invitations to them go (with their outbox items); those they sent
    -- name the pseudonym
    DELETE FROM invitations x WHERE x.workspace_id = w
        AND (x.redeemed_by = p OR x.email = em OR x.phone = ph);
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('invitations', n);
    UPDATE invitations x SET invited_by = ps WHERE x.workspace_id = w AND x.invited_by = p;
    UPDATE outbox o SET payload = jsonb_set(o.payload, '{invited_by}', to_jsonb(label))
        FROM invitations x WHERE x.workspace_id = w AND x.invited_by = ps
        AND o.invitation_id = x.id AND o.payload ? 'invited_by';
    DELETE FROM outbox o WHERE o.workspace_id = w AND (o.recipient = em OR o.recipient = ph);
    DELETE FROM access_tokens x WHERE x.workspace_id = w AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('tokens', n);
    DELETE FROM visits x WHERE x.workspace_id = w AND x.person_id = p;
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('visits', n);

    -- the membership becomes the pseudonym's, removed
    UPDATE workspace_members x SET person_id = ps, title = NULL, department = NULL,
        superior_id = NULL, removed_at = coalesce(x.removed_at, now()),
        removed_by = coalesce(x.removed_by, actor), erased_at = now()
        WHERE x.workspace_id = w AND x.person_id = p;
    INSERT INTO erasures (workspace_id, pseudonym_id, actor_id, via, reason, policy, counts)
        VALUES (w, ps, actor, via, reason, pol, c);
    RETURN jsonb_build_object('pseudonym', ps, 'name', label, 'counts', c);
END $$;

-- Erases the account of p: every workspace as above (including those they
-- were removed from), then their pending proofs, notices and the person
-- row itself (tokens, sign-in visits and the rest go by cascade). Returns
-- the counts per workspace; NULL when there is no such account.
CREATE FUNCTION parley_erase_account(p uuid) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    w uuid;
    em text;
    ph text;
    ws jsonb := '[]';
    n bigint;
BEGIN
    SELECT pe.email, pe.phone INTO em, ph FROM people pe
        WHERE pe.id = p AND NOT pe.pseudonym FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    FOR w IN SELECT m.workspace_id FROM workspace_members m WHERE m.person_id = p
             ORDER BY m.workspace_id LOOP
        ws := ws || jsonb_build_array(parley_erase_member(p, w, NULL, 'self', NULL)
                                      || jsonb_build_object('workspace', w));
    END LOOP;
    DELETE FROM verifications v WHERE v.person_id = p OR v.address = em OR v.address = ph;
    DELETE FROM outbox o WHERE o.recipient = em OR o.recipient = ph;
    SELECT count(*) INTO n FROM visits v WHERE v.person_id = p;
    DELETE FROM people pe WHERE pe.id = p;
    INSERT INTO erasures (workspace_id, via, policy, counts)
        VALUES (NULL, 'self', 'delete', jsonb_build_object('workspaces',
                jsonb_array_length(ws), 'visits', n));
    RETURN jsonb_build_object('workspaces', ws);
END $$;

-- One run of the retention jobs, at most `batch` rows of each kind, so a
-- run is a short transaction that never holds a room's seq lock (the rooms
-- row) and never blocks sends:
--   messages  each workspace's retention_days: bodies older than it become
--             stubs (the rows keep their seqs: history and recovery answer
--             with them), with their votes, seen rows and approved held
--             copies; read watermarks and other held messages that old go;
--   members   removed members are erased after the workspace's grace;
--   visits    visit-log rows older than visit_days;
--   tokens a day after they expired or were revoked, invitations a day
--             after they expired (used or not), outbox items a day after
--             they were acknowledged.
-- One gateway at a time (an advisory lock; the others skip the run).
-- Returns what it removed, by kind.
CREATE FUNCTION parley_retention(batch int, visit_days int) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    rm record;
    mb record;
    top bigint;
    left_ int := batch;
    n bigint;
    msgs bigint := 0;
    receipts bigint := 0;
    votes bigint := 0;
    held bigint := 0;
    members bigint := 0;
    c jsonb;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('parley_retention')) THEN
        RETURN '{}';
    END IF;
    FOR rm IN SELECT r.id, now() - make_interval(days => w.retention_days) AS cutoff,
                     coalesce(rr.purged_seq, 0) AS wm
                FROM rooms r JOIN workspaces w ON w.id = r.workspace_id
                LEFT JOIN room_retention rr ON rr.room_id = r.id
               WHERE w.retention_days IS NOT NULL AND r.last_seq > coalesce(rr.purged_seq, 0)
                 AND EXISTS (SELECT 1 FROM messages m WHERE m.room_id = r.id
                     AND m.seq = coalesce(rr.purged_seq, 0) + 1
                     AND m.created_at < now() - make_interval(days => w.retention_days))
    LOOP
        EXIT WHEN left_ <= 0;
        -- created_at never decreases along seq (008): the old rows are a prefix
        SELECT max(m.seq) INTO top FROM messages m WHERE m.room_id = rm.id
            AND m.seq > rm.wm AND m.seq <= rm.wm + left_ AND m.created_at < rm.cutoff;
        CONTINUE WHEN top IS NULL;
        DELETE FROM likes x WHERE x.room_id = rm.id AND x.seq > rm.wm AND x.seq <= top;
        GET DIAGNOSTICS n = ROW_COUNT;
        votes := votes + n;
        DELETE FROM ratings x WHERE x.room_id = rm.id AND x.seq > rm.wm AND x.seq <= top;
        GET DIAGNOSTICS n = ROW_COUNT;
        votes := votes + n;
        DELETE FROM seen x WHERE x.room_id = rm.id AND x.seq > rm.wm AND x.seq <= top;
        GET DIAGNOSTICS n = ROW_COUNT;
        receipts := receipts + n;
        DELETE FROM pending x WHERE x.room_id = rm.id AND x.seq > rm.wm AND x.seq <= top;
        GET DIAGNOSTICS n = ROW_COUNT;
        held := held + n;
        UPDATE messages m SET
            body = CASE WHEN m.kind = 'edit' THEN json_build_object('target',
                (m.body::json->>'target')::int8, 'body', '')::text ELSE '' END,
            deleted_at = CASE WHEN m.kind = 'edit' THEN m.deleted_at
                ELSE coalesce(m.deleted_at, now()) END,
            like_count = 0, star_count = 0, star_sum = 0
          WHERE m.room_id = rm.id AND m.seq > rm.wm AND m.seq <= top
            AND ((m.kind IN ('message', 'entry', 'reply')
                  AND (m.body <> '' OR m.deleted_at IS NULL OR m.like_count > 0
                       OR m.star_count > 0))
                 OR (m.kind = 'edit' AND m.body::json->>'body' <> ''));
        GET DIAGNOSTICS n = ROW_COUNT;
        msgs := msgs + n;
        INSERT INTO room_retention (room_id, purged_seq) VALUES (rm.id, top)
            ON CONFLICT (room_id) DO UPDATE SET purged_seq = EXCLUDED.purged_seq;
        left_ := left_ - (top - rm.wm)::int;
    END LOOP;
    DELETE FROM read_state x WHERE (x.room_id, x.person_id) IN (SELECT y.room_id, y.person_id
        FROM read_state y JOIN rooms r ON r.id = y.room_id
        JOIN workspaces w ON w.id = r.workspace_id WHERE w.retention_days IS NOT NULL
        AND y.at < now() - make_interval(days => w.retention_days) LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    receipts := receipts + n;
    DELETE FROM pending x WHERE x.id IN (SELECT y.id FROM pending y
        JOIN rooms r ON r.id = y.room_id JOIN workspaces w ON w.id = r.workspace_id
        WHERE w.retention_days IS NOT NULL
        AND y.created_at < now() - make_interval(days => w.retention_days) LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    held := held + n;

    -- an erasure is heavier than a row: a hundredth of the batch
    FOR mb IN SELECT m.workspace_id, m.person_id FROM workspace_members m
                JOIN workspaces w ON w.id = m.workspace_id
               WHERE m.erased_at IS NULL AND m.role <> 'avatar'
                 AND m.removed_at < now() - make_interval(days => w.member_grace_days)
               LIMIT greatest(batch / 100, 1)
    LOOP
        PERFORM parley_erase_member(mb.person_id, mb.workspace_id, NULL, 'grace', NULL);
        members := members + 1;
    END LOOP;

    c := jsonb_build_object('messages', msgs, 'receipts', receipts, 'votes', votes,
                            'held', held, 'members', members);
    DELETE FROM visits x WHERE x.id IN (SELECT y.id FROM visits y
        WHERE y.at < now() - make_interval(days => visit_days) ORDER BY y.at LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('visits', n);
    DELETE FROM access_tokens x WHERE x.hash IN ((SELECT y.hash FROM access_tokens y
        WHERE y.expires_at < now() - interval '1 day' LIMIT batch) UNION ALL
        (SELECT y.hash FROM access_tokens y WHERE y.revoked_at < now() - interval '1 day'
        LIMIT batch));
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('tokens', n);
    -- an invitation ends when it expires, used or not (its expiry bounds it)
    DELETE FROM invitations x WHERE x.id IN (SELECT y.id FROM invitations y
        WHERE y.expires_at < now() - interval '1 day' LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    c := c || jsonb_build_object('invitations', n);
    DELETE FROM outbox x WHERE x.id IN (SELECT y.id FROM outbox y
        WHERE (y.sent_at IS NOT NULL OR y.failed_at IS NOT NULL)
        AND coalesce(y.sent_at, y.failed_at) < now() - interval '1 day' LIMIT batch);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN c || jsonb_build_object('outbox', n);
END $$;
