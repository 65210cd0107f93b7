-- Corral schema v8 (SQLite): what the server knows of an instance's control channel, so an
-- instance whose channel closed and that neither reconnects nor pings within a grace period
-- shows ConnectionLost at once instead of after the ping timeout. channel_opened_at is the
-- open of the latest channel (a close only counts for the channel it ends); channel_closed_at
-- is set when that channel closes and cleared when another opens. Keep in step with
-- migrations/postgres/0008_channel_state.sql.
ALTER TABLE managed_instances ADD COLUMN channel_opened_at INTEGER;
ALTER TABLE managed_instances ADD COLUMN channel_closed_at INTEGER;
