-- 012: the message log and the tables that grow with it, hash-partitioned
-- by room (issue 19). Every statement of the hot path names one room
-- (history, replay, the batcher's seq allocation and insert, receipts and
-- votes), so each touches one partition: its indexes stay a fraction of
-- the whole, and vacuum and index maintenance work per partition.
--
-- Partitioned: messages (one row per message and event), seen, likes and
-- ratings (rows per message and person). Their primary keys already lead
-- with room_id, as a unique index on a partitioned table must include the
-- partition key. Not partitioned: read_state (a row per person and room,
-- not per message), pending (held messages only, keyed by a global id),
-- guideline_hits (per rule hit, read by workspace), the small rest.
--
-- The partition count comes from `parleyd migrate --partitions N`, which
-- sets parley.partitions for this transaction (default 8). Hash partitions
-- cannot be split later without rewriting the table, so choose it for the
-- size the deployment expects; a power of two keeps a later doubling
-- (detach, re-create each as two) possible.
--
-- Each table is rebuilt: the old one renamed aside, a partitioned table
-- made LIKE it (columns, defaults, NOT NULL and CHECK constraints), the
-- rows copied, then its primary key, unique and foreign key constraints,
-- its other indexes and its triggers re-created from the catalogue under
-- their old names, and the old table dropped. No sequence is owned by
-- these tables (seqs come from rooms.last_seq) and no grants are made on
-- them (the server connects as the owner). All in this migration's one
-- transaction: it either happens whole or not at all.
DO $$
DECLARE
    parts int := coalesce(nullif(current_setting('parley.partitions', true), ''), '8')::int;
    t text;
    i int;
    idx record;
    defs text[];
    names text[];
    cons text[];
    trigs text[];
    d text;
BEGIN
    IF parts < 1 OR parts > 1024 THEN
        RAISE EXCEPTION 'parley.partitions must be between 1 and 1024, not %', parts;
    END IF;
    FOREACH t IN ARRAY ARRAY['messages', 'seen', 'likes', 'ratings'] LOOP
        -- already partitioned (a database made by hand): nothing to do
        CONTINUE WHEN (SELECT c.relkind FROM pg_class c
                        WHERE c.oid = format('public.%I', t)::regclass) = 'p';
        -- the definitions, taken while they still name the table "t"
        SELECT coalesce(array_agg(pg_get_indexdef(x.indexrelid) ORDER BY x.indexrelid), '{}'),
               coalesce(array_agg(c.relname::text ORDER BY x.indexrelid), '{}')
          INTO defs, names
          FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
         WHERE x.indrelid = format('public.%I', t)::regclass
           AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid
                           AND k.conrelid = x.indrelid);
        SELECT coalesce(array_agg(format('ALTER TABLE public.%I ADD CONSTRAINT %I %s', t,
                                         k.conname, pg_get_constraintdef(k.oid))
                                  ORDER BY k.contype DESC, k.conname), '{}')
          INTO cons
          FROM pg_constraint k
         WHERE k.conrelid = format('public.%I', t)::regclass AND k.contype IN ('p', 'u', 'f');
        SELECT coalesce(array_agg(pg_get_triggerdef(g.oid) ORDER BY g.tgname), '{}')
          INTO trigs
          FROM pg_trigger g
         WHERE g.tgrelid = format('public.%I', t)::regclass AND NOT g.tgisinternal;

        EXECUTE format('ALTER TABLE public.%I RENAME TO %I', t, t || '_unpartitioned');
        EXECUTE format('CREATE TABLE public.%I (LIKE public.%I INCLUDING DEFAULTS'
                       ' INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS'
                       ' INCLUDING STATISTICS) PARTITION BY HASH (room_id)',
                       t, t || '_unpartitioned');
        FOR i IN 0 .. parts - 1 LOOP
            EXECUTE format('CREATE TABLE public.%I PARTITION OF public.%I'
                           ' FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                           t || '_p' || i, t, parts, i);
        END LOOP;
        -- rows first, indexes after: one sort per index instead of a
        -- b-tree insert per row
        EXECUTE format('INSERT INTO public.%I SELECT * FROM public.%I', t, t || '_unpartitioned');
        EXECUTE format('DROP TABLE public.%I', t || '_unpartitioned');
        FOREACH d IN ARRAY cons LOOP
            EXECUTE d;
        END LOOP;
        FOREACH d IN ARRAY defs LOOP
            EXECUTE d;
        END LOOP;
        FOREACH d IN ARRAY trigs LOOP
            EXECUTE d;
        END LOOP;
        -- the planner's statistics for the new tables, before the first send
        EXECUTE format('ANALYZE public.%I', t);
    END LOOP;
END $$;

-- The purge deletes a batch by ctid (a TID scan: no index walk per row).
-- On a partitioned table a ctid names a row only within its partition
-- (every partition has a row (0,1)), so a batch of one workspace's ctids
-- taken from the parent would also delete other workspaces' rows at the
-- same places in other partitions. Each partition is now purged on its
-- own, in turn; a plain table is its own one "partition". A table is
-- done when its partitions together removed fewer rows than allowed, so
-- the order of steps holds as in 011. Otherwise as in 011.
CREATE OR REPLACE FUNCTION parley_ws_purge(batch int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    w uuid;
    left_ bigint := batch;
    n bigint;
    k bigint;
    lim bigint;
    q text;
    rel regclass;
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
        k := 0;
        FOR rel IN SELECT t.oid::regclass FROM pg_class t
                    WHERE t.oid = format('public.%I', q)::regclass AND t.relkind = 'r'
                   UNION ALL
                   SELECT i.inhrelid::regclass FROM pg_inherits i
                    WHERE i.inhparent = format('public.%I', q)::regclass
        LOOP
            EXIT WHEN left_ <= 0;
            EXECUTE format('DELETE FROM %s x WHERE x.ctid = ANY(ARRAY(SELECT y.ctid FROM %s y'
                           ' WHERE y.room_id IN (SELECT r.id FROM rooms r'
                           ' WHERE r.workspace_id = $1) LIMIT $2))', rel, rel) USING w, left_;
            GET DIAGNOSTICS n = ROW_COUNT;
            left_ := left_ - n;
            k := k + n;
        END LOOP;
        IF k > 0 THEN c := c || jsonb_build_object(q, k); END IF;
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
