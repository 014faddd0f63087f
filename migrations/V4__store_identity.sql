-- The object store this database's assets live in: the id held by the marker the server
-- wrote into the store (`<key_prefix>/.store-id`). A server whose store holds another id, or
-- none, refuses to become ready instead of signing URLs into the wrong store. One row at most.
CREATE TABLE store_identity (
    singleton   boolean     PRIMARY KEY DEFAULT true
                            CONSTRAINT store_identity_singleton_check CHECK (singleton),
    store_id    uuid        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
