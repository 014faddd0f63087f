//! Taking libpq's TLS options out of `database.url` before tokio-postgres parses the rest.
//!
//! tokio-postgres's parser knows `sslmode` only as `disable`, `prefer` and `require`, and
//! refuses `sslrootcert` as an unknown option; its parser is private, so it cannot be asked
//! for them either. Both are removed here, from either form of the string, and everything
//! else is left for tokio-postgres: the URL form keeps its other bytes untouched, the
//! `key=value` form is written back with every value quoted. Values are never echoed in an
//! error, so nothing here can leak a password.

use percent_encoding::percent_decode_str;

/// The TLS options libpq reads and tokio-postgres does not (or not fully).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TlsOptions {
    /// `sslmode`, as written.
    pub sslmode: Option<String>,
    /// `sslrootcert`, as written: a PEM file, or `system`.
    pub sslrootcert: Option<String>,
}

/// libpq's TLS keys that this service does not implement; naming one is refused with its
/// name rather than with tokio-postgres's opaque parse error.
const UNSUPPORTED: [&str; 6] = [
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
];

/// The connection string without `sslmode` and `sslrootcert`, and their values. A string
/// this cannot read is returned whole, for tokio-postgres to refuse.
pub(super) fn take_tls_options(text: &str) -> Result<(String, TlsOptions), String> {
    let url_body = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix));
    let (rest, pairs) = match url_body {
        Some(body) => take_from_url(text, text.len() - body.len()),
        None => match take_from_key_values(text) {
            Some(split) => split,
            None => return Ok((text.to_owned(), TlsOptions::default())),
        },
    };
    let mut options = TlsOptions::default();
    for (key, value) in pairs {
        match key.as_str() {
            "sslmode" => options.sslmode = Some(value),
            "sslrootcert" => options.sslrootcert = Some(value),
            unsupported => {
                return Err(format!(
                    "database.url: `{unsupported}` is not supported (client certificates and \
                     revocation lists are not implemented)"
                ));
            }
        }
    }
    Ok((rest, options))
}

/// Whether `key` is one of the TLS keys handled here rather than by tokio-postgres.
fn is_taken(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert" || UNSUPPORTED.contains(&key)
}

/// The URL form: the query starts at the first `?` after the credentials, exactly where
/// tokio-postgres's own parser looks for it (a password may hold an unescaped `?`).
fn take_from_url(text: &str, body_start: usize) -> (String, Vec<(String, String)>) {
    let body = &text[body_start..];
    let after_credentials = body.find('@').map_or(0, |at| at + 1);
    let Some(query_at) = body[after_credentials..].find('?') else {
        return (text.to_owned(), Vec::new());
    };
    let query_start = body_start + after_credentials + query_at + 1;
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for parameter in text[query_start..].split('&') {
        let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
        let key = percent_decode_str(key).decode_utf8_lossy();
        if is_taken(&key) {
            let value = percent_decode_str(value).decode_utf8_lossy().into_owned();
            taken.push((key.into_owned(), value));
        } else {
            kept.push(parameter);
        }
    }
    let mut rest = text[..query_start - 1].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    (rest, taken)
}

/// The `key=value` form, read with libpq's rules (spaces around `=`, single quotes,
/// backslash escapes); `None` when it does not follow them.
fn take_from_key_values(text: &str) -> Option<(String, Vec<(String, String)>)> {
    let mut kept = Vec::new();
    let mut taken = Vec::new();
    for (key, value) in parse_key_values(text)? {
        if is_taken(&key) {
            taken.push((key, value));
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Some((kept.join(" "), taken))
}

fn parse_key_values(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Some(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        chars.next_if_eq(&'=')?;
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\'') if quoted => break,
                Some(c) if c.is_whitespace() && !quoted => break,
                Some('\\') => value.push(chars.next()?),
                Some(c) => value.push(c),
                None if quoted => return None,
                None => break,
            }
        }
        if key.is_empty() || (value.is_empty() && !quoted) {
            return None;
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(sslmode: Option<&str>, sslrootcert: Option<&str>) -> TlsOptions {
        TlsOptions {
            sslmode: sslmode.map(str::to_owned),
            sslrootcert: sslrootcert.map(str::to_owned),
        }
    }

    #[test]
    fn url_options_are_taken_and_the_rest_kept_byte_for_byte() {
        let url = "postgres://u:p%3Fw@db:5432/app?connect_timeout=3&sslmode=verify-full\
                   &sslrootcert=%2Fetc%2Fca%20bundle.pem&application_name=x";
        let (rest, taken) = take_tls_options(url).unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@db:5432/app?connect_timeout=3&application_name=x"
        );
        assert_eq!(
            taken,
            options(Some("verify-full"), Some("/etc/ca bundle.pem"))
        );
    }

    #[test]
    fn a_url_left_without_parameters_loses_its_question_mark() {
        let (rest, taken) = take_tls_options("postgresql://db/app?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://db/app");
        assert_eq!(taken, options(Some("require"), None));
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let url = "postgres://u:se?cret@db/app?sslmode=disable";
        let (rest, taken) = take_tls_options(url).unwrap();
        assert_eq!(rest, "postgres://u:se?cret@db/app");
        assert_eq!(taken, options(Some("disable"), None));
    }

    #[test]
    fn key_value_options_are_taken_and_the_rest_quoted() {
        let text = r"host=db sslmode = verify-ca password='a \'b\\' sslrootcert='/ca dir/r.pem'";
        let (rest, taken) = take_tls_options(text).unwrap();
        assert_eq!(rest, r"host='db' password='a \'b\\'");
        assert_eq!(taken, options(Some("verify-ca"), Some("/ca dir/r.pem")));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"a 'b\\"[..]));
    }

    #[test]
    fn a_string_without_tls_options_is_unchanged_in_meaning() {
        let (rest, taken) = take_tls_options("host=db user=app").unwrap();
        assert_eq!(rest, "host='db' user='app'");
        assert_eq!(taken, TlsOptions::default());
    }

    #[test]
    fn an_unreadable_key_value_string_is_left_for_tokio_postgres_to_refuse() {
        for text in ["host=db password='open", "host", "=x", "host= "] {
            let (rest, taken) = take_tls_options(text).unwrap();
            assert_eq!(rest, text);
            assert_eq!(taken, TlsOptions::default());
        }
    }

    #[test]
    fn client_certificates_are_refused_by_name_without_the_value() {
        for text in [
            "host=db sslkey=/secret/key.pem",
            "postgres://db/app?sslcert=%2Fsecret%2Fcert.pem",
        ] {
            let error = take_tls_options(text).unwrap_err();
            assert!(error.contains("is not supported"), "{error}");
            assert!(!error.contains("/secret"), "{error}");
        }
    }
}
