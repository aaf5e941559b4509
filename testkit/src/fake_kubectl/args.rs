//! The kubectl command line, as far as rhizome uses it: flags anywhere
//! (`--flag value`, `--flag=value`, `-n value`), one subcommand, and for
//! `exec` the command after `--`. Error texts follow kubectl 1.33's, with
//! their `See 'kubectl ...'` hint lines, but without the `error: ` prefix,
//! which the caller adds.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub struct Invocation {
    /// `--context`; `None`: the kubeconfig's current context.
    pub context: Option<String>,
    pub command: Command,
}

pub enum Command {
    /// `exec TARGET -- CMD ARGS...`
    Exec { target: Target, argv: Vec<String> },
    /// `logs TARGET [--tail N]`; `tail: None` means all lines.
    Logs { target: Target, tail: Option<usize> },
    /// `port-forward TARGET [LOCAL]:REMOTE [--address A]`
    PortForward {
        target: Target,
        ports: Ports,
        addresses: Vec<BindAddr>,
    },
}

impl Command {
    /// The subcommand's name, which also names its start counter.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Exec { .. } => "exec",
            Command::Logs { .. } => "logs",
            Command::PortForward { .. } => "port-forward",
        }
    }
}

/// `TYPE/NAME` (or a bare pod name).
pub struct Target {
    /// `pod`, `deployment` or `service`.
    pub kind: &'static str,
    pub name: String,
}

/// `LOCAL:REMOTE`; `local == 0` asks for a free port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    pub local: u16,
    pub remote: u16,
}

/// One address to listen on. `localhost` gives two tolerant ones (a failure
/// is fine as long as one of them binds); an explicit IP must bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindAddr {
    pub ip: IpAddr,
    pub tolerant: bool,
}

struct Flag {
    names: &'static [&'static str],
    key: &'static str,
    takes_value: bool,
    /// Subcommands that have it; empty: a global flag.
    only: &'static [&'static str],
}

const FLAGS: &[Flag] = &[
    flag(&["--context"], "context", true, &[]),
    flag(&["--namespace", "-n"], "namespace", true, &[]),
    flag(&["--kubeconfig"], "kubeconfig", true, &[]),
    flag(&["--request-timeout"], "request-timeout", true, &[]),
    flag(&["--container", "-c"], "container", true, &["exec", "logs"]),
    flag(&["--stdin", "-i"], "stdin", false, &["exec"]),
    flag(&["--tty", "-t"], "tty", false, &["exec"]),
    flag(&["-it", "-ti"], "stdin-tty", false, &["exec"]),
    flag(&["--quiet", "-q"], "quiet", false, &["exec"]),
    flag(
        &["--pod-running-timeout"],
        "pod-running-timeout",
        true,
        &["exec", "logs", "port-forward"],
    ),
    flag(&["--tail"], "tail", true, &["logs"]),
    flag(&["--address"], "address", true, &["port-forward"]),
];

const fn flag(
    names: &'static [&'static str],
    key: &'static str,
    takes_value: bool,
    only: &'static [&'static str],
) -> Flag {
    Flag {
        names,
        key,
        takes_value,
        only,
    }
}

const SUBCOMMANDS: [&str; 3] = ["exec", "logs", "port-forward"];

/// cobra's hint after a flag error.
fn flag_hint(sub: Option<&str>) -> String {
    match sub {
        Some(sub) => format!("\nSee 'kubectl {sub} --help' for usage."),
        None => "\nSee 'kubectl --help' for usage.".into(),
    }
}

/// kubectl's hint after a usage error.
fn usage_hint(sub: &str) -> String {
    format!("\nSee 'kubectl {sub} -h' for help and examples")
}

pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut flags: Vec<(&Flag, String, &str)> = Vec::new(); // (flag, value, as written)
    let mut unknown_flag: Option<&str> = None;
    let mut positionals: Vec<&str> = Vec::new();
    let mut after_dashes: Option<&[String]> = None;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if arg == "--" {
            after_dashes = Some(&args[i..]);
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            positionals.push(arg);
            continue;
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg, None),
        };
        let Some(flag) = FLAGS.iter().find(|f| f.names.contains(&name)) else {
            unknown_flag.get_or_insert(name);
            continue;
        };
        let value = if !flag.takes_value {
            String::new()
        } else if let Some(v) = inline {
            v
        } else if let Some(v) = args.get(i) {
            i += 1;
            v.clone()
        } else {
            let shown = match name.strip_prefix('-') {
                Some(short) if !short.starts_with('-') => format!("'{short}' in {name}"),
                _ => name.to_string(),
            };
            let sub = positionals.first().filter(|s| SUBCOMMANDS.contains(s));
            let hint = flag_hint(sub.copied());
            return Err(format!("flag needs an argument: {shown}{hint}"));
        };
        flags.push((flag, value, name));
    }

    let Some((&sub, rest)) = positionals.split_first() else {
        return Err(match unknown_flag {
            Some(f) => format!("unknown flag: {f}{}", flag_hint(None)),
            None => "fake-kubectl: no command given (exec, logs or port-forward)".into(),
        });
    };
    if !SUBCOMMANDS.contains(&sub) {
        return Err(format!("unknown command \"{sub}\" for \"kubectl\""));
    }
    let misplaced = flags
        .iter()
        .find(|(f, _, _)| !f.only.is_empty() && !f.only.contains(&sub))
        .map(|(_, _, name)| *name);
    if let Some(name) = unknown_flag.or(misplaced) {
        return Err(format!("unknown flag: {name}{}", flag_hint(Some(sub))));
    }
    let value = |key: &str| {
        flags
            .iter()
            .rev()
            .find(|(f, _, _)| f.key == key)
            .map(|(_, v, _)| v.as_str())
    };

    let command = match sub {
        "exec" => parse_exec(rest, after_dashes)?,
        "logs" => parse_logs(rest, after_dashes, value("tail"))?,
        _ => parse_port_forward(rest, after_dashes, value("address"))?,
    };
    Ok(Invocation {
        context: value("context").map(String::from),
        command,
    })
}

fn parse_exec(rest: &[&str], after_dashes: Option<&[String]>) -> Result<Command, String> {
    let [target] = rest else {
        return Err(if rest.is_empty() {
            "pod, type/name or --filename must be specified".into()
        } else {
            format!(
                "exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead{}",
                usage_hint("exec")
            )
        });
    };
    let argv = after_dashes.unwrap_or_default().to_vec();
    if argv.is_empty() {
        return Err("you must specify at least one command for the container".into());
    }
    Ok(Command::Exec {
        target: parse_target(target)?,
        argv,
    })
}

fn parse_logs(
    rest: &[&str],
    after_dashes: Option<&[String]>,
    tail: Option<&str>,
) -> Result<Command, String> {
    let ([target], None) = (rest, after_dashes) else {
        return Err(format!(
            "expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\n\
             POD or TYPE/NAME is a required argument for the logs command{}",
            usage_hint("logs")
        ));
    };
    let tail = match tail {
        None => None,
        Some(t) => {
            let n: i64 = t.parse().map_err(|_| {
                format!(
                    "invalid argument \"{t}\" for \"--tail\" flag: strconv.ParseInt: parsing \"{t}\": invalid syntax{}",
                    flag_hint(Some("logs"))
                )
            })?;
            usize::try_from(n).ok()
        }
    };
    Ok(Command::Logs {
        target: parse_target(target)?,
        tail,
    })
}

fn parse_port_forward(
    rest: &[&str],
    after_dashes: Option<&[String]>,
    address: Option<&str>,
) -> Result<Command, String> {
    let mut words: Vec<&str> = rest.to_vec();
    words.extend(after_dashes.unwrap_or_default().iter().map(String::as_str));
    let (target, ports) = match words.as_slice() {
        [target, ports] => (*target, *ports),
        [_, _, _, ..] => return Err("fake-kubectl: only one LOCAL:REMOTE pair is supported".into()),
        _ => {
            return Err(format!(
                "TYPE/NAME and list of ports are required for port-forward{}",
                usage_hint("port-forward")
            ));
        }
    };
    Ok(Command::PortForward {
        target: parse_target(target)?,
        ports: parse_ports(ports)?,
        addresses: parse_addresses(address.unwrap_or("localhost"))?,
    })
}

