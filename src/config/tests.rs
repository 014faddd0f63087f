use std::fs;
use std::path::Path;

use secrecy::ExposeSecret;

use super::*;

/// A config directory with `default.toml` and one profile file.
fn config_dir(default: &str, profile: &str, profile_toml: &str) -> tempdir::Dir {
    let dir = tempdir::Dir::new();
    fs::write(dir.path().join("default.toml"), default).unwrap();
    fs::write(dir.path().join(format!("{profile}.toml")), profile_toml).unwrap();
    dir
}

fn load(dir: &tempdir::Dir, profile: &str, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load_from(
        dir.path(),
        None,
        profile,
        RawEnv::from_pairs(env.iter().copied()),
    )
}

const DB: (&str, &str) = ("UPLOADER_DATABASE__URL", "postgres://u:p@localhost/db");

#[test]
fn built_in_defaults_apply_when_nothing_is_configured() {
    let dir = config_dir("", "development", "");
    let settings = load(&dir, "development", &[DB]).unwrap();
    assert_eq!(settings.server.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.storage.backend, StorageBackend::Local);
    assert_eq!(settings.storage.bucket, "assets");
    assert_eq!(settings.storage.key_prefix, "uploads");
    assert_eq!(settings.uploads.default_expires_in, 60);
    assert_eq!(settings.uploads.max_expires_in, 1800);
    assert_eq!(settings.uploads.max_size, 5 * 1024 * 1024 * 1024);
    assert!(settings.database.migrate_on_start);
    assert_eq!(settings.profile, "development");
}

#[test]
fn profile_file_overrides_default_file_and_env_overrides_both() {
    let dir = config_dir(
        "[storage]\nbucket = \"from-default\"\nkey_prefix = \"from-default\"\n[uploads]\nmax_size = 10\n",
        "staging",
        "[storage]\nbucket = \"from-profile\"\n",
    );
    let settings = load(&dir, "staging", &[DB, ("UPLOADER_UPLOADS__MAX_SIZE", "99")]).unwrap();
    assert_eq!(
        settings.storage.bucket, "from-profile",
        "profile beats default.toml"
    );
    assert_eq!(
        settings.storage.key_prefix, "from-default",
        "untouched keys keep the file value"
    );
    assert_eq!(settings.uploads.max_size, 99, "env beats both files");
}

#[test]
fn the_explicit_config_file_sits_between_profile_and_env() {
    let dir = config_dir("", "development", "[storage]\nbucket = \"from-profile\"\n");
    let extra = dir.path().join("extra.toml");
    fs::write(
        &extra,
        "[storage]\nbucket = \"from-extra\"\nkey_prefix = \"extra\"\n",
    )
    .unwrap();
    let env = RawEnv::from_pairs([DB, ("UPLOADER_STORAGE__KEY_PREFIX", "from-env")]);
    let settings = Settings::load_from(dir.path(), Some(&extra), "development", env).unwrap();
    assert_eq!(settings.storage.bucket, "from-extra");
    assert_eq!(settings.storage.key_prefix, "from-env");
}

#[test]
fn numeric_looking_env_values_work_for_string_keys() {
    let dir = config_dir("", "development", "");
    let env = [
        DB,
        ("UPLOADER_STORAGE__BUCKET", "12345"),
        (
            "UPLOADER_STORAGE__LOCAL__SIGNING_KEY",
            "0123456789012345678901234567890123",
        ),
        ("UPLOADER_SERVER__SHUTDOWN_TIMEOUT_SECS", "7"),
        ("UPLOADER_DATABASE__MIGRATE_ON_START", "false"),
    ];
    let settings = load(&dir, "development", &env).unwrap();
    assert_eq!(settings.storage.bucket, "12345");
    let key = settings.storage.local.signing_key.unwrap();
    assert_eq!(
        key.expose_secret(),
        "0123456789012345678901234567890123",
        "leading zero kept"
    );
    assert_eq!(settings.server.shutdown_timeout_secs, 7);
    assert!(!settings.database.migrate_on_start);
}

