//! The shape of `state/processes.json`, and how a table entry becomes a saved one.
//!
//! Format 2 keeps every byte of a command line, environment and directory (`OsBytes`), keeps the
//! environment and directory only of what may run again, and keeps finished processes with how
//! they ended. Format 1 (strings everywhere, environment always, no finished processes) reads as
//! format 2: every field it lacks has a default.

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::daemon::logs::redact::redact_argv;
use crate::daemon::process::{ChildId, Context, Phase, Process};
use crate::protocol::{Kind, RestartPolicy, Signal, Target, Tool, TunnelSettings};

/// Bumped when the file's shape changes; a daemon refuses (and sets aside) a newer file.
pub const FORMAT: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub format: u32,
    /// The next id to give out, so ids are never reused across daemons either.
    pub next_id: u32,
    /// Oldest first: what should run, and the newest finished processes.
    pub processes: Vec<SavedProcess>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedProcess {
    pub id: u32,
    pub name: String,
    pub kind: Kind,
    /// Exactly as given for what may run again; otherwise as `ps` shows it (secrets redacted),
    /// since it is only ever shown.
    pub argv: Vec<OsBytes>,
    /// The environment children run with: kept only for what may run again (tunnels, and
    /// commands with a restart policy), and only until it is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<(OsBytes, OsBytes)>>,
    /// The working directory, kept like `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<OsBytes>,
    pub restart: RestartPolicy,
    /// `run --max-restarts`; absent (as in every file before it) restarts for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    pub restarts: u32,
    /// OS children alive, or not yet known to be gone, when the file was written: the next
    /// daemon ends each that is still the same process.
    pub children: Vec<ChildId>,
    pub forward: Option<SavedForward>,
    /// How it ended; absent while it should run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<SavedEnd>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SavedForward {
    pub target: Target,
    pub tool: Tool,
    /// The port the tunnel was bound to, so it comes back on the same one.
    pub local_port: u16,
    pub wait_ms: u64,
    pub settings: TunnelSettings,
}

/// What `ps --all` shows of a finished process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedEnd {
    pub status: Ended,
    /// The pid of its last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When its last run started, in milliseconds since the epoch.
    pub started_at_ms: u64,
    /// For a tunnel, the port in the pod it last forwarded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    /// When it finished, in milliseconds since the epoch; absent in files written before it was
    /// kept, and then not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at_ms: Option<u64>,
}

/// The final phases, as the file writes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ended {
    Exited(i32),
    Killed(Option<Signal>),
    Failed(String),
    Lost,
    /// Written `{"crash_loop": {"restarts": N}}`.
    #[serde(rename = "crash_loop")]
    CrashLoop {
        restarts: u32,
    },
}

impl Ended {
    /// The final phase `phase` is, if it is one.
    pub fn of(phase: &Phase) -> Option<Ended> {
        Some(match phase {
            Phase::Exited(code) => Ended::Exited(*code),
            Phase::Killed(signal) => Ended::Killed(*signal),
            Phase::Failed(reason) => Ended::Failed(reason.clone()),
            Phase::Lost => Ended::Lost,
            Phase::CrashLoop { restarts } => Ended::CrashLoop {
                restarts: *restarts,
            },
            Phase::Starting
            | Phase::Running { .. }
            | Phase::Restarting
            | Phase::Reconnecting
            | Phase::Idle => {
                return None;
            }
        })
    }

    pub fn phase(self) -> Phase {
        match self {
            Ended::Exited(code) => Phase::Exited(code),
            Ended::Killed(signal) => Phase::Killed(signal),
            Ended::Failed(reason) => Phase::Failed(reason),
            Ended::Lost => Phase::Lost,
            Ended::CrashLoop { restarts } => Phase::CrashLoop { restarts },
        }
    }
}

impl SavedEnd {
    pub fn started_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.started_at_ms)
    }

    pub fn ended_at(&self) -> Option<SystemTime> {
        self.ended_at_ms
            .map(|ms| UNIX_EPOCH + Duration::from_millis(ms))
    }
}

impl SavedProcess {
    pub fn of(process: &Process) -> SavedProcess {
        let state = process.state();
        let ended = Ended::of(&state.phase).map(|status| SavedEnd {
            status,
            pid: state.pid(),
            started_at_ms: millis(state.started_at),
            remote_port: state.remote_port,
            ended_at_ms: state.ended_at.map(millis),
        });
        let runs_again = ended.is_none() && process.restart_policy() != RestartPolicy::Never;
        let argv = if runs_again {
            process.command_line().into_iter().map(OsBytes).collect()
        } else {
            let shown = process.command_line();
            redact_argv(shown.iter().map(|a| a.to_string_lossy()))
                .into_iter()
                .map(OsBytes::from)
                .collect()
        };
        let context = process.context();
        SavedProcess {
            id: process.id,
            name: process.name.clone(),
            kind: process.kind(),
            argv,
            env: runs_again.then(|| {
                context
                    .env
                    .iter()
                    .map(|(k, v)| (OsBytes(k.clone()), OsBytes(v.clone())))
                    .collect()
            }),
            cwd: runs_again.then(|| OsBytes(context.cwd.clone().into_os_string())),
            restart: process.restart_policy(),
            max_restarts: process.max_restarts(),
            restarts: state.restarts,
            children: state.children,
            forward: process.tunnel().map(|part| SavedForward {
                target: part.target.clone(),
                tool: part.tool.clone(),
                local_port: part.local_port(),
                wait_ms: part.wait.as_millis() as u64,
                settings: part.settings,
            }),
            ended,
        }
    }

