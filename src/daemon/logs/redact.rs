//! Keeping secrets out of logs and out of `ps`: what looks like a password or a token is replaced
//! by `***` before a line is written or a command line is shown.
//!
//! The shapes recognised, in a line or in one argument:
//! - a URL's userinfo, up to the last `@` before the host (`mysql://root:pa@ss@host`);
//! - a key that names a secret followed by `=` or `:` (`password=SECRET`, `"api_key": "SECRET"`);
//! - a flag that names a secret followed by its value (`--password SECRET`, `--api-key SECRET`);
//! - mysql's `-p`, attached or not (`-pSECRET`, `-p SECRET`): `ssh -p 22` shows as `-p ***` too,
//!   the price of never showing a password;
//! - an `Authorization` header's credentials (`Basic`, `Bearer`, any scheme) and a bare
//!   `Bearer SECRET`.
//!
//! A command line's arguments are redacted one by one, and the argument after a secret flag
//! (`--password`, `-p`) is replaced whole: see [`redact_argv`].

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

/// Words that, in a key or a flag's name, say that its value is a secret.
const SECRET_WORDS: &str =
    r"(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|credentials?)";

static SECRETS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&[
        r"(?i)",
        // scheme://user:password@host: the password runs to the last `@` of the authority, so an
        // unescaped `@` in it is hidden too.
        r#"(?P<url>[a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^\s/?#"'<>]+@"#,
        // Authorization: Basic|Bearer|... CREDENTIALS (the scheme is optional).
        r#"|(?P<auth>authorization["']?\s*[:=]\s*["']?(?:(?:basic|bearer|digest|negotiate|token)\s+)?)[^\s"',;]+"#,
        // --password SECRET, -api-key SECRET: a value after a space that is not another flag.
        r#"|(?P<flag>(?:^|[\s"'(])--?[a-z0-9_\-]*"#,
        SECRET_WORDS,
        r#"[a-z0-9_\-]*\s+)[^\s"'\-][^\s"']*"#,
        // -pSECRET, -p SECRET (only a lowercase p: -P is mysql's port).
        r#"|(?P<short>(?:^|[\s"'])(?-i:-p)\s*)[^\s"'\-][^\s"']*"#,
        // password=SECRET, "api_key": "SECRET".
        r"|(?P<key>",
        SECRET_WORDS,
        r#"[a-z_\-]*["']?\s*[:=]\s*["']?)[^\s"'&,;]+"#,
        r"|(?P<bearer>bearer\s+)[a-z0-9._~+/\-]+=*",
    ]
    .concat())
    .expect("the secrets pattern compiles")
});

/// An argument that is a secret flag without its value, so that the next argument is the secret.
static SECRET_FLAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        &[
            r"^(?:(?-i:-p)|(?i)--?[a-z0-9_\-]*",
            SECRET_WORDS,
            r"[a-z0-9_\-]*)$",
        ]
        .concat(),
    )
    .expect("the secret flag pattern compiles")
});

/// `line` with anything that looks like a secret replaced by `***`.
pub fn redact(line: &str) -> Cow<'_, str> {
    SECRETS.replace_all(line, |caps: &regex::Captures| {
        let kept = ["url", "auth", "flag", "short", "key", "bearer"]
            .into_iter()
            .find_map(|group| caps.name(group))
            .map_or("", |m| m.as_str());
        // The userinfo's `@` is part of the match, and stays.
        let at = if caps.name("url").is_some() { "@" } else { "" };
        format!("{kept}***{at}")
    })
}

