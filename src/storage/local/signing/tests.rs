//! What a signature binds, and what it refuses.

use super::*;

const NOW: i64 = 1_700_000_000;

fn upload() -> SignedRequest {
    SignedRequest {
        method: SignedMethod::Put,
        bucket: "assets".into(),
        key: "uploads/anonymous/id/cat.png".into(),
        expires: NOW + 60,
        max_size: Some(1000),
        length: Some(10),
        content_type: Some("image/png".into()),
        checksum_sha256: None,
        part: None,
    }
}

fn part() -> SignedRequest {
    SignedRequest {
        max_size: None,
        length: Some(5 * 1024 * 1024),
        content_type: None,
        part: Some(SignedPart {
            number: 3,
            upload_id: "0123456789abcdef0123456789abcdef".into(),
        }),
        ..upload()
    }
}

fn parse(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn verify(
    signer: &UrlSigner,
    query: &HashMap<String, String>,
) -> Result<SignedRequest, SignatureError> {
    signer.verify(
        SignedMethod::Put,
        "assets",
        "uploads/anonymous/id/cat.png",
        query,
        NOW,
    )
}

#[test]
fn a_signed_url_verifies_and_yields_its_limits() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let query = parse(&signer.sign(&upload()));
    assert_eq!(verify(&signer, &query), Ok(upload()));
}

#[test]
fn tampering_with_any_signed_part_is_detected() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let query = parse(&signer.sign(&upload()));
    let tampered: &[(&str, Option<&str>, &str)] = &[
        ("max_size", Some("999999"), "raising the size limit"),
        ("length", Some("11"), "changing the declared length"),
        ("length", None, "dropping the declared length"),
        (
            "content_type",
            Some("text/html"),
            "changing the content type",
        ),
        ("checksum_sha256", Some("AAAA"), "adding a checksum"),
        (
            "expires",
            Some(&(NOW + 999).to_string()),
            "extending the expiry",
        ),
        ("signature", Some(&"0".repeat(64)), "forging the signature"),
    ];
    for (name, value, why) in tampered {
        let mut q = query.clone();
        match value {
            Some(v) => q.insert((*name).to_owned(), (*v).to_owned()),
            None => q.remove(*name),
        };
        assert_eq!(verify(&signer, &q), Err(SignatureError::Mismatch), "{why}");
    }
}

#[test]
fn another_key_method_or_object_is_refused() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let query = parse(&signer.sign(&upload()));
    let other = UrlSigner::new(b"x".repeat(32).as_slice());
    assert_eq!(
        verify(&other, &query),
        Err(SignatureError::Mismatch),
        "wrong key"
    );
    assert_eq!(
        signer.verify(
            SignedMethod::Get,
            "assets",
            "uploads/anonymous/id/cat.png",
            &query,
            NOW
        ),
        Err(SignatureError::Mismatch),
        "an upload URL is not a download URL"
    );
    assert_eq!(
        signer.verify(
            SignedMethod::Put,
            "assets",
            "uploads/anonymous/id/dog.png",
            &query,
            NOW
        ),
        Err(SignatureError::Mismatch),
        "the signature is for one object"
    );
}

#[test]
fn expired_and_unsigned_urls_are_refused() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let query = parse(&signer.sign(&upload()));
    assert_eq!(
        signer.verify(
            SignedMethod::Put,
            "assets",
            "uploads/anonymous/id/cat.png",
            &query,
            NOW + 61
        ),
        Err(SignatureError::Expired)
    );
    let mut unsigned = query.clone();
    unsigned.remove("signature");
    assert_eq!(verify(&signer, &unsigned), Err(SignatureError::Malformed));
    let mut garbled = query;
    garbled.insert("signature".into(), "not hex".into());
    assert_eq!(verify(&signer, &garbled), Err(SignatureError::Malformed));
}

#[test]
fn a_part_url_binds_its_part_number_upload_and_size() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let query = parse(&signer.sign(&part()));
    assert_eq!(query["partNumber"], "3");
    assert_eq!(query["uploadId"], "0123456789abcdef0123456789abcdef");
    assert_eq!(verify(&signer, &query), Ok(part()));
    let tampered: &[(&str, Option<&str>, &str)] = &[
        ("partNumber", Some("4"), "another part"),
        ("uploadId", Some(&"f".repeat(32)), "another upload"),
        ("length", Some("6291456"), "another part size"),
        ("length", None, "no size at all"),
    ];
    for (name, value, why) in tampered {
        let mut q = query.clone();
        match value {
            Some(v) => q.insert((*name).to_owned(), (*v).to_owned()),
            None => q.remove(*name),
        };
        assert_eq!(verify(&signer, &q), Err(SignatureError::Mismatch), "{why}");
    }
    let mut whole = query.clone();
    whole.remove("partNumber");
    whole.remove("uploadId");
    assert_eq!(
        verify(&signer, &whole),
        Err(SignatureError::Mismatch),
        "a part URL is not a URL for the whole object"
    );
    let mut half = query;
    half.remove("uploadId");
    assert_eq!(
        verify(&signer, &half),
        Err(SignatureError::Malformed),
        "a part number needs its upload"
    );
}

#[test]
fn form_fields_verify_only_as_a_post() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let form = SignedRequest {
        method: SignedMethod::Post,
        length: None,
        ..upload()
    };
    let fields: HashMap<String, String> = signer
        .signed_params(&form)
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    let check = |method| {
        signer.verify(
            method,
            "assets",
            "uploads/anonymous/id/cat.png",
            &fields,
            NOW,
        )
    };
    assert_eq!(check(SignedMethod::Post), Ok(form.clone()));
    assert_eq!(
        check(SignedMethod::Put),
        Err(SignatureError::Mismatch),
        "form fields are not a PUT URL"
    );
    assert_eq!(
        fields.keys().filter(|name| *name == "signature").count(),
        1,
        "the signature travels as a field"
    );
}

#[test]
fn control_characters_in_any_parameter_are_refused() {
    let signer = UrlSigner::new(b"k".repeat(32).as_slice());
    let mut query = parse(&signer.sign(&upload()));
    query.insert("checksum_sha256".into(), "\npart:1:x".into());
    assert_eq!(verify(&signer, &query), Err(SignatureError::Malformed));
}
