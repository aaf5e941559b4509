//! `rhizome forward`: targets come from the config, read here in the client, so the daemon gets a
//! resolved, validated target and the client's environment.

use serde_json::json;

use super::exit::Exit;
use super::output::{self, note};
use super::sanitize;
use super::tunnel::{self, Opened, Wanted};
use super::{Failure, password};
use crate::cli::{ForwardArgs, ForwardFormat};
use crate::config::{self, Config};
use crate::forward::access::Access;
use crate::forward::adhoc::{self, AdHoc};
use crate::forward::target::{self, ClientSide, TargetError};
use crate::paths::Paths;
use crate::protocol::{ForwardInfo, Target};

pub async fn forward(paths: &Paths, args: &ForwardArgs) -> anyhow::Result<Exit> {
    let config = load_config(paths)?;
    let (mut target, side) = match &args.ports {
        None => resolve(&config, &args.target, args.waiting.quiet)?,
        Some(ports) => {
            let target = adhoc::target(&AdHoc {
                resource: &args.target,
                ports,
                context: args.context.as_ref(),
                namespace: args.namespace.as_ref(),
                kubeconfig: args.kubeconfig.as_ref(),
            })
            .map_err(target_failure)?;
            (target, ClientSide::default())
        }
    };
    if let Some(port) = args.port {
        target.local_port = std::num::NonZeroU16::new(port);
    }
    let password = match (&side.access.password_command, args.with_password) {
        (Some(command), true) => Some(password::fetch(&target.name, command)?),
        (None, true) => {
            return Err(Failure::new(format!(
                "target {} has no `password_command`, so there is no password to show",
                target.name
            ))
            .hint("set `password_command` on the target in rhizome.toml, or leave out --with-password")
            .into());
        }
        (_, false) => None,
    };
    let scheme = target.scheme.clone();
    let how = Wanted {
        label: &args.target,
        waiting: &args.waiting,
        replace: args.replace,
        lazy: args.lazy.then_some(true),
        transport: args.transport,
        by_up: false,
    };
    let info = match tunnel::open(paths, &config, target, &side, &how).await? {
        Opened::Ready(info) => info,
        Opened::Interrupted => return Ok(Exit::Interrupted),
    };
    output::print(render(
        &info,
        args.format,
        &scheme,
        &side.access,
        password.as_deref(),
    )?)?;
    Ok(Exit::Success)
}

/// A configured target by its name (`ENV/NAME`, or a short `NAME`, said on stderr unless
/// `quiet`), with what the client alone knows of it.
pub fn resolve(config: &Config, name: &str, quiet: bool) -> anyhow::Result<(Target, ClientSide)> {
    let target = target::resolve(config, name).map_err(target_failure)?;
    if target.name != name && !quiet {
        note(format_args!(
            "rhizome: {} is {}",
            sanitize::text(name),
            sanitize::text(&target.name)
        ));
    }
    let side = target::client_side(config, &target.name).map_err(target_failure)?;
    Ok((target, side))
}

fn render(
    info: &ForwardInfo,
    format: ForwardFormat,
    scheme: &str,
    access: &Access,
    password: Option<&str>,
) -> serde_json::Result<String> {
    let url = access.url(scheme, info.local_port, password);
    Ok(match format {
        ForwardFormat::Url => format!("{url}\n"),
        ForwardFormat::Port => format!("{}\n", info.local_port),
        // The tunnel as `ps --json` shows it (one shape for a process everywhere), with the
        // login.
        ForwardFormat::Json => {
            let mut handle = serde_json::to_value(super::json::process(&info.process))?;
            handle["user"] = json!(access.user);
            handle["database"] = json!(access.database);
            if let Some(password) = password {
                handle["password"] = password.into();
            }
            format!("{handle}\n")
        }
        ForwardFormat::Env => format!(
            "export RHIZOME_HOST=127.0.0.1\nexport RHIZOME_PORT={}\nexport RHIZOME_URL={}\n",
            info.local_port,
            shell_quote(&url)
        ),
    })
}

/// `word` as one shell word: as it is when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    if word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// A target that does not resolve, said as an error and, for a name that is not there, the
/// names it may have meant as the hint.
fn target_failure(err: TargetError) -> Failure {
    match err {
        TargetError::Unknown { name, close } => {
            let resource = target::names_a_resource(&name);
            let hint = match close.as_slice() {
                _ if resource => format!(
                    "for a resource without a config entry give its ports: `rhizome forward --context CONTEXT --namespace NAMESPACE {name} LOCAL:REMOTE`"
                ),
                [] => "`rhizome targets` lists the targets".to_string(),
                names => format!(
                    "did you mean {}? (`rhizome targets` lists them all)",
                    names.join(", ")
                ),
            };
            Failure::new(format!("there is no target `{name}`")).hint(hint)
        }
        TargetError::Ambiguous { name, candidates } => Failure::new(format!(
            "`{name}` is a target in several environments: {}",
            candidates.join(", ")
        ))
        .hint(format!(
            "name one of them, for example `rhizome forward {}`",
            candidates[0]
        )),
        other => Failure::new(other.to_string()),
    }
}

/// The config with the built-in targets, or the config's error as the user should read it.
pub fn load_config(paths: &Paths) -> anyhow::Result<Config> {
    let path = config::path(paths);
    config::load_with_built_ins(&path).map_err(|err| {
        Failure::new(err.to_string())
            .hint(format!(
                "fix {} (or point RHIZOME_CONFIG at another file)",
                path.display()
            ))
            .into()
    })
}
