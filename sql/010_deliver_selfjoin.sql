-- 010: delivering the outbox (issue 20) and self-service join by company
-- domain.

-- The language of what Parley sends on the workspace's behalf (the
-- deliverer's templates); an ISO 639-1 code. A language the deliverer has
-- no templates for falls back to its default.
ALTER TABLE workspaces
    ADD COLUMN language  text NOT NULL DEFAULT 'en' CHECK (language ~ '^[a-z]{2}$'),
    -- People whose proven email address is in allowed_domains may join on
    -- their own (with the member role). Off by default: opening a
    -- workspace to a whole company is its owner's decision. With no
    -- allowed domains nobody matches.
    ADD COLUMN self_join boolean NOT NULL DEFAULT false;

-- Finding the workspaces open to an address's domain without a scan of
-- every workspace.
CREATE INDEX workspaces_self_join_domains ON workspaces USING gin (allowed_domains)
    WHERE self_join;
