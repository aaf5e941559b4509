//! The environment `rhizome exec` hands its command: the original design's ready connection
//! handle, as the variables programs and their standard clients already read.

use super::access::Access;

/// One tunnel as its command sees it.
pub struct Endpoint<'a> {
    /// `ENV/NAME`.
    pub target: &'a str,
    pub scheme: &'a str,
    pub port: u16,
    pub access: &'a Access,
    /// Fetched by the client; only ever in the command's environment.
    pub password: Option<&'a str>,
}

/// The first endpoint gets `RHIZOME_HOST`, `RHIZOME_PORT`, `RHIZOME_URL` (no password, as
/// `forward` prints it), `DATABASE_URL` (with the password) and the variables its scheme's
/// standard client reads; every endpoint gets `RHIZOME_<ENV>_<NAME>_URL`, `_HOST` and `_PORT`.
pub fn variables(endpoints: &[Endpoint]) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    let host = "127.0.0.1".to_string();
    if let Some(first) = endpoints.first() {
        vars.push(("RHIZOME_HOST".into(), host.clone()));
        vars.push(("RHIZOME_PORT".into(), first.port.to_string()));
        vars.push((
            "RHIZOME_URL".into(),
            first.access.url(first.scheme, first.port, None),
        ));
        vars.push((
            "DATABASE_URL".into(),
            first.access.url(first.scheme, first.port, first.password),
        ));
        vars.extend(client_variables(first));
    }
    for endpoint in endpoints {
        let prefix = format!("RHIZOME_{}", shout(endpoint.target));
        vars.push((
            format!("{prefix}_URL"),
            endpoint.access.url(endpoint.scheme, endpoint.port, None),
        ));
        vars.push((format!("{prefix}_HOST"), host.clone()));
        vars.push((format!("{prefix}_PORT"), endpoint.port.to_string()));
    }
    vars
}

/// What `mysql`/`mariadb` and `psql` (libpq) read from the environment.
fn client_variables(endpoint: &Endpoint) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: Option<&str>| {
        if let Some(value) = value {
            vars.push((name.to_string(), value.to_string()));
        }
    };
    let port = endpoint.port.to_string();
    match endpoint.scheme {
        "mysql" | "mariadb" => {
            set("MYSQL_HOST", Some("127.0.0.1"));
            set("MYSQL_TCP_PORT", Some(&port));
            set("MYSQL_PWD", endpoint.password);
        }
        "postgres" | "postgresql" => {
            set("PGHOST", Some("127.0.0.1"));
            set("PGPORT", Some(&port));
            set("PGUSER", endpoint.access.user.as_deref());
            set("PGPASSWORD", endpoint.password);
            set("PGDATABASE", endpoint.access.database.as_deref());
        }
        _ => {}
    }
    vars
}

/// `na-prod/billing-bookkeeper` as `NA_PROD_BILLING_BOOKKEEPER`.
fn shout(target: &str) -> String {
    target
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(vars: &'a [(String, String)], name: &str) -> Option<&'a str> {
        vars.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_first_target_gets_the_standard_names_and_every_target_its_own() {
        let login = Access {
            user: Some("app".into()),
            database: Some("orders".into()),
            password_command: Some(vec!["op".into()]),
        };
        let none = Access::default();
        let vars = variables(&[
            Endpoint {
                target: "staging/orders-db",
                scheme: "postgresql",
                port: 5433,
                access: &login,
                password: Some("pw"),
            },
            Endpoint {
                target: "na-prod/billing-bookkeeper",
                scheme: "mysql",
                port: 3306,
                access: &none,
                password: None,
            },
        ]);
        assert_eq!(get(&vars, "RHIZOME_PORT"), Some("5433"));
        assert_eq!(
            get(&vars, "RHIZOME_URL"),
            Some("postgresql://app@127.0.0.1:5433/orders")
        );
        assert_eq!(
            get(&vars, "DATABASE_URL"),
            Some("postgresql://app:pw@127.0.0.1:5433/orders")
        );
        assert_eq!(get(&vars, "PGPASSWORD"), Some("pw"));
        assert_eq!(get(&vars, "PGDATABASE"), Some("orders"));
        assert_eq!(
            get(&vars, "MYSQL_TCP_PORT"),
            None,
            "only the first's client"
        );
        assert_eq!(
            get(&vars, "RHIZOME_NA_PROD_BILLING_BOOKKEEPER_URL"),
            Some("mysql://127.0.0.1:3306")
        );
        assert_eq!(get(&vars, "RHIZOME_STAGING_ORDERS_DB_PORT"), Some("5433"));
    }

    #[test]
    fn no_password_no_password_variables() {
        let none = Access::default();
        let vars = variables(&[Endpoint {
            target: "e/db",
            scheme: "mysql",
            port: 1,
            access: &none,
            password: None,
        }]);
        assert_eq!(get(&vars, "MYSQL_PWD"), None);
        assert_eq!(get(&vars, "MYSQL_HOST"), Some("127.0.0.1"));
    }
}
