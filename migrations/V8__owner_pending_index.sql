-- An owner's pending assets in id order: `GET /api/assets?status=pending` (the uploads still
-- to finish) reads only these, however many complete assets the owner holds. Pending rows
-- are few (the sweeper removes them once expired), so the index stays small and costs one
-- small insert per upload; a completed asset leaves it.
CREATE INDEX assets_owner_pending_idx ON assets (owner, id) WHERE status = 'pending';