    /// Whether it should be started again: not over, and a tunnel or a restartable command.
    pub fn runs_again(&self) -> bool {
        self.ended.is_none() && (self.forward.is_some() || self.restart != RestartPolicy::Never)
    }

    /// The environment and directory to run it with, when they were kept.
    pub fn context(&self) -> Option<Context> {
        Some(Context {
            env: self
                .env
                .as_ref()?
                .iter()
                .map(|(k, v)| (k.0.clone(), v.0.clone()))
                .collect(),
            cwd: PathBuf::from(self.cwd.as_ref()?.0.clone()),
        })
    }
}

/// Milliseconds since the epoch, as the file writes times.
pub fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Bytes exactly as the system gave them: written as a JSON string when they are UTF-8, so the
/// file stays readable, and as `{"hex": "..."}` (two digits a byte) when they are not, so none
/// is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OsBytes(pub OsString);

impl From<String> for OsBytes {
    fn from(text: String) -> OsBytes {
        OsBytes(text.into())
    }
}

impl Serialize for OsBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.to_str() {
            Some(text) => serializer.serialize_str(text),
            None => {
                let hex: String = self
                    .0
                    .as_bytes()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("hex", &hex)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OsBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OsBytes, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Text(String),
            Hex { hex: String },
        }
        Ok(OsBytes(match Written::deserialize(deserializer)? {
            Written::Text(text) => text.into(),
            Written::Hex { hex } => OsString::from_vec(
                from_hex(&hex)
                    .ok_or_else(|| serde::de::Error::custom(format!("{hex:?} is not hex")))?,
            ),
        }))
    }
}

/// The bytes two hex digits each stand for.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    let digits = hex
        .chars()
        .map(|c| c.to_digit(16).map(|d| d as u8))
        .collect::<Option<Vec<u8>>>()?;
    (digits.len() % 2 == 0).then(|| digits.chunks(2).map(|two| (two[0] << 4) | two[1]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_text_where_they_can_be_and_come_back_exactly() {
        let values = [
            OsBytes("plain".into()),
            OsBytes(OsString::from_vec(b"arg-\xff\xfe".to_vec())),
            OsBytes(OsString::new()),
        ];
        let json = serde_json::to_string(&values).unwrap();
        assert_eq!(json, r#"["plain",{"hex":"6172672dfffe"},""]"#);
        let back: Vec<OsBytes> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, values);
        for bad in [
            r#"{"hex":"abc"}"#,
            r#"{"hex":"zz"}"#,
            r#"{"hex":"+1"}"#,
            "[1]",
        ] {
            assert!(serde_json::from_str::<OsBytes>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_format_1_entry_reads_with_its_strings_and_environment() {
        let text = r#"{"id": 5, "name": "keeper", "kind": "Run", "argv": ["sleep", "1000"],
            "env": [["PATH", "/bin"]], "cwd": "/srv", "restart": "Always", "restarts": 2,
            "children": [{"pid": 10, "start_time": 99}], "forward": null}"#;
        let saved: SavedProcess = serde_json::from_str(text).unwrap();
        assert!(saved.runs_again());
        assert_eq!(saved.argv[1], OsBytes("1000".into()));
        let context = saved.context().unwrap();
        assert_eq!(context.env, [("PATH".into(), "/bin".into())]);
        assert_eq!(context.cwd, PathBuf::from("/srv"));
        assert!(saved.ended.is_none());
        assert_eq!(
            saved.max_restarts, None,
            "no limit: restarts go on for good"
        );
    }

    #[test]
    fn how_a_process_ended_is_written_in_words() {
        let end = SavedEnd {
            status: Ended::Killed(Some(Signal::Term)),
            pid: Some(7),
            started_at_ms: 1,
            remote_port: None,
            ended_at_ms: Some(2),
        };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"status":{"killed":"Term"},"pid":7,"started_at_ms":1,"ended_at_ms":2}"#
        );
        let before_ends_were_kept: SavedEnd =
            serde_json::from_str(r#"{"status":"lost","started_at_ms":1}"#).unwrap();
        assert_eq!(before_ends_were_kept.ended_at(), None);
        for phase in [
            Phase::Exited(-9),
            Phase::Killed(None),
            Phase::Failed("why".into()),
            Phase::Lost,
            Phase::CrashLoop { restarts: 3 },
        ] {
            assert_eq!(Ended::of(&phase).unwrap().phase(), phase);
        }
        assert_eq!(
            serde_json::to_string(&Ended::CrashLoop { restarts: 3 }).unwrap(),
            r#"{"crash_loop":{"restarts":3}}"#
        );
        assert_eq!(Ended::of(&Phase::Restarting), None);
    }
}
