//! Making a state file consistent before anything of it is loaded. A file edited by hand (or
//! damaged in a way that still parses) must never give two processes one id, where the table
//! would keep one and hide the other's running child, nor an id so high that giving out the
//! next ones wraps around to ids in use.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::file::{Ended, SavedEnd, StateFile};

/// The highest `next_id` a state file may hold; ids are below it. Higher ones come only from a
/// hand-edited file: half the id space is left above it, so that giving ids out one by one never
/// wraps.
pub const MAX_ID: u32 = 1 << 31;

impl StateFile {
    /// Makes the file consistent, and says what was changed:
    /// - every id is unique and from 1 to below `MAX_ID`: a process with an id that is taken by
    ///   one before it in the file, or out of range, gets the next free id;
    /// - `next_id` is above every id and at most `MAX_ID`;
    /// - what should run again has an environment and directory to run with, or is lost.
    ///
    /// `floor` (one past the highest id with a log on disk) raises `next_id` too, unsaid: ids of
    /// logs are given out already, even if the file does not know them.
    pub fn repair(&mut self, floor: u32) -> Vec<String> {
        let mut notes = Vec::new();
        let mut owners: BTreeMap<u32, String> = BTreeMap::new();
        let mut renumber = Vec::new();
        for (index, saved) in self.processes.iter().enumerate() {
            if !(1..MAX_ID).contains(&saved.id) || owners.contains_key(&saved.id) {
                renumber.push(index);
            } else {
                owners.insert(saved.id, saved.name.clone());
            }
        }
        let above_all = owners.keys().next_back().map_or(1, |id| id + 1);
        if self.next_id > MAX_ID {
            notes.push(format!(
                "next_id {} was beyond any id rhizome gives out",
                self.next_id
            ));
        } else if self.next_id < above_all {
            notes.push(format!(
                "next_id {} was not above every id in the file",
                self.next_id
            ));
        }
        let mut next = above_all.max(floor.min(MAX_ID));
        if self.next_id <= MAX_ID {
            next = next.max(self.next_id);
        }
        for index in renumber {
            let saved = &mut self.processes[index];
            let why = match owners.get(&saved.id) {
                Some(owner) => format!("the id {} of `{owner}`", saved.id),
                None => format!("the id {}, which rhizome never gives out", saved.id),
            };
            notes.push(format!(
                "`{}` had {why}; it is now id {next} and starts a new log",
                saved.name
            ));
            saved.id = next;
            next += 1;
        }
        self.next_id = next;
        for saved in &mut self.processes {
            if saved.runs_again() && saved.context().is_none() {
                notes.push(format!(
                    "`{}` should run again but its environment was not kept; it is recorded as lost",
                    saved.name
                ));
                saved.ended = Some(SavedEnd {
                    status: Ended::Lost,
                    pid: saved.children.first().map(|c| c.pid),
                    started_at_ms: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64),
                    remote_port: None,
                });
            }
        }
        notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::state::file::{OsBytes, SavedProcess};
    use crate::protocol::{Kind, RestartPolicy};

    fn keeper(id: u32, name: &str) -> SavedProcess {
        SavedProcess {
            id,
            name: name.into(),
            kind: Kind::Run,
            argv: vec![OsBytes("sleep".into())],
            env: Some(vec![(OsBytes("PATH".into()), OsBytes("/bin".into()))]),
            cwd: Some(OsBytes("/".into())),
            restart: RestartPolicy::Always,
            max_restarts: None,
            restarts: 0,
            children: Vec::new(),
            forward: None,
            ended: None,
        }
    }

    fn file(next_id: u32, processes: Vec<SavedProcess>) -> StateFile {
        StateFile {
            format: 1,
            next_id,
            processes,
        }
    }

    fn ids(file: &StateFile) -> Vec<u32> {
        file.processes.iter().map(|p| p.id).collect()
    }

    #[test]
    fn a_consistent_file_is_left_as_it_is() {
        let mut consistent = file(9, vec![keeper(2, "a"), keeper(5, "b")]);
        assert!(consistent.repair(1).is_empty());
        assert_eq!((ids(&consistent), consistent.next_id), (vec![2, 5], 9));
    }

    #[test]
    fn logs_on_disk_raise_next_id_without_a_word() {
        let mut behind = file(3, vec![keeper(2, "a")]);
        assert!(behind.repair(40).is_empty());
        assert_eq!(behind.next_id, 40);
    }

    #[test]
    fn a_taken_id_gives_the_later_process_a_new_one() {
        let mut twice = file(4, vec![keeper(3, "first"), keeper(3, "second")]);
        let notes = twice.repair(1);
        assert_eq!(ids(&twice), [3, 4]);
        assert_eq!(twice.next_id, 5);
        assert_eq!(
            notes,
            ["`second` had the id 3 of `first`; it is now id 4 and starts a new log"]
        );
    }

    #[test]
    fn ids_out_of_range_and_a_next_id_near_the_end_are_brought_back() {
        let mut wrapping = file(
            u32::MAX,
            vec![
                keeper(0, "zero"),
                keeper(7, "fine"),
                keeper(u32::MAX, "top"),
            ],
        );
        let notes = wrapping.repair(3);
        assert_eq!(ids(&wrapping), [8, 7, 9]);
        assert_eq!(wrapping.next_id, 10);
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[0].contains("next_id 4294967295 was beyond"),
            "{notes:?}"
        );
        assert!(notes[1].contains("the id 0, which rhizome never gives out"));

        let mut behind = file(2, vec![keeper(6, "a")]);
        assert_eq!(behind.repair(1).len(), 1);
        assert_eq!(behind.next_id, 7);
    }

    #[test]
    fn what_should_run_without_an_environment_is_lost() {
        let mut bare = keeper(1, "bare");
        bare.env = None;
        let mut without = file(2, vec![bare]);
        let notes = without.repair(1);
        assert_eq!(notes.len(), 1, "{notes:?}");
        let ended = without.processes[0].ended.as_ref().unwrap();
        assert_eq!(ended.status, Ended::Lost);
        assert!(!without.processes[0].runs_again());
    }
}
