//! Why a target could not be resolved or is not valid: each error names the thing and what to do.

/// Why a target could not be resolved. Each names the thing and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "`{0}` is not a target name; target names are ENV/NAME, for example na-prod/billing-bookkeeper"
    )]
    BadName(String),
    #[error("there is no target `{name}`{}", suggestion(.close))]
    Unknown { name: String, close: Vec<String> },
    #[error("`{name}` is a target in several environments: {}; name one of them", .candidates.join(", "))]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
    #[error(
        "target {target}: `{field}` is missing; set it on the target or its environment in rhizome.toml"
    )]
    Missing { target: String, field: &'static str },
    #[error(
        "a forward of {resource} without a config entry needs {flag}: a tunnel outlives this shell and its restarts must reach the same cluster; `kubectl config current-context` names yours"
    )]
    NeedsFlag {
        resource: String,
        flag: &'static str,
    },
    #[error("target {target}: `{field}` = {value:?} is not allowed: {why}")]
    Invalid {
        target: String,
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

fn suggestion(close: &[String]) -> String {
    match close {
        [] => "; `rhizome targets` lists them".to_string(),
        names => format!("; did you mean {}?", names.join(", ")),
    }
}
