-- Multipart uploads may sign each part with the SHA-256 the client declares for it
-- (`part_checksums`): storage then refuses a part whose bytes differ, and completion checks
-- the parts storage holds against these declarations instead of reading the object back.
--
-- `upload_parts` holds each declared part until the asset completes; the asset then records
-- the parts' composite checksum (what S3 reports for such an object) and their size.
ALTER TABLE assets
    ADD COLUMN part_checksums boolean NOT NULL DEFAULT false,
    ADD COLUMN composite_sha256 text,
    ADD COLUMN composite_part_size bigint,
    ADD CONSTRAINT assets_composite_check
        CHECK ((composite_sha256 IS NULL) = (composite_part_size IS NULL));

CREATE TABLE upload_parts (
    asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    part_number integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    checksum_sha256 text NOT NULL,
    PRIMARY KEY (asset_id, part_number)
);
