-- 006: an address grants nothing until its owner proves it (issue 14).
-- Sign-up, an email or phone change and a resend each write a single-use,
-- expiring secret (stored hashed, like tokens) and an outbox item that
-- carries it; the account or the new address exists only once the secret
-- comes back. Redeeming an invitation binds a role to an existing account
-- only with that account's password or session.

-- When the address was proven; NULL: never. Only a proven address is
-- matched by an invitation to it or counts as a member's address.
ALTER TABLE people
    ADD COLUMN email_verified_at timestamptz,
    ADD COLUMN phone_verified_at timestamptz;

-- Accounts from before: those made by the operator (no password: parleyd
-- admin) and those that redeemed an invitation sent to their address have
-- proven it; self-made ones have not and must verify (resend).
UPDATE people pe SET email_verified_at = now()
 WHERE email IS NOT NULL AND NOT is_avatar
   AND (password_hash IS NULL OR EXISTS (SELECT 1 FROM invitations i
        WHERE i.redeemed_by = pe.id AND i.email = pe.email));
UPDATE people pe SET phone_verified_at = now()
 WHERE phone IS NOT NULL AND NOT is_avatar
   AND EXISTS (SELECT 1 FROM invitations i WHERE i.redeemed_by = pe.id AND i.phone = pe.phone);

-- An avatar is a bot of one workspace: an address on it could be matched by
-- an invitation and hand a person's role to whoever holds its token.
UPDATE people SET email = NULL, phone = NULL WHERE is_avatar;
ALTER TABLE people
    ADD CONSTRAINT people_avatar_no_address CHECK (NOT is_avatar OR (email IS NULL AND phone IS NULL));

-- A pending proof of an address. signup: no account yet (it is made from
-- this row when the secret comes back, so nobody can hold an address by
-- signing up first); email, phone: a change of person_id's address.
CREATE TABLE verifications (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    purpose        text NOT NULL CHECK (purpose IN ('signup', 'email', 'phone')),
    hash           bytea NOT NULL UNIQUE CHECK (length(hash) = 32),
    person_id      uuid REFERENCES people(id) ON DELETE CASCADE,
    address        text NOT NULL CHECK (length(address) <= 320),
    -- signup only: the argon2id hash and the names given at sign-up
    password_hash  text,
    profile        jsonb NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    CHECK ((purpose = 'signup') = (person_id IS NULL))
);
CREATE INDEX verifications_address ON verifications(address) WHERE used_at IS NULL;
CREATE INDEX verifications_person ON verifications(person_id) WHERE used_at IS NULL;

-- Verification items and notices belong to no workspace.
ALTER TABLE outbox
    ALTER COLUMN workspace_id DROP NOT NULL,
    ADD COLUMN verification_id uuid REFERENCES verifications(id) ON DELETE CASCADE;
