//! Form uploads to the local backend: the `multipart/form-data` `POST` an S3 POST policy
//! accepts (every field the server issued, then the file in a field named `file`, last), with
//! the server's HMAC in place of the policy signature.
//!
//! The form is parsed while it streams (multra, the parser salvo itself uses), so a file of
//! any size goes straight to disk. The fields carry the key, expiry, size limit
//! (`max_size`: S3's `content-length-range` of 0 to `max_size`), signed content type and
//! checksum, and the signature over them; `Content-Type` is the type the upload declares,
//! which must equal the signed one when one was signed (without that field, the file part's
//! own `Content-Type` counts). Fields the server did not issue, a field twice and anything
//! after `file` are refused, as S3 refuses fields its policy does not name.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use multra::{Constraints, Field, Multipart, SizeLimit};

use super::receive::UploadRejection;
use super::{LocalStorage, SignedMethod, SignedRequest, expires_at};
use crate::storage::{SignedUpload, StoredObject, UploadSpec};

/// The field holding the storage key.
const KEY: &str = "key";
/// The field with the content type the upload declares (S3's name for it).
const CONTENT_TYPE: &str = "Content-Type";
/// The field holding the file; it must come last.
const FILE: &str = "file";
/// The signed fields, as [`super::UrlSigner::signed_params`] names them.
const SIGNED: [&str; 6] = [
    "expires",
    "max_size",
    "length",
    "content_type",
    "checksum_sha256",
    "signature",
];
/// Longest value of a field other than `file` (keys are at most ~1.2 KiB).
const FIELD_LIMIT: u64 = 8 * 1024;

impl LocalStorage {
    /// The form that uploads `spec`: a `POST` to the bucket's URL with these fields.
    pub(super) fn presign_form(&self, spec: &UploadSpec<'_>) -> SignedUpload {
        let request = SignedRequest {
            method: SignedMethod::Post,
            bucket: self.bucket.clone(),
            key: spec.storage_key.to_owned(),
            expires: expires_at(spec.expires_in),
            max_size: Some(spec.max_size),
            length: spec.content_length,
            content_type: spec.content_type.map(|c| c.as_str().to_owned()),
            checksum_sha256: spec.checksum_sha256.map(|c| c.as_str().to_owned()),
            part: None,
        };
        let mut fields: BTreeMap<String, String> = self
            .signer
            .signed_params(&request)
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        fields.insert(KEY.to_owned(), request.key.clone());
        if let Some(content_type) = request.content_type {
            fields.insert(CONTENT_TYPE.to_owned(), content_type);
        }
        SignedUpload::Post {
            url: self.base_url.trim_end_matches('/').to_owned(),
            fields,
        }
    }

    /// Receives a form upload whose request has `content_type`: checks the fields, streams
    /// the file to disk within the signed limits, and publishes it only when nothing follows.
    /// Returns the storage key the form named, and what was stored.
    pub async fn receive_form<S>(
        &self,
        content_type: Option<&str>,
        body: S,
    ) -> Result<(String, StoredObject), UploadRejection>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let boundary = content_type
            .and_then(|value| multra::parse_boundary(value).ok())
            .ok_or_else(|| malformed("the body must be multipart/form-data"))?;
        let limits = SizeLimit::new()
            .per_field(FIELD_LIMIT)
            .for_field(FILE, u64::MAX);
        let mut form =
            Multipart::with_constraints(body, boundary, Constraints::new().size_limit(limits));
        let (fields, file) = read_fields(&mut form).await?;
        let signed = self.verify_form(&fields)?;
        let declared = fields.get(CONTENT_TYPE).cloned().or_else(|| {
            file.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let bytes = file.map_err(std::io::Error::other);
        let staged = self.stage(&signed, declared.as_deref(), bytes).await?;
        match form.next_field().await {
            Ok(None) => {
                let stored = staged.commit().await?;
                Ok((signed.key, stored))
            }
            Ok(Some(field)) => {
                staged.discard().await;
                Err(malformed(format!(
                    "the field `{}` comes after `{FILE}`; the file must be the last field",
                    field.name().unwrap_or_default()
                )))
            }
            Err(error) => {
                staged.discard().await;
                Err(form_error(error))
            }
        }
    }

    /// The request the form's fields sign.
    fn verify_form(
        &self,
        fields: &HashMap<String, String>,
    ) -> Result<SignedRequest, UploadRejection> {
        let key = fields
            .get(KEY)
            .ok_or_else(|| malformed(format!("the form has no `{KEY}` field")))?;
        let signed: HashMap<String, String> = fields
            .iter()
            .filter(|(name, _)| SIGNED.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        Ok(self.verify(SignedMethod::Post, key, &signed)?)
    }
}

/// The fields before `file`, and the `file` field itself.
async fn read_fields(
    form: &mut Multipart<'static>,
) -> Result<(HashMap<String, String>, Field<'static>), UploadRejection> {
    let mut fields = HashMap::new();
    loop {
        let field = form
            .next_field()
            .await
            .map_err(form_error)?
            .ok_or_else(|| malformed(format!("the form has no `{FILE}` field")))?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == FILE {
            return Ok((fields, field));
        }
        if !(name == KEY || name == CONTENT_TYPE || SIGNED.contains(&name.as_str())) {
            return Err(malformed(format!(
                "the form field `{name}` is not one the server issued"
            )));
        }
        let value = field.text().await.map_err(form_error)?;
        if fields.insert(name.clone(), value).is_some() {
            return Err(malformed(format!("the form field `{name}` appears twice")));
        }
    }
}

fn malformed(detail: impl Into<String>) -> UploadRejection {
    UploadRejection::MalformedForm(detail.into())
}

fn form_error(error: multra::Error) -> UploadRejection {
    match error {
        multra::Error::StreamReadFailed(cause) => {
            UploadRejection::BodyRead(std::io::Error::other(cause))
        }
        multra::Error::FieldSizeExceeded { field_name, .. } => malformed(format!(
            "the form field `{}` is longer than {FIELD_LIMIT} bytes",
            field_name.unwrap_or_default()
        )),
        other => malformed(format!("the form is malformed: {other}")),
    }
}
