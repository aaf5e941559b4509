//! Keeping secrets out of logs: what looks like a password or a token is replaced by `***`
//! before a line is written.
//!
//! Three shapes are recognised: a URL's userinfo (`postgres://user:SECRET@host`), a key that names
//! a secret followed by `=` or `:` (`password=SECRET`, `"api_key": "SECRET"`), and an
//! `Authorization: Bearer SECRET` value.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)",
        // scheme://user:password@
        r"(?P<url>[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@",
        r"|(?P<key>(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|credentials?)",
        r#"[a-z_\-]*["']?\s*[:=]\s*["']?)[^\s"'&,;]+"#,
        r"|(?P<bearer>bearer\s+)[a-z0-9._~+/\-]+=*",
    ))
    .expect("the secrets pattern compiles")
});

/// `line` with anything that looks like a secret replaced by `***`.
pub fn redact(line: &str) -> Cow<'_, str> {
    SECRETS.replace_all(line, |caps: &regex::Captures| {
        if let Some(url) = caps.name("url") {
            format!("{}***@", url.as_str())
        } else if let Some(key) = caps.name("key") {
            format!("{}***", key.as_str())
        } else if let Some(bearer) = caps.name("bearer") {
            format!("{}***", bearer.as_str())
        } else {
            "***".to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn secrets_are_replaced() {
        for (line, expected) in [
            (
                "connect postgres://admin:hunter2@db:5432/app",
                "connect postgres://admin:***@db:5432/app",
            ),
            ("PASSWORD=hunter2 next", "PASSWORD=*** next"),
            (
                r#"{"api_key": "abc123", "x": 1}"#,
                r#"{"api_key": "***", "x": 1}"#,
            ),
            ("db_password: s3cr3t", "db_password: ***"),
            (
                "Authorization: Bearer eyJhbGciOi.abc",
                "Authorization: Bearer ***",
            ),
            ("token=abc&user=me", "token=***&user=me"),
        ] {
            assert_eq!(redact(line), expected);
        }
    }

    #[test]
    fn ordinary_lines_are_untouched_and_not_copied() {
        for line in [
            "Forwarding from 127.0.0.1:5432 -> 5432",
            "see https://example.com/docs",
            "12:00:01 ready",
        ] {
            assert!(
                matches!(redact(line), std::borrow::Cow::Borrowed(_)),
                "{line}"
            );
        }
    }
}