#[test]
fn compat_variables_sit_below_uploader_variables() {
    let dir = config_dir(
        "",
        "development",
        "[database]\nurl = \"postgres://file/db\"\n",
    );
    let libpq = "host=localhost port=5432 dbname=db user=bob password=security";
    let settings = load(
        &dir,
        "development",
        &[
            ("POSTGRESQL_LIBPQ_CONN_STR", libpq),
            ("S3_BUCKET_NAME", "legacy-bucket"),
        ],
    )
    .unwrap();
    assert_eq!(
        settings.database.url.unwrap().expose_secret(),
        libpq,
        "compat env beats files"
    );
    assert_eq!(settings.storage.bucket, "legacy-bucket");

    let settings = load(
        &dir,
        "development",
        &[
            ("POSTGRESQL_LIBPQ_CONN_STR", libpq),
            ("DATABASE_URL", "postgres://d/db"),
        ],
    )
    .unwrap();
    assert_eq!(
        settings.database.url.unwrap().expose_secret(),
        "postgres://d/db",
        "DATABASE_URL beats libpq"
    );

    let settings = load(
        &dir,
        "development",
        &[
            ("S3_BUCKET_NAME", "legacy-bucket"),
            ("UPLOADER_STORAGE__BUCKET", "new-bucket"),
        ],
    )
    .unwrap();
    assert_eq!(
        settings.storage.bucket, "new-bucket",
        "UPLOADER_ variables win"
    );
}

#[test]
fn invalid_values_name_their_key() {
    // A profile of its own: the built-in `development` profile names a database.
    let dir = config_dir("", "staging", "");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[], "database.url", "no database configured"),
        (
            &[DB, ("UPLOADER_SERVER__BIND", "localhost")],
            "server.bind",
            "no port",
        ),
        (
            &[DB, ("UPLOADER_METRICS__BIND", "localhost")],
            "metrics.bind",
            "no port for the metrics listener",
        ),
        (
            &[DB, ("UPLOADER_SERVER__PUBLIC_URL", "uploads.example.com")],
            "server.public_url",
            "a public URL without a scheme",
        ),
        (
            &[
                DB,
                ("UPLOADER_SERVER__PUBLIC_URL", "ftp://uploads.example.com"),
            ],
            "server.public_url",
            "a public URL that is not http",
        ),
        (
            &[DB, ("UPLOADER_DATABASE__SHARED_CONNECTIONS", "1000")],
            "database.shared_connections",
            "too many shared connections",
        ),
        (
            &[DB, ("UPLOADER_STORAGE__BACKEND", "ftp")],
            "backend",
            "unknown backend",
        ),
        (
            &[DB, ("UPLOADER_STORAGE__BUCKET", "Bad_Bucket")],
            "storage.bucket",
            "invalid bucket name",
        ),
        (
            &[DB, ("UPLOADER_STORAGE__KEY_PREFIX", "../up")],
            "storage.key_prefix",
            "escaping prefix",
        ),
        (
            &[DB, ("UPLOADER_STORAGE__S3__ENDPOINT", "minio:9000")],
            "storage.s3.endpoint",
            "no scheme",
        ),
        (
            &[DB, ("UPLOADER_STORAGE__LOCAL__SIGNING_KEY", "short")],
            "storage.local.signing_key",
            "weak key",
        ),
        (
            &[DB, ("UPLOADER_UPLOADS__MAX_SIZE", "lots")],
            "max_size",
            "not a number",
        ),
        (
            &[DB, ("UPLOADER_UPLOADS__DEFAULT_EXPIRES_IN", "4000")],
            "uploads.default_expires_in",
            "default above max",
        ),
        (
            &[DB, ("UPLOADER_ACCESS__MAX_EXPIRES_IN", "0")],
            "access.max_expires_in",
            "zero lifetime",
        ),
        (
            &[("UPLOADER_DATABASE__URL", "mysql://nope")],
            "database.url",
            "not Postgres",
        ),
        (
            &[DB, ("UPLOADER_STORAGE_EVENTS__TOKEN", "guessable")],
            "storage_events.token",
            "short storage events token",
        ),
        (
            &[
                DB,
                (
                    "UPLOADER_STORAGE_EVENTS__TOKEN",
                    "has spaces in it 0123456789abcdef0123",
                ),
            ],
            "storage_events.token",
            "a token that cannot travel in a header",
        ),
        (
            &[
                DB,
                ("UPLOADER_STORAGE__BACKEND", "s3"),
                ("UPLOADER_UPLOADS__COMPLETE_ON_UPLOAD", "true"),
            ],
            "uploads.complete_on_upload",
            "completion on upload without the bytes passing through",
        ),
    ];
    for (env, key, why) in cases {
        let error = load(&dir, "staging", env).expect_err(why).to_string();
        assert!(error.contains(key), "{why}: {error:?} should name {key}");
    }
}

