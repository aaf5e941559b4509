//! `rhizome logs NAME NAME...` and `logs --all`: several logs as one. First what each holds (the
//! last N lines of each), merged oldest line first; then, with `follow`, their new lines as they
//! are written, until every process is final. `--all` follows the processes started meanwhile
//! too, and so never ends by itself until the daemon stops.

use std::sync::Arc;

use futures_util::future::{join_all, select_all};
use tokio::sync::watch;

use super::logs::unreadable;
use crate::connection::DaemonSide;
use crate::daemon::Daemon;
use crate::daemon::logs::Progress;
use crate::daemon::logs::merge::{self, Clock, Fed, Merge};
use crate::daemon::logs::read::{LogCursor, Piece};
use crate::daemon::process::{Process, RunState};
use crate::protocol::{ErrorReply, LogPart, MergedLogsRequest, MergedPiece, Response};

/// Bytes of log per message, and read from one log before the others get their turn.
const BATCH: usize = 64 * 1024;

/// A failure to tell the client, after which the stream ends.
type Told = Response;

pub(super) async fn merged_logs(
    daemon: &Daemon,
    conn: &mut DaemonSide,
    request: MergedLogsRequest,
) -> std::io::Result<()> {
    // Before the table is read: a process added from here on is seen to be new.
    let mut added = daemon.table.added();
    added.borrow_and_update();
    match stream(daemon, conn, &request, &mut added).await? {
        Ok(()) => conn.send(&Response::LogEnd).await,
        Err(told) => conn.send(&told).await,
    }
}

/// The whole answer but its end: `Ok(Err(..))` is a failure to tell, `Err` a client gone.
async fn stream(
    daemon: &Daemon,
    conn: &mut DaemonSide,
    request: &MergedLogsRequest,
    added: &mut watch::Receiver<u64>,
) -> std::io::Result<Result<(), Told>> {
    let processes = match chosen(daemon, request) {
        Ok(processes) => processes,
        Err(reply) => return Ok(Err(Response::Error(reply))),
    };
    let opened = join_all(
        processes
            .into_iter()
            .map(|process| Source::open(process, request.lines)),
    )
    .await;
    let mut sources = match opened.into_iter().collect::<Result<Vec<Source>, Told>>() {
        Ok(sources) => sources,
        Err(told) => return Ok(Err(told)),
    };
    let mut batch: Vec<MergedPiece> = sources.iter().map(Source::announce).collect();
    if let Err(told) = backlog(conn, &mut sources, &mut batch).await? {
        return Ok(Err(told));
    }
    conn.send(&Response::LogCaughtUp).await?;
    if !request.follow {
        return Ok(Ok(()));
    }
    follow(daemon, conn, request, sources, added).await
}

