//! Where configuration comes from, lowest layer first: the built-in defaults
//! (`Settings::default`, the only place a default is written, and the built-in profiles'
//! files of `config/` as they were when the binary was built, so a binary started anywhere
//! behaves as it does in the checkout), then the files of the configuration directory, then
//! an explicit `--config` file. The environment goes on top of these (see [`super::Settings::load`]).
//!
//! What the user names must exist: an explicit directory, an explicit `--config` file, and
//! the file of a profile that is not built in. What they did not name may be absent: the
//! default directory `./config` and, for the built-in profiles, their files in it.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};

use super::{ConfigError, DEFAULT_PROFILE, PROFILE_ENV, Settings};

/// Directory searched for `default.toml` and `<profile>.toml` unless another is named.
pub const DEFAULT_CONFIG_DIR: &str = "config";

/// The profiles whose files are built into the binary.
pub const BUILT_IN_PROFILES: [&str; 2] = ["development", "production"];

/// The built-in profiles' files: what each changes from `Settings::default`.
const BUILT_IN_PROFILE_FILES: [(&str, &str); 2] = [
    ("development", include_str!("../../config/development.toml")),
    ("production", include_str!("../../config/production.toml")),
];

/// What the caller named; `None` means "the default".
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    /// A configuration directory (`--config-dir`, `UPLOADER_CONFIG_DIR`); must exist.
    pub config_dir: Option<&'a Path>,
    /// The profile (`UPLOADER_PROFILE`); [`DEFAULT_PROFILE`] when unset.
    pub profile: Option<&'a str>,
    /// A file applied over the directory's files (`--config`); must exist.
    pub extra_file: Option<&'a Path>,
}

/// The files of `sources` merged over the built-in defaults, a description of each layer
/// used, and the profile's name.
pub(super) fn layered(
    sources: &Sources<'_>,
) -> Result<(Figment, Vec<String>, String), ConfigError> {
    let profile = sources.profile.unwrap_or(DEFAULT_PROFILE);
    check_profile_name(profile)?;
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    let mut layers = vec!["built-in defaults".to_owned()];
    let built_in = BUILT_IN_PROFILE_FILES
        .iter()
        .find(|(name, _)| *name == profile);
    if let Some((_, text)) = built_in {
        figment = figment.merge(Toml::string(text));
        layers.push(format!("built-in profile {profile}"));
    }

    let dir = config_dir(sources.config_dir)?;
    if let Some(dir) = &dir {
        let default_file = dir.join("default.toml");
        if default_file.is_file() {
            figment = figment.merge(Toml::file_exact(&default_file));
            layers.push(describe(&default_file));
        }
        let profile_file = dir.join(format!("{profile}.toml"));
        if profile_file.is_file() {
            figment = figment.merge(Toml::file_exact(&profile_file));
            layers.push(describe(&profile_file));
        } else if built_in.is_none() {
            return Err(unknown_profile(profile, Some(&profile_file)));
        }
    } else if built_in.is_none() {
        return Err(unknown_profile(profile, None));
    }

    if let Some(file) = sources.extra_file {
        if !file.is_file() {
            return Err(ConfigError::Load(format!(
                "--config file {} does not exist",
                file.display()
            )));
        }
        figment = figment.merge(Toml::file_exact(file));
        layers.push(describe(file));
    }
    Ok((figment, layers, profile.to_owned()))
}

fn check_profile_name(profile: &str) -> Result<(), ConfigError> {
    let simple = !profile.is_empty()
        && profile
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if simple {
        Ok(())
    } else {
        Err(ConfigError::Load(format!(
            "{PROFILE_ENV} must be a simple name such as `production`, got {profile:?}"
        )))
    }
}

/// The directory to read files from: the named one (which must exist), else `./config` when
/// it exists, else none.
fn config_dir(named: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    match named {
        Some(dir) if dir.is_dir() => Ok(Some(dir.to_owned())),
        Some(dir) => Err(ConfigError::Load(format!(
            "the configuration directory {} (--config-dir / UPLOADER_CONFIG_DIR) does not exist",
            dir.display()
        ))),
        None => {
            let dir = Path::new(DEFAULT_CONFIG_DIR);
            Ok(dir.is_dir().then(|| dir.to_owned()))
        }
    }
}

fn unknown_profile(profile: &str, expected_file: Option<&Path>) -> ConfigError {
    let built_in = BUILT_IN_PROFILES.join(", ");
    let file = match expected_file {
        Some(file) => format!("there is no {}", file.display()),
        None => format!("there is no configuration directory ./{DEFAULT_CONFIG_DIR}"),
    };
    ConfigError::Load(format!(
        "{PROFILE_ENV}={profile} is not a built-in profile ({built_in}) and {file}"
    ))
}

/// A file's path as given, with its absolute form when that differs.
fn describe(file: &Path) -> String {
    match std::path::absolute(file) {
        Ok(absolute) if absolute != file => format!("{} ({})", file.display(), absolute.display()),
        _ => file.display().to_string(),
    }
}