#[test]
fn the_production_profile_refuses_to_run_without_authentication() {
    let dir = config_dir("", "production", "");
    let error = load(&dir, "production", &[DB]).unwrap_err().to_string();
    assert!(error.contains("auth.mode"), "{error}");
    let secret = (
        "UPLOADER_AUTH__JWT__HS256_SECRET",
        "0123456789abcdef0123456789abcdef",
    );
    let settings = load(
        &dir,
        "production",
        &[DB, ("UPLOADER_AUTH__MODE", "jwt"), secret],
    )
    .unwrap();
    assert_eq!(settings.auth.mode, AuthMode::Jwt);
}

#[test]
fn list_keys_take_comma_separated_or_json_values_from_the_environment() {
    let dir = config_dir("", "development", "");
    let digest = "a".repeat(64);
    let keys = format!(r#"[{{"owner": "alice", "sha256": "{digest}"}}]"#);
    let env = [
        DB,
        (
            "UPLOADER_UPLOADS__ALLOWED_CONTENT_TYPES",
            "image/*, application/pdf",
        ),
        ("UPLOADER_AUTH__MODE", "api_key"),
        ("UPLOADER_AUTH__API_KEYS", keys.as_str()),
        ("UPLOADER_SERVER__TRUSTED_PROXIES", "10.0.0.0/8,192.168.1.1"),
    ];
    let settings = load(&dir, "development", &env).unwrap();
    assert_eq!(
        settings.uploads.allowed_content_types,
        ["image/*", "application/pdf"]
    );
    assert_eq!(settings.auth.api_keys[0].owner, "alice");
    let proxies: Vec<String> = settings
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.1/32"]);
}

#[test]
fn security_settings_are_checked() {
    let dir = config_dir("", "development", "");
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (
            &[DB, ("UPLOADER_AUTH__MODE", "jwt")],
            "auth.jwt",
            "jwt without a key",
        ),
        (
            &[
                DB,
                ("UPLOADER_AUTH__MODE", "jwt"),
                ("UPLOADER_AUTH__JWT__HS256_SECRET", "short"),
            ],
            "auth.jwt.hs256_secret",
            "weak secret",
        ),
        (
            &[DB, ("UPLOADER_AUTH__MODE", "api_key")],
            "auth.api_keys",
            "api_key mode without keys",
        ),
        (
            &[
                DB,
                ("UPLOADER_AUTH__MODE", "api_key"),
                (
                    "UPLOADER_AUTH__API_KEYS",
                    r#"[{"owner":"a","sha256":"plaintext-key"}]"#,
                ),
            ],
            "auth.api_keys",
            "a key that is not a digest",
        ),
        (
            &[DB, ("UPLOADER_SERVER__TRUSTED_PROXIES", "not-an-ip")],
            "server.trusted_proxies",
            "bad proxy",
        ),
        (
            &[
                DB,
                (
                    "UPLOADER_CORS__ALLOWED_ORIGINS",
                    "https://app.example.com/path",
                ),
            ],
            "cors.allowed_origins",
            "an origin has no path",
        ),
        (
            &[DB, ("UPLOADER_UPLOADS__ALLOWED_CONTENT_TYPES", "image")],
            "uploads.allowed_content_types",
            "not a media type",
        ),
        (
            &[DB, ("UPLOADER_RATE_LIMIT__ISSUE__BURST", "0")],
            "rate_limit.issue",
            "an empty bucket",
        ),
    ];
    for (env, key, why) in cases {
        let error = load(&dir, "development", env).expect_err(why).to_string();
        assert!(error.contains(key), "{why}: {error:?} should name {key}");
    }
}

#[test]
fn errors_never_echo_secrets() {
    let dir = config_dir("", "development", "");
    let error = load(
        &dir,
        "development",
        &[(
            "UPLOADER_DATABASE__URL",
            "postgres://u:hunter2@h:notaport/db",
        )],
    )
    .expect_err("bad port")
    .to_string();
    assert!(!error.contains("hunter2"), "{error}");
    let settings = load(&dir, "development", &[DB]).unwrap();
    assert!(
        !format!("{settings:?}").contains("u:p@"),
        "Debug redacts the database URL"
    );
}

