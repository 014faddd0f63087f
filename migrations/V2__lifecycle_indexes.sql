-- Listing an owner's assets in a stable order (keyset pagination on id, a UUIDv7).
CREATE INDEX assets_owner_id_idx ON assets (owner, id);

-- The sweeper's question: which pending uploads expired longest ago?
CREATE INDEX assets_pending_expiry_idx ON assets (upload_expires_at) WHERE status = 'pending';