/// New lines as they are written, in rounds: every log that changed is read on (a batch's
/// worth at most, so that one flood does not hold up the rest), then the stream waits for the
/// next change. Ends once every process is final, but while `--all` looks for new processes.
async fn follow(
    daemon: &Daemon,
    conn: &mut DaemonSide,
    request: &MergedLogsRequest,
    mut sources: Vec<Source>,
    added: &mut watch::Receiver<u64>,
) -> std::io::Result<Result<(), Told>> {
    // Processes started meanwhile are looked for until the daemon begins to stop: it starts
    // nothing after that, and the stream ends once the ones it has are final.
    let mut watching = request.all;
    // Whether to look for new processes: waiting on `added` marks its change seen.
    let mut look = false;
    loop {
        let mut batch = Vec::new();
        let mut behind = false;
        // With `--all` a finished process stays in: should it run again, its lines come too.
        for source in sources.iter_mut().filter(|s| request.all || !s.done) {
            if !source.behind && !source.changed() {
                continue;
            }
            if let Err(told) = source.read_on(&mut batch).await {
                return Ok(Err(told));
            }
            behind |= source.behind;
            if merge::size(&batch) >= BATCH {
                conn.send(&Response::MergedLog(std::mem::take(&mut batch)))
                    .await?;
            }
        }
        if watching && (std::mem::take(&mut look) || added.has_changed().unwrap_or(false)) {
            added.borrow_and_update();
            match take_in_new(daemon, &mut sources, &mut batch).await {
                Ok(new) => behind |= new,
                Err(told) => return Ok(Err(told)),
            }
        }
        if !batch.is_empty() {
            conn.send(&Response::MergedLog(batch)).await?;
        }
        watching &= !daemon.stop.is_cancelled();
        if !watching && sources.iter().all(|s| s.done) {
            return Ok(Ok(()));
        }
        if behind {
            continue;
        }
        tokio::select! {
            // Waiting marked its change seen: it is read in the next round whatever `changed`
            // says.
            woken = any_changed(&mut sources, request.all) => sources[woken].behind = true,
            _ = added.changed(), if watching => look = true,
            _ = daemon.stop.cancelled(), if watching => {}
            // The client went away (Ctrl-C) or spoke out of turn: stop following.
            _ = conn.recv() => return Err(std::io::ErrorKind::ConnectionAborted.into()),
        }
    }
}

/// Adds the processes not followed yet (they are new) to `sources`, announced in `batch`, to be
/// read from their first line in the next round. Whether there were any.
async fn take_in_new(
    daemon: &Daemon,
    sources: &mut Vec<Source>,
    batch: &mut Vec<MergedPiece>,
) -> Result<bool, Told> {
    let mut any = false;
    for process in daemon.table.list(false) {
        if sources.iter().any(|s| s.process.id == process.id) {
            continue;
        }
        let mut source = Source::open(process, None).await?;
        source.behind = true;
        batch.push(source.announce());
        sources.push(source);
        any = true;
    }
    Ok(any)
}

/// The processes asked for: the named ones in the order named, each once, or every one not
/// final. A name that resolves to none (or to several running) refuses the whole request.
fn chosen(daemon: &Daemon, request: &MergedLogsRequest) -> Result<Vec<Arc<Process>>, ErrorReply> {
    if request.all {
        return Ok(daemon.table.list(false));
    }
    let mut found: Vec<Arc<Process>> = Vec::new();
    for target in &request.targets {
        let process = daemon.table.resolve(target)?;
        if !found.iter().any(|p| p.id == process.id) {
            found.push(process);
        }
    }
    Ok(found)
}

/// What the logs hold now, merged, sent in batches; the last, partial batch is sent too.
async fn backlog(
    conn: &mut DaemonSide,
    sources: &mut [Source],
    batch: &mut Vec<MergedPiece>,
) -> std::io::Result<Result<(), Told>> {
    let mut merge = Merge::new(sources.iter().map(|s| s.process.id), Clock::now());
    loop {
        let needs = merge.needs();
        if !needs.is_empty() {
            // Read together: with `-n`, every log's tail in one round.
            let reads = sources
                .iter_mut()
                .enumerate()
                .filter(|(i, _)| needs.contains(i))
                .map(|(i, source)| async move { (i, source.fill().await) });
            for (i, read) in join_all(reads).await {
                match read {
                    Ok(pieces) => pieces.into_iter().for_each(|fed| merge.feed(i, fed)),
                    Err(told) => return Ok(Err(told)),
                }
            }
            continue;
        }
        let more = merge.take(batch);
        if !more || merge::size(batch) >= BATCH {
            conn.send(&Response::MergedLog(std::mem::take(batch)))
                .await?;
        }
        if !more {
            return Ok(Ok(()));
        }
    }
}

/// One log in the stream.
struct Source {
    process: Arc<Process>,
    cursor: LogCursor,
    /// Marked seen before each read to the end, so that whatever is written after it wakes us.
    progress: watch::Receiver<Progress>,
    state: watch::Receiver<RunState>,
    /// The process was final when last marked: once read to the end, nothing more will come.
    final_when_marked: bool,
    /// Read to the end after the process was final.
    done: bool,
    /// To be read in the next round without asking whether it changed: more was written than
    /// its last turn read, it is new, or waiting for it marked its change seen.
    behind: bool,
}

