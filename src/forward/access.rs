//! How a program logs in through a tunnel: the target's `user` and `database`, and the
//! `password_command` that finds its password. They shape the URL `forward` prints and the
//! variables `rhizome exec` hands its command; the password itself is fetched by the client
//! when asked for and never leaves it (see `client::password`).

/// A target's login, as configured. Nothing here is secret: the password command is what to run,
/// not what it prints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Access {
    pub user: Option<String>,
    pub database: Option<String>,
    /// An argument vector, run without a shell.
    pub password_command: Option<Vec<String>>,
}

impl Access {
    /// `SCHEME://[USER[:PASSWORD]@]127.0.0.1:PORT[/DATABASE]`, each part percent-encoded.
    pub fn url(&self, scheme: &str, port: u16, password: Option<&str>) -> String {
        let mut url = format!("{scheme}://");
        if let Some(user) = &self.user {
            url.push_str(&encode(user));
            if let Some(password) = password {
                url.push(':');
                url.push_str(&encode(password));
            }
            url.push('@');
        }
        url.push_str(&format!("127.0.0.1:{port}"));
        if let Some(database) = &self.database {
            url.push('/');
            url.push_str(&encode(database));
        }
        url
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, so a user, password or
/// database name cannot change the URL's shape.
fn encode(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_the_login_encoded() {
        let none = Access::default();
        assert_eq!(none.url("mysql", 3306, None), "mysql://127.0.0.1:3306");
        let access = Access {
            user: Some("billing".into()),
            database: Some("book keeping".into()),
            password_command: None,
        };
        assert_eq!(
            access.url("mysql", 3306, None),
            "mysql://billing@127.0.0.1:3306/book%20keeping"
        );
        assert_eq!(
            access.url("postgresql", 5432, Some("p@ss:w/rd")),
            "postgresql://billing:p%40ss%3Aw%2Frd@127.0.0.1:5432/book%20keeping"
        );
    }
}
