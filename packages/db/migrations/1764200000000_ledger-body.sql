-- Up Migration

-- The message as it was written to the backend (the outbox body: role, content, name, created_at,
-- metadata), already redacted by the API. It lets `memfleet backfill` write the ledger's messages
-- to a new backend. Set on written rows only; erasure deletes the row and so the body with it.
ALTER TABLE ledger ADD COLUMN body jsonb;

-- Down Migration

ALTER TABLE ledger DROP COLUMN body;