/// A command line as `ps` shows it: each argument redacted, and the argument that follows a
/// secret flag (`--password`, `--api-key`, `-p`) replaced whole, unless it is itself a flag.
pub fn redact_argv<S: AsRef<str>>(argv: impl IntoIterator<Item = S>) -> Vec<String> {
    let mut shown = Vec::new();
    let mut after_secret_flag = false;
    for arg in argv {
        let arg = arg.as_ref();
        if after_secret_flag && !arg.starts_with('-') {
            shown.push("***".to_string());
            after_secret_flag = false;
            continue;
        }
        after_secret_flag = SECRET_FLAG.is_match(arg);
        shown.push(redact(arg).into_owned());
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::{redact, redact_argv};

    #[test]
    fn secrets_in_a_line_are_replaced() {
        for (line, expected) in [
            (
                "connect postgres://admin:hunter2@db:5432/app",
                "connect postgres://admin:***@db:5432/app",
            ),
            ("mysql://root:pa@ss@host/db", "mysql://root:***@host/db"),
            (
                "mysql://root:pa@ss@host?ssl=a@b",
                "mysql://root:***@host?ssl=a@b",
            ),
            (
                r#"{"url":"mysql://u:pw@h","mail":"a@b"}"#,
                r#"{"url":"mysql://u:***@h","mail":"a@b"}"#,
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
            (
                "Authorization: Basic dXNlcjpodW50ZXI=",
                "Authorization: Basic ***",
            ),
            (
                r#"{"Authorization": "Basic dXNlcjpw"}"#,
                r#"{"Authorization": "Basic ***"}"#,
            ),
            ("proxy-authorization: t0ken", "proxy-authorization: ***"),
            ("bearer abc.def", "bearer ***"),
            ("token=abc&user=me", "token=***&user=me"),
            ("--password hunter5", "--password ***"),
            (
                "mysqldump --password hunter5 db",
                "mysqldump --password *** db",
            ),
            ("--password=hunter5", "--password=***"),
            ("--api-key K9 --verbose", "--api-key *** --verbose"),
            ("-api_key K9", "-api_key ***"),
            ("--client-secret s3", "--client-secret ***"),
            ("--password --verbose", "--password --verbose"),
            ("mysql -u root -p hunter6", "mysql -u root -p ***"),
            ("mysql -uroot -phunter6 db", "mysql -uroot -p*** db"),
            ("'-phunter6'", "'-p***'"),
            ("mysql -P 3306", "mysql -P 3306"),
        ] {
            assert_eq!(redact(line), expected, "{line}");
        }
    }

    #[test]
    fn secrets_in_a_command_line_are_replaced() {
        for (argv, expected) in [
            (
                &["mysql", "--password", "hunter5", "db"][..],
                &["mysql", "--password", "***", "db"][..],
            ),
            (&["mysql", "-p", "hunter6"], &["mysql", "-p", "***"]),
            (&["mysql", "-phunter6"], &["mysql", "-p***"]),
            (&["tool", "--api-key", "K9"], &["tool", "--api-key", "***"]),
            (&["tool", "--API-KEY", "K9"], &["tool", "--API-KEY", "***"]),
            (&["tool", "--token=K9"], &["tool", "--token=***"]),
            (
                &["mysql", "--password", "--host", "db"],
                &["mysql", "--password", "--host", "db"],
            ),
            (&["mysql", "-P", "3306"], &["mysql", "-P", "3306"]),
            (
                &["curl", "-H", "Authorization: Basic dXNlcjpw", "https://x"],
                &["curl", "-H", "Authorization: Basic ***", "https://x"],
            ),
            (
                &["mysql", "mysql://root:pa@ss@host/db"],
                &["mysql", "mysql://root:***@host/db"],
            ),
            (
                &["sh", "-c", "echo --password hunter5"],
                &["sh", "-c", "echo --password ***"],
            ),
            (&["tool", "--password"], &["tool", "--password"]),
        ] {
            assert_eq!(redact_argv(argv), expected, "{argv:?}");
        }
    }

    #[test]
    fn ordinary_lines_are_untouched_and_not_copied() {
        for line in [
            "Forwarding from 127.0.0.1:5432 -> 5432",
            "see https://example.com/docs",
            "http://host:8080/path@v2",
            "12:00:01 ready",
            "using basic settings",
            "--port 8080 --verbose",
            "mysql -P 3306",
        ] {
            assert!(
                matches!(redact(line), std::borrow::Cow::Borrowed(_)),
                "{line}: {}",
                redact(line)
            );
        }
    }
}