impl Source {
    async fn open(process: Arc<Process>, lines: Option<u64>) -> Result<Source, Told> {
        let progress = process.log.subscribe();
        let state = process.watch();
        let cursor = LogCursor::open(process.log.clone(), lines)
            .await
            .map_err(|err| unreadable(&process, err))?;
        let mut source = Source {
            process,
            cursor,
            progress,
            state,
            final_when_marked: false,
            done: false,
            behind: false,
        };
        source.mark();
        Ok(source)
    }

    fn announce(&self) -> MergedPiece {
        MergedPiece {
            id: self.process.id,
            part: LogPart::Source(self.process.name.clone()),
        }
    }

    /// Notes where the log and the process are, before reading to the end: the final status is
    /// set only once the last line is written.
    fn mark(&mut self) {
        self.progress.borrow_and_update();
        self.final_when_marked = self.state.borrow_and_update().phase.is_final();
    }

    /// Whether something happened since the last mark. The senders live as long as the process
    /// this source holds, so they cannot be gone.
    fn changed(&self) -> bool {
        self.progress.has_changed().unwrap_or(false) || self.state.has_changed().unwrap_or(false)
    }

    /// The next pieces of the log for the backlog's merge: until a gap, the end of what is
    /// written, or a batch's worth.
    async fn fill(&mut self) -> Result<Vec<Fed>, Told> {
        let mut fed = Vec::new();
        let mut bytes = 0;
        while bytes < BATCH {
            match self.next().await? {
                Some(Piece::Bytes(chunk)) => {
                    bytes += chunk.len();
                    fed.push(Fed::Bytes(chunk));
                }
                Some(Piece::Gap(missed)) => {
                    fed.push(Fed::Gap(missed.gaps(&self.process.name)));
                    break;
                }
                None => {
                    fed.push(Fed::End);
                    // Read to the end: with a final process, the backlog was everything.
                    self.done = self.final_when_marked;
                    break;
                }
            }
        }
        Ok(fed)
    }

    /// Reads on from the last read into `out`, at most a batch's worth.
    async fn read_on(&mut self, out: &mut Vec<MergedPiece>) -> Result<(), Told> {
        self.mark();
        let id = self.process.id;
        let mut bytes = 0;
        self.behind = true;
        while bytes < BATCH {
            match self.next().await? {
                Some(Piece::Bytes(chunk)) => {
                    bytes += chunk.len();
                    merge::push_bytes(out, id, chunk);
                }
                Some(Piece::Gap(missed)) => out.extend(
                    missed
                        .gaps(&self.process.name)
                        .into_iter()
                        .map(|gap| MergedPiece {
                            id,
                            part: LogPart::Gap(gap),
                        }),
                ),
                None => {
                    self.behind = false;
                    break;
                }
            }
        }
        self.done = !self.behind && self.final_when_marked;
        Ok(())
    }

    async fn next(&mut self) -> Result<Option<Piece>, Told> {
        self.cursor
            .next()
            .await
            .map_err(|err| unreadable(&self.process, err))
    }
}

/// Waits until one of the logs followed, or its process, changes, and says which (by its
/// index). Only that one's change is marked seen: the waits of the others are dropped undone.
async fn any_changed(sources: &mut [Source], all: bool) -> usize {
    let waits: Vec<_> = sources
        .iter_mut()
        .enumerate()
        .filter(|(_, s)| all || !s.done)
        .map(|(i, s)| {
            Box::pin(async move {
                tokio::select! {
                    _ = s.progress.changed() => {}
                    _ = s.state.changed() => {}
                }
                i
            })
        })
        .collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    select_all(waits).await.0
}