fn parse_target(s: &str) -> Result<Target, String> {
    let (kind, name) = match s.split_once('/') {
        Some((kind, name)) => (kind, name),
        None => ("pod", s),
    };
    let kind = match kind {
        "pod" | "pods" | "po" => "pod",
        "deploy" | "deployment" | "deployments" => "deployment",
        "svc" | "service" | "services" => "service",
        other => {
            return Err(format!(
                "the server doesn't have a resource type \"{other}\""
            ));
        }
    };
    if name.is_empty() || name.contains('/') {
        return Err(format!(
            "arguments in resource/name form must have a single resource and name: {s:?}"
        ));
    }
    Ok(Target {
        kind,
        name: name.to_string(),
    })
}

/// `REMOTE`, `:REMOTE`, `0:REMOTE` or `LOCAL:REMOTE`.
pub fn parse_ports(s: &str) -> Result<Ports, String> {
    let (local, remote) = s.split_once(':').unwrap_or((s, s));
    let port = |which: &str, p: &str| {
        p.parse::<u16>().map_err(|_| {
            format!("Error parsing {which} port '{p}': strconv.ParseUint: parsing \"{p}\": invalid syntax")
        })
    };
    let local = if local.is_empty() {
        0
    } else {
        port("local", local)?
    };
    let remote = port("remote", remote)?;
    if remote == 0 {
        return Err("remote port must be > 0".into());
    }
    Ok(Ports { local, remote })
}

/// `--address`: comma-separated IPs or `localhost` (127.0.0.1 and ::1).
pub fn parse_addresses(s: &str) -> Result<Vec<BindAddr>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        if part == "localhost" {
            for ip in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(Ipv6Addr::LOCALHOST),
            ] {
                out.push(BindAddr { ip, tolerant: true });
            }
        } else {
            let ip = part
                .parse()
                .map_err(|_| format!("{part} is not a valid IP"))?;
            out.push(BindAddr {
                ip,
                tolerant: false,
            });
        }
    }
    out.dedup_by_key(|a| a.ip);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_before_and_after_the_subcommand() {
        let inv = parse(&args(
            "--context=prod -n db port-forward deploy/x :3307 --address 127.0.0.1",
        ))
        .unwrap();
        assert_eq!(inv.context.as_deref(), Some("prod"));
        let Command::PortForward {
            target,
            ports,
            addresses,
        } = inv.command
        else {
            panic!()
        };
        assert_eq!((target.kind, target.name.as_str()), ("deployment", "x"));
        assert_eq!(
            ports,
            Ports {
                local: 0,
                remote: 3307
            }
        );
        assert_eq!(addresses.len(), 1);
        assert!(!addresses[0].tolerant);
    }

    #[test]
    fn exec_keeps_everything_after_dashes() {
        let inv = parse(&args("exec deploy/x --context c -- sh -c --tail")).unwrap();
        let Command::Exec { argv, .. } = inv.command else {
            panic!()
        };
        assert_eq!(argv, ["sh", "-c", "--tail"]);
    }

    #[test]
    fn ports_and_errors() {
        assert_eq!(
            parse_ports("5432").unwrap(),
            Ports {
                local: 5432,
                remote: 5432
            }
        );
        assert_eq!(
            parse_ports("0:1").unwrap(),
            Ports {
                local: 0,
                remote: 1
            }
        );
        assert!(parse_ports("x:1").is_err());
        assert!(parse_ports("1:0").is_err());
        let err = |s: &str| parse(&args(s)).err().unwrap();
        assert_eq!(err("get pods"), "unknown command \"get\" for \"kubectl\"");
        assert_eq!(
            err("exec --tail 1 deploy/x -- a"),
            "unknown flag: --tail\nSee 'kubectl exec --help' for usage."
        );
        assert_eq!(
            err("logs x --context"),
            "flag needs an argument: --context\nSee 'kubectl logs --help' for usage."
        );
        assert_eq!(
            err("-n"),
            "flag needs an argument: 'n' in -n\nSee 'kubectl --help' for usage."
        );
        let Command::Logs { tail, .. } = parse(&args("logs x --tail=-1")).unwrap().command else {
            panic!()
        };
        assert_eq!(tail, None);
    }
}
