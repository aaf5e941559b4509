//! Validation of a target's fields: every value that will reach kubectl's command line is checked
//! here, and each error names the target, the field and why.

use super::error::TargetError;

/// The kinds of resource `kubectl port-forward` takes, as `KIND/NAME`.
const RESOURCE_KINDS: [&str; 6] = ["svc", "service", "deploy", "deployment", "pod", "po"];

/// Whether `value` is written as a resource (`svc/web`), whatever its name is like.
pub fn names_a_resource(value: &str) -> bool {
    value
        .split_once('/')
        .is_some_and(|(kind, _)| RESOURCE_KINDS.contains(&kind))
}

/// Whether `value` is `HOST:PORT`: a host that cannot pass for an option, and a port from 1.
pub fn is_address(value: &str) -> bool {
    value.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.starts_with('-')
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

/// Validation of one target's fields, naming the target and the field in every error.
pub(super) struct Check<'a> {
    pub target: &'a str,
}

impl Check<'_> {
    pub(super) fn invalid(
        &self,
        field: &'static str,
        value: &str,
        why: &'static str,
    ) -> TargetError {
        TargetError::Invalid {
            target: self.target.to_string(),
            field,
            value: value.to_string(),
            why,
        }
    }

    pub(super) fn required(
        &self,
        field: &'static str,
        value: Option<&String>,
    ) -> Result<String, TargetError> {
        value.cloned().ok_or(TargetError::Missing {
            target: self.target.to_string(),
            field,
        })
    }

    /// A Kubernetes object name (RFC 1123): lowercase letters, digits, `-` and `.`.
    pub(super) fn k8s_name(
        &self,
        field: &'static str,
        value: Option<&String>,
    ) -> Result<String, TargetError> {
        let value = self.required(field, value)?;
        let ok = !value.is_empty()
            && value.len() <= 253
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && value.as_bytes()[0].is_ascii_alphanumeric()
            && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric()
            && !value.contains("..");
        if ok {
            Ok(value)
        } else {
            Err(self.invalid(
                field,
                &value,
                "Kubernetes names are lowercase letters, digits, '-' and '.'",
            ))
        }
    }

    /// What `kubectl port-forward` forwards to: `svc/NAME`, `deploy/NAME` or `pod/NAME` (and
    /// kubectl's long forms of them).
    pub(super) fn resource(&self, value: &str) -> Result<String, TargetError> {
        match value.split_once('/') {
            Some((kind, object)) if RESOURCE_KINDS.contains(&kind) => Ok(format!(
                "{kind}/{}",
                self.k8s_name("resource", Some(&object.to_string()))?
            )),
            _ => Err(self.invalid(
                "resource",
                value,
                "it must be svc/NAME, deploy/NAME or pod/NAME",
            )),
        }
    }

    /// A kubeconfig context: names are free-form there, but nothing that could be mistaken for
    /// an option, a path or shell syntax reaches kubectl.
    pub(super) fn context(&self, value: Option<&String>) -> Result<String, TargetError> {
        let value = self.required("context", value)?;
        let ok = !value.is_empty()
            && value.len() <= 253
            && !value.starts_with('-')
            && !value.contains("..")
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'@' | b'/')
            });
        if ok {
            Ok(value)
        } else {
            Err(self.invalid(
                "context",
                &value,
                "use letters, digits and - _ . : @ / only",
            ))
        }
    }

    /// `project:region:instance`.
    pub(super) fn sql_connection(&self, value: &str) -> Result<String, TargetError> {
        let parts: Vec<&str> = value.split(':').collect();
        let ok = parts.len() == 3
            && parts.iter().all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    })
            })
            && !value.contains("..");
        if ok {
            Ok(value.to_string())
        } else {
            Err(self.invalid(
                "sql_connection",
                value,
                "it must be project:region:instance",
            ))
        }
    }

    pub(super) fn scheme(&self, value: &str) -> Result<String, TargetError> {
        let ok = value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if ok {
            Ok(value.to_string())
        } else {
            Err(self.invalid(
                "scheme",
                value,
                "a URL scheme is letters, digits, + - and .",
            ))
        }
    }

    pub(super) fn path(
        &self,
        field: &'static str,
        value: Option<&String>,
    ) -> Result<Option<String>, TargetError> {
        match value {
            None => Ok(None),
            Some(path)
                if path.is_empty()
                    || path.starts_with('-')
                    || path.contains(['\n', '\r', '\0']) =>
            {
                Err(self.invalid(field, path, "it must be a file path"))
            }
            Some(path) => Ok(Some(path.clone())),
        }
    }

    /// `HOST:PORT`, a TCP address to connect to.
    pub(super) fn address(&self, field: &'static str, value: &str) -> Result<(), TargetError> {
        if is_address(value) {
            Ok(())
        } else {
            Err(self.invalid(
                field,
                value,
                "it must be HOST:PORT, for example 127.0.0.1:3306",
            ))
        }
    }

    /// An argument of the connect command: no line breaks or NULs (it is an argument, never shell
    /// text, but a newline would still corrupt logs and the pod's view of it).
    pub(super) fn plain(&self, field: &'static str, value: &str) -> Result<(), TargetError> {
        if value.contains(['\n', '\r', '\0']) {
            return Err(self.invalid(field, value, "arguments cannot contain line breaks"));
        }
        Ok(())
    }
}
