//! The signing key of a development server that was given none: generated once into
//! `<root>/.signing-key` (readable by its owner only) and read back on later starts, so
//! signed URLs survive a restart.

use std::path::Path;

use anyhow::Context;

/// File under the root holding the generated development signing key.
const GENERATED_KEY_FILE: &str = ".signing-key";

/// The development signing key: read from `<root>/.signing-key`, generated on first use.
pub(super) fn load_or_create(root: &Path) -> anyhow::Result<Vec<u8>> {
    let path = root.join(GENERATED_KEY_FILE);
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().as_bytes().to_vec());
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    write_private_file(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "storage.local.signing_key is not set: generated a development key; set the key explicitly outside development"
    );
    Ok(key.into_bytes())
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}