#[test]
fn a_missing_explicit_config_file_is_an_error() {
    let dir = config_dir("", "development", "");
    let missing = dir.path().join("nope.toml");
    let error = Settings::load_from(
        dir.path(),
        Some(&missing),
        "development",
        RawEnv::from_pairs([DB]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("nope.toml"));
}

/// A temporary directory removed on drop (std only, to keep dev-dependencies few).
mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("cau-config-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[test]
fn the_shipped_config_files_load_for_every_profile() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let development =
        Settings::load_from(&shipped, None, "development", RawEnv::default()).unwrap();
    assert_eq!(development.storage.backend, StorageBackend::Local);
    assert!(
        development.database.url.is_some(),
        "development has a default database"
    );

    let production_env = [
        DB,
        ("UPLOADER_AUTH__MODE", "jwt"),
        (
            "UPLOADER_AUTH__JWT__HS256_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
    ];
    let production = Settings::load_from(
        &shipped,
        None,
        "production",
        RawEnv::from_pairs(production_env),
    )
    .unwrap();
    assert_eq!(production.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(production.log.format, LogFormat::Json);
}

#[test]
fn an_unknown_key_in_a_file_is_refused_naming_key_and_file() {
    let dir = config_dir("[uploads]\nmax_szie = 10\n", "development", "");
    let error = load(&dir, "development", &[DB]).unwrap_err().to_string();
    assert!(error.contains("unknown key `uploads.max_szie`"), "{error}");
    assert!(error.contains("default.toml"), "{error}");
    assert!(error.contains("did you mean `max_size`"), "{error}");
}

#[test]
fn an_unknown_section_or_variable_is_refused() {
    let dir = config_dir("[uplods]\nmax_size = 10\n", "development", "");
    let error = load(&dir, "development", &[DB]).unwrap_err().to_string();
    assert!(error.contains("unknown key `uplods`"), "{error}");

    let dir = config_dir("", "development", "");
    let error = load(
        &dir,
        "development",
        &[DB, ("UPLOADER_UPLOADS__MAX_SZIE", "1")],
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("UPLOADER_UPLOADS__MAX_SZIE"), "{error}");
}

#[test]
fn list_keys_also_take_a_json_array_from_the_environment() {
    let dir = config_dir("", "development", "");
    let env = [
        DB,
        (
            "UPLOADER_UPLOADS__ALLOWED_CONTENT_TYPES",
            r#"["image/*", "application/pdf"]"#,
        ),
        ("UPLOADER_CORS__ALLOWED_ORIGINS", r#"["https://a.example"]"#),
    ];
    let settings = load(&dir, "development", &env).unwrap();
    assert_eq!(
        settings.uploads.allowed_content_types,
        ["image/*", "application/pdf"]
    );
    assert_eq!(settings.cors.allowed_origins, ["https://a.example"]);
    let broken = load(
        &dir,
        "development",
        &[DB, ("UPLOADER_CORS__ALLOWED_ORIGINS", "[not json")],
    );
    assert!(broken.unwrap_err().to_string().contains("allowed_origins"));
}

#[test]
fn an_empty_environment_variable_counts_as_unset() {
    let dir = config_dir("", "development", "");
    let env = [
        DB,
        ("UPLOADER_AUTH__MODE", ""),
        ("UPLOADER_AUTH__JWT__HS256_SECRET", ""),
    ];
    let settings = load(&dir, "development", &env).unwrap();
    assert_eq!(settings.auth.mode, AuthMode::None);
    assert!(settings.auth.jwt.hs256_secret.is_none());
}

#[test]
fn built_in_profiles_need_no_files() {
    let dir = tempdir::Dir::new();
    let env = [
        DB,
        ("UPLOADER_AUTH__MODE", "jwt"),
        (
            "UPLOADER_AUTH__JWT__HS256_SECRET",
            "0123456789abcdef0123456789abcdef",
        ),
    ];
    let production = load(&dir, "production", &env).unwrap();
    assert_eq!(production.server.bind.to_string(), "0.0.0.0:8080");
    assert_eq!(production.log.format, LogFormat::Json);
    let development = load(&dir, "development", &[]).unwrap();
    assert!(development.database.url.is_some());
    assert_eq!(
        development.layers,
        ["built-in defaults", "built-in profile development"]
    );
}

#[test]
fn a_profile_that_is_not_built_in_needs_its_file() {
    let dir = tempdir::Dir::new();
    let error = load(&dir, "staging", &[DB]).unwrap_err().to_string();
    assert!(error.contains("staging.toml"), "{error}");
}

#[test]
fn a_named_directory_that_does_not_exist_is_an_error() {
    let dir = tempdir::Dir::new();
    let missing = dir.path().join("nope");
    let error = Settings::load_from(&missing, None, "development", RawEnv::from_pairs([DB]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("nope"), "{error}");
}

/// The README's configuration table: each key (a row may name two, `a.b` / `.c`) with the
/// first backticked value of its default column, if it starts with one.
fn readme_defaults() -> Vec<(String, Option<String>)> {
    let readme = include_str!("../../README.md");
    let section = readme.split("\n## Configuration\n").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let mut rows = Vec::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        assert!(cells.len() >= 4, "a configuration row has 4 cells: {line}");
        let (keys, defaults) = (cells[0].trim_start_matches("| "), cells[2]);
        let keys: Vec<&str> = keys.split(" / ").map(|k| k.trim_matches('`')).collect();
        let defaults: Vec<&str> = defaults.split(" / ").collect();
        let first = keys[0].to_owned();
        for (i, key) in keys.iter().enumerate() {
            let key = match key.strip_prefix('.') {
                Some(last) => format!("{}.{last}", &first[..first.rfind('.').unwrap()]),
                None => (*key).to_owned(),
            };
            let default = defaults
                .get(i)
                .and_then(|d| d.strip_prefix('`'))
                .and_then(|d| d.split('`').next())
                .map(str::to_owned);
            rows.push((key, default));
        }
    }
    rows
}

/// The leaf keys of `value` (tables are walked, lists are leaves), with their values.
fn leaves(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, serde_json::Value)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (name, inner) in map {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                leaves(&key, inner, out);
            }
        }
        other => out.push((prefix.to_owned(), other.clone())),
    }
}

/// Whether the README's `documented` default says `actual` (durations in either spelling,
/// lists as JSON or comma-separated).
fn says(documented: &str, actual: &serde_json::Value) -> bool {
    match actual {
        serde_json::Value::String(text) => {
            text == documented
                || humantime_serde::re::humantime::parse_duration(text).ok()
                    == humantime_serde::re::humantime::parse_duration(documented).ok()
                    && humantime_serde::re::humantime::parse_duration(text).is_ok()
        }
        serde_json::Value::Array(items) => {
            serde_json::from_str::<serde_json::Value>(documented)
                .ok()
                .as_ref()
                == Some(actual)
                || items
                    .iter()
                    .map(|i| i.as_str().unwrap_or_default())
                    .collect::<Vec<_>>()
                    .join(", ")
                    == documented
        }
        other => {
            serde_json::from_str::<serde_json::Value>(documented)
                .ok()
                .as_ref()
                == Some(other)
        }
    }
}

#[test]
fn every_key_has_one_default_and_the_readme_states_it() {
    // `Settings::default` is the only place a default lives; the README's table says it to
    // users, and this keeps the two from drifting (either way).
    let documented = readme_defaults();
    let mut keys = Vec::new();
    leaves(
        "",
        &serde_json::to_value(Settings::default()).unwrap(),
        &mut keys,
    );
    for (key, value) in &keys {
        let row = documented.iter().find(|(k, _)| k == key);
        let Some((_, default)) = row else {
            panic!("{key} has no row in the README's configuration table");
        };
        // Unset keys are described in words (`http://<bound address>`, "unlimited").
        match (default, value) {
            (_, serde_json::Value::Null) => {}
            (Some(default), value) => assert!(
                says(default, value),
                "README says {key} defaults to `{default}`, Settings::default has {value}"
            ),
            (None, value) => panic!("README gives {key} no default, Settings::default has {value}"),
        }
    }
    for (key, _) in &documented {
        assert!(
            keys.iter().any(|(k, _)| k == key),
            "the README documents {key}, which is no configuration key"
        );
    }
}
