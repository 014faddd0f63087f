-- One row per asset: who owns it, where its bytes live, and what the uploader promised.
CREATE TABLE assets (
    id                uuid        PRIMARY KEY,
    owner             text        NOT NULL,
    object_key        text        NOT NULL,
    storage_key       text        NOT NULL,
    bucket            text        NOT NULL,
    status            text        NOT NULL DEFAULT 'pending'
                                  CONSTRAINT assets_status_check CHECK (status IN ('pending', 'complete')),
    content_type      text,
    content_length    bigint      CONSTRAINT assets_content_length_check CHECK (content_length >= 0),
    checksum_sha256   text,
    stored_size       bigint,
    created_at        timestamptz NOT NULL DEFAULT now(),
    upload_expires_at timestamptz NOT NULL,
    completed_at      timestamptz,
    CONSTRAINT assets_owner_object_key_key UNIQUE (owner, object_key),
    CONSTRAINT assets_storage_key_key UNIQUE (bucket, storage_key),
    CONSTRAINT assets_completed_at_check CHECK ((status = 'complete') = (completed_at IS NOT NULL))
);
