-- Corral schema v7 (PostgreSQL): a rotated instance key stays usable only for a short grace
-- window. previous_key_expires_at is when previous_public_key stops being accepted; both are
-- cleared once the new key is used. Keep in step with migrations/sqlite/0007_key_rotation.sql.
ALTER TABLE managed_instances ADD COLUMN previous_key_expires_at TIMESTAMPTZ;
-- Keys rotated before this version have no window: they are no longer accepted.
UPDATE managed_instances SET previous_public_key = NULL WHERE previous_public_key IS NOT NULL;
