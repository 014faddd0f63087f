-- Delegated upload tokens: the asset records the token that created it (a token may touch
-- only its own assets), and each token's issued uploads are counted against its
-- max_uploads. Rows of expired tokens are removed by the sweeper.
ALTER TABLE assets ADD COLUMN upload_token_id uuid;
CREATE INDEX assets_upload_token_idx ON assets (upload_token_id, id) WHERE upload_token_id IS NOT NULL;

CREATE TABLE upload_token_usage (
    token_id uuid PRIMARY KEY,
    issued integer NOT NULL CHECK (issued >= 0),
    expires_at timestamptz NOT NULL
);
