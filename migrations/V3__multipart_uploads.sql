-- Large files are uploaded in parts: the storage service's multipart upload id and the part
-- size the parts were signed with, while the upload is in progress.
ALTER TABLE assets
    ADD COLUMN multipart_upload_id text,
    ADD COLUMN part_size bigint CONSTRAINT assets_part_size_check CHECK (part_size > 0),
    ADD CONSTRAINT assets_multipart_check CHECK ((multipart_upload_id IS NULL) = (part_size IS NULL));
