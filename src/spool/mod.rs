//! The write-ahead spool of the `spooled` ack mode: a callback is answered 200 once its event
//! is on local disk (fsync'd), and a background drainer publishes the spool to Kafka in order.
//!
//! - One writer thread appends records. It takes every request waiting at that moment, writes
//!   them together and fsyncs once (group commit), so the cost of an fsync is shared. A failed
//!   write is undone (the segment cut back to its last record) and retried with the next batch
//!   or a probe, so the spool recovers by itself when the disk does.
//! - The drainer reads durable records in order, publishes them with a bounded window, and
//!   advances a checkpoint over the records Kafka acknowledged. It deletes segments that are
//!   fully behind the checkpoint. A record Kafka can never take is dead-lettered, not retried
//!   for ever.
//! - Damaged bytes (a flipped bit, a zeroed block) never stop it: the reader resynchronizes on
//!   the framing, so every intact record is published, and the damaged bytes are copied to
//!   `quarantine/`, counted, and logged at error level.
//! - On start, an incomplete last record (a write a crash cut short, never acknowledged) is
//!   cut off, a checkpoint that cannot be right is reported and not trusted, and everything
//!   after the checkpoint is published again. That is at least once: the same event ids,
//!   deduplicated by consumers.

pub mod log;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{oneshot, Notify};
use tracing::{error, info, warn};

use crate::internal_events::{
    InternalEvent, SpoolCheckpointDistrusted, SpoolDamageQuarantined, SpoolEventsDestroyed,
    SpoolTornTailCut, SpoolWriteFailed,
};
use crate::kafka::{OutgoingRecord, PublishError, Publisher};
use crate::metrics::Metrics;
use log::{Checkpoint, Parsed, Position};

/// Space is reclaimed a segment at a time, so a segment is a fraction of the spool's limit:
/// the disk holds at most the undelivered records plus one segment.
fn segment_bytes_for(max_bytes: u64) -> u64 {
    (max_bytes / 8).clamp(64 * 1024, 16 * 1024 * 1024)
}
/// Room a record may need at most (a 64 KiB body, escaped, in its envelope), for readiness.
const FULL_HEADROOM: u64 = 160 * 1024;
/// Most appends written and fsync'd together.
const MAX_BATCH: usize = 4096;
/// How often the checkpoint is persisted while the drainer makes progress.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// While writes fail, how often the writer probes whether the disk took them again.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Before a record whose delivery failed for the moment is sent again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The reader drops what it has consumed of a segment once it is this large.
const READ_BUFFER_KEEP: usize = 1024 * 1024;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SpoolError {
    #[error("the spool is full (ZEGO_BRIDGE_SPOOL_MAX_BYTES reached)")]
    Full,
    #[error("the spool cannot write to disk: {0}")]
    Failed(String),
    #[error("the spool is closed")]
    Closed,
}

impl SpoolError {
    pub fn reason(&self) -> &'static str {
        match self {
            SpoolError::Full => "spool_full",
            SpoolError::Failed(_) => "spool_failed",
            SpoolError::Closed => "shutting_down",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SpoolOptions {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Records published and not yet acknowledged, at most.
    pub window: usize,
}

struct AppendRequest {
    body: Vec<u8>,
    done: oneshot::Sender<Result<(), SpoolError>>,
}

/// What is on disk and fsync'd, as the writer last left it: read together by the drainer.
#[derive(Debug, Clone, Copy)]
struct Durable {
    /// The end of the last durable record.
    end: Position,
    /// Records written since the spool was opened, plus those pending at open.
    records: u64,
}

/// Since when, and why, the spool cannot write.
#[derive(Debug, Clone)]
struct Failure {
    error: String,
    since: Instant,
}

/// State shared by the writer, the drainer and the request handlers.
struct State {
    dir: PathBuf,
    max_bytes: u64,
    durable: Mutex<Durable>,
    /// Records delivered (or dead-lettered, or destroyed) since open: `records - delivered` is
    /// what the spool still holds.
    delivered: AtomicU64,
    /// Bytes in live segment files.
    bytes: AtomicU64,
    appended: Notify,
    failure: Mutex<Option<Failure>>,
    metrics: Arc<Metrics>,
}

impl State {
    fn durable(&self) -> Durable {
        *self.durable.lock().expect("spool lock")
    }

    fn pending(&self) -> u64 {
        self.durable()
            .records
            .saturating_sub(self.delivered.load(Ordering::Acquire))
    }

    fn publish_gauges(&self) {
        self.metrics
            .set_spool(self.bytes.load(Ordering::Acquire), self.pending());
    }
}

pub struct Spool {
    state: Arc<State>,
    appends: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Notify>,
    drainer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    window: usize,
    start: Position,
}

/// What the spool holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    pub bytes: u64,
    pub pending: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `options.dir`, recovering what a previous run left.
    pub fn open(options: &SpoolOptions, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        fs::create_dir_all(&options.dir)?;
        let dir = &options.dir;
        let mut segments = log::list_segments(dir)?;
        if segments.is_empty() {
            let path = log::segment_path(dir, 0);
            File::create(&path)?.sync_all()?;
            File::open(dir)?.sync_all()?;
            segments.push((0, path));
        }
        let start = recover_checkpoint(dir, &segments, &metrics)?;
        let (last_id, last_path) = segments.last().cloned().expect("one segment at least");
        let mut pending = 0;
        for (id, path) in segments.iter().filter(|(id, _)| *id >= start.segment) {
            let from = if *id == start.segment {
                start.offset
            } else {
                0
            };
            let scan = log::scan_segment(path, from)?;
            pending += scan.record_ends.len() as u64;
            if let (true, Some(torn_from)) = (*id == last_id, scan.incomplete_from) {
                let length = fs::metadata(path)?.len();
                let torn = log::read_range(path, torn_from, length - torn_from)?;
                let kept = log::quarantine(dir, *id, torn_from, &torn)?;
                log::truncate(path, torn_from)?;
                SpoolTornTailCut {
                    segment: path,
                    offset: torn_from,
                    bytes: torn.len(),
                    quarantine: &kept,
                }
                .emit(&metrics);
            }
        }
        let last_length = fs::metadata(&last_path)?.len();
        let mut bytes = 0;
        for (_, path) in &segments {
            bytes += fs::metadata(path)?.len();
        }
        let state = Arc::new(State {
            dir: dir.clone(),
            max_bytes: options.max_bytes,
            durable: Mutex::new(Durable {
                end: Position {
                    segment: last_id,
                    offset: last_length,
                },
                records: pending,
            }),
            delivered: AtomicU64::new(0),
            bytes: AtomicU64::new(bytes),
            appended: Notify::new(),
            failure: Mutex::new(None),
            metrics,
        });
        remove_delivered_segments(&state, start)?;
        state.publish_gauges();
        if pending > 0 {
            info!(
                pending,
                dir = %dir.display(),
                "recovered undelivered events from the spool; publishing them again"
            );
        }
        let (appends, requests) = mpsc::channel();
        let writer_state = state.clone();
        let writer = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || Writer::new(writer_state, last_id, last_length).run(&requests))
            .expect("spawning the spool writer");
        Ok(Spool {
            state,
            appends: Mutex::new(Some(appends)),
            writer: Mutex::new(Some(writer)),
            stopping: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(Notify::new()),
            drainer: Mutex::new(None),
            window: options.window.max(1),
            start,
        })
    }

    /// Appends a record; resolves once it is on disk. While writes fail, each append still
    /// tries: the first that succeeds ends the failure.
    pub async fn append(&self, record: &OutgoingRecord) -> Result<(), SpoolError> {
        self.submit(record)?
            .await
            .unwrap_or(Err(SpoolError::Closed))
    }

    /// Hands `record` to the writer without waiting for it to be written: the receiver says
    /// when it is on disk, or why it could not be. Once this returns `Ok`, the record is
    /// written whether or not anyone waits.
    pub fn submit(
        &self,
        record: &OutgoingRecord,
    ) -> Result<oneshot::Receiver<Result<(), SpoolError>>, SpoolError> {
        let body = serde_json::to_vec(record).map_err(|err| SpoolError::Failed(err.to_string()))?;
        let (done, outcome) = oneshot::channel();
        let appends = self.appends.lock().expect("spool lock");
        let Some(appends) = appends.as_ref() else {
            return Err(SpoolError::Closed);
        };
        appends
            .send(AppendRequest { body, done })
            .map_err(|_| SpoolError::Closed)?;
        Ok(outcome)
    }

    /// Why the spool cannot write now, if it cannot.
    pub fn failure(&self) -> Option<String> {
        self.state
            .failure
            .lock()
            .expect("spool lock")
            .as_ref()
            .map(|failure| failure.error.clone())
    }

    /// How long the spool has been unable to write, if it is.
    pub fn failing_for(&self) -> Option<Duration> {
        self.state
            .failure
            .lock()
            .expect("spool lock")
            .as_ref()
            .map(|failure| failure.since.elapsed())
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            bytes: self.state.bytes.load(Ordering::Acquire),
            pending: self.state.pending(),
        }
    }

    /// True when the spool may refuse the next callback: less room is left than a record of
    /// the largest body takes.
    pub fn is_full(&self) -> bool {
        let used = self.state.bytes.load(Ordering::Acquire);
        self.state.max_bytes.saturating_sub(used) < FULL_HEADROOM
    }

    /// Starts publishing the spool through `publisher`.
    pub fn start_draining(&self, publisher: Arc<Publisher>) {
        let drainer = Drainer {
            state: self.state.clone(),
            publisher,
            stopping: self.stopping.clone(),
            stop: self.stop.clone(),
            window: self.window,
            reader: Reader::new(self.state.dir.clone(), self.start),
            checkpoint: self.start,
        };
        *self.drainer.lock().expect("spool lock") = Some(tokio::spawn(drainer.run()));
    }

    /// Stops taking appends and stops reading new records; deliveries under way still
    /// complete and advance the checkpoint until [`Spool::finish`].
    pub fn stop_appending(&self) {
        self.appends.lock().expect("spool lock").take();
        self.stopping.store(true, Ordering::Release);
        if let Some(writer) = self.writer.lock().expect("spool lock").take() {
            let _ = writer.join();
        }
    }

    /// Ends the drainer (which persists the checkpoint) and reports what stays in the spool
    /// for the next start.
    pub async fn finish(&self) -> SpoolStats {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_one();
        let drainer = self.drainer.lock().expect("spool lock").take();
        if let Some(drainer) = drainer {
            let _ = drainer.await;
        }
        self.state.publish_gauges();
        self.stats()
    }
}

/// Where draining starts: the checkpoint, if it can be right; else the start of the spool,
/// reported (publishing everything again duplicates events but loses none).
fn recover_checkpoint(
    dir: &Path,
    segments: &[(u64, PathBuf)],
    metrics: &Metrics,
) -> std::io::Result<Position> {
    let first = Position {
        segment: segments[0].0,
        offset: 0,
    };
    let distrust = |why: String| {
        SpoolCheckpointDistrusted { dir, why: &why }.emit(metrics);
        first
    };
    let checkpoint = match log::read_checkpoint(dir) {
        Ok(Some(checkpoint)) => checkpoint,
        Ok(None) => return Ok(first),
        Err(err) if err.kind() == std::io::ErrorKind::InvalidData => {
            return Ok(distrust(err.to_string()))
        }
        Err(err) => return Err(err),
    };
    let candidate = match checkpoint {
        Checkpoint::At(position) => position,
        // Written before 0.2: segments were named after their first record's number.
        Checkpoint::RecordNumber(number) => {
            let Some((id, path)) = segments.iter().rev().find(|(id, _)| *id <= number) else {
                return Ok(first);
            };
            let scan = log::scan_segment(path, 0)?;
            let skip = (number - id) as usize;
            match skip {
                0 => Position {
                    segment: *id,
                    offset: 0,
                },
                _ => match scan.record_ends.get(skip - 1) {
                    Some(end) => Position {
                        segment: *id,
                        offset: *end,
                    },
                    None => {
                        return Ok(distrust(format!(
                            "record {number} is past the data of segment {id}"
                        )))
                    }
                },
            }
        }
    };
    if candidate.segment < first.segment {
        // Its segment was delivered and deleted; what remains is after it.
        return Ok(first);
    }
    let Some((_, path)) = segments.iter().find(|(id, _)| *id == candidate.segment) else {
        return Ok(distrust(format!(
            "it names segment {}, which does not exist",
            candidate.segment
        )));
    };
    let scan = log::scan_segment(path, candidate.offset)?;
    if !scan.from_is_a_boundary {
        return Ok(distrust(format!(
            "offset {} of segment {} is past the data or inside a record",
            candidate.offset, candidate.segment
        )));
    }
    Ok(candidate)
}

/// Appends batches to the last segment; owns the segment file.
struct Writer {
    state: Arc<State>,
    segment: u64,
    file: Option<File>,
    /// Bytes of the segment that hold whole, durable records: a failed write is cut back to it.
    length: u64,
    segment_limit: u64,
    buffer: Vec<u8>,
}

impl Writer {
    fn new(state: Arc<State>, segment: u64, length: u64) -> Self {
        let segment_limit = segment_bytes_for(state.max_bytes);
        Writer {
            state,
            segment,
            file: None,
            length,
            segment_limit,
            buffer: Vec::with_capacity(1024 * 1024),
        }
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            let path = log::segment_path(&self.state.dir, self.segment);
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            // Whatever a failed write left past the last whole record goes first.
            if file.metadata()?.len() != self.length {
                file.set_len(self.length)?;
            }
            File::open(&self.state.dir)?.sync_all()?;
            self.file = Some(file);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    // Blocks for the first request of each batch; ends when every sender is gone.
    fn run(mut self, requests: &mpsc::Receiver<AppendRequest>) {
        loop {
            let first = if self.failing() {
                match requests.recv_timeout(PROBE_EVERY) {
                    Ok(request) => request,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.probe();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match requests.recv() {
                    Ok(request) => request,
                    Err(_) => return,
                }
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
    }

    fn failing(&self) -> bool {
        self.state.failure.lock().expect("spool lock").is_some()
    }

    fn write_batch(&mut self, batch: Vec<AppendRequest>) {
        self.buffer.clear();
        let mut accepted = Vec::with_capacity(batch.len());
        let used = self.state.bytes.load(Ordering::Acquire);
        for request in batch {
            let framed = request.body.len() as u64 + log::HEADER_BYTES;
            if used + self.buffer.len() as u64 + framed > self.state.max_bytes {
                let _ = request.done.send(Err(SpoolError::Full));
                continue;
            }
            log::frame(&request.body, &mut self.buffer);
            accepted.push(request.done);
        }
        if accepted.is_empty() {
            return;
        }
        match self.append_buffer() {
            Ok(()) => {
                self.recovered();
                self.state.metrics.spool_written(accepted.len());
                {
                    let mut durable = self.state.durable.lock().expect("spool lock");
                    durable.end = Position {
                        segment: self.segment,
                        offset: self.length,
                    };
                    durable.records += accepted.len() as u64;
                }
                for done in accepted {
                    let _ = done.send(Ok(()));
                }
                self.state.publish_gauges();
                self.state.appended.notify_one();
            }
            Err(err) => {
                self.failed(&err.to_string());
                for done in accepted {
                    let _ = done.send(Err(SpoolError::Failed(err.to_string())));
                }
            }
        }
    }

    /// Writes the buffer at the end of the segment (a new one when it is full) and fsyncs.
    fn append_buffer(&mut self) -> std::io::Result<()> {
        if self.length >= self.segment_limit {
            // The segment left behind must end with its last whole record.
            self.open()?;
            let next = self.segment + 1;
            File::create(log::segment_path(&self.state.dir, next))?;
            File::open(&self.state.dir)?.sync_all()?;
            self.segment = next;
            self.length = 0;
            self.file = None;
        }
        let buffer = std::mem::take(&mut self.buffer);
        let written = (|| {
            let file = self.open()?;
            file.write_all(&buffer)?;
            file.sync_data()
        })();
        self.buffer = buffer;
        match written {
            Ok(()) => {
                self.length += self.buffer.len() as u64;
                self.state
                    .bytes
                    .fetch_add(self.buffer.len() as u64, Ordering::AcqRel);
                Ok(())
            }
            Err(err) => {
                // Part of the batch may be in the file: reopen (and cut back) before the next.
                self.file = None;
                Err(err)
            }
        }
    }

    /// While writes fail: can the disk take a write again? A probe file is written, fsync'd
    /// and removed, and the segment cut back to its last whole record.
    fn probe(&mut self) {
        let probe = self.state.dir.join(".write-probe");
        let result = File::create(&probe)
            .and_then(|mut file| {
                file.write_all(b"probe")?;
                file.sync_all()
            })
            .and_then(|()| fs::remove_file(&probe))
            .and_then(|()| self.open().map(|_| ()));
        match result {
            Ok(()) => self.recovered(),
            Err(err) => {
                let mut failure = self.state.failure.lock().expect("spool lock");
                if let Some(failure) = failure.as_mut() {
                    failure.error = err.to_string();
                }
            }
        }
    }

    fn failed(&self, error: &str) {
        let mut failure = self.state.failure.lock().expect("spool lock");
        SpoolWriteFailed {
            dir: &self.state.dir,
            error,
            began: failure.is_none(),
        }
        .emit(&self.state.metrics);
        if failure.is_none() {
            *failure = Some(Failure {
                error: error.to_owned(),
                since: Instant::now(),
            });
        }
    }

    fn recovered(&self) {
        let mut failure = self.state.failure.lock().expect("spool lock");
        if let Some(previous) = failure.take() {
            info!(
                after_ms = previous.since.elapsed().as_millis() as u64,
                "the spool can write to disk again; accepting callbacks"
            );
        }
    }
}

/// Deletes segments wholly before `checkpoint`.
fn remove_delivered_segments(state: &State, checkpoint: Position) -> std::io::Result<()> {
    for (id, path) in log::list_segments(&state.dir)? {
        if id < checkpoint.segment {
            let size = fs::metadata(&path)?.len();
            fs::remove_file(&path)?;
            state.bytes.fetch_sub(size, Ordering::AcqRel);
        }
    }
    Ok(())
}

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    Record {
        body: Vec<u8>,
        end: Position,
    },
    /// Bytes that are no record, with where they start; the reader has moved past them.
    Damaged {
        at: Position,
        bytes: Vec<u8>,
    },
    /// Nothing more is durable yet.
    Wait,
}

/// Reads the spool's records in order from a position, up to what is durable, across
/// segments, resynchronizing after damage.
pub struct Reader {
    dir: PathBuf,
    position: Position,
    /// Bytes of the current segment from `base` on.
    buffer: Vec<u8>,
    base: u64,
}

impl Reader {
    pub fn new(dir: PathBuf, position: Position) -> Self {
        Reader {
            dir,
            position,
            buffer: Vec::new(),
            base: position.offset,
        }
    }

    pub fn position(&self) -> Position {
        self.position
    }

    /// The next record or damage before `limit` (the end of what is durable).
    pub fn next(&mut self, limit: Position) -> std::io::Result<Step> {
        loop {
            if self.position.segment > limit.segment {
                return Ok(Step::Wait);
            }
            let active = self.position.segment == limit.segment;
            let path = log::segment_path(&self.dir, self.position.segment);
            let readable = if active {
                limit.offset
            } else {
                fs::metadata(&path)?.len()
            };
            self.fill(&path, readable)?;
            let at = (self.position.offset - self.base) as usize;
            let end_of = |end: usize| Position {
                segment: self.position.segment,
                offset: self.base + end as u64,
            };
            match log::parse(&self.buffer, at) {
                Parsed::Record { start, end } => {
                    let body = self.buffer[start + log::HEADER_BYTES as usize..end].to_vec();
                    self.position = end_of(end);
                    return Ok(Step::Record {
                        body,
                        end: self.position,
                    });
                }
                // What is durable is whole: anything there that is no record is damage, as is
                // an incomplete record in a segment that is no longer written.
                Parsed::Damaged { start, end, .. } => {
                    let bytes = self.buffer[start..end].to_vec();
                    let damaged_at = end_of(start);
                    self.position = end_of(end);
                    return Ok(Step::Damaged {
                        at: damaged_at,
                        bytes,
                    });
                }
                Parsed::Incomplete { start } => {
                    let bytes = self.buffer[start..].to_vec();
                    let damaged_at = end_of(start);
                    self.position = end_of(self.buffer.len());
                    return Ok(Step::Damaged {
                        at: damaged_at,
                        bytes,
                    });
                }
                Parsed::End if active => return Ok(Step::Wait),
                Parsed::End => {
                    // The rest is in the next segment there is.
                    let next = log::list_segments(&self.dir)?
                        .into_iter()
                        .map(|(id, _)| id)
                        .find(|id| *id > self.position.segment);
                    match next {
                        Some(id) => {
                            self.position = Position {
                                segment: id,
                                offset: 0,
                            };
                            self.buffer.clear();
                            self.base = 0;
                        }
                        None => return Ok(Step::Wait),
                    }
                }
            }
        }
    }

    /// Makes the buffer hold the segment's bytes from the position up to `readable`.
    fn fill(&mut self, path: &Path, readable: u64) -> std::io::Result<()> {
        let consumed = (self.position.offset - self.base) as usize;
        if consumed > READ_BUFFER_KEEP {
            self.buffer.drain(..consumed);
            self.base = self.position.offset;
        }
        // `readable` only grows: the writer publishes a durable end after its fsync.
        let have = self.base + self.buffer.len() as u64;
        if readable > have {
            let more = log::read_range(path, have, readable - have)?;
            self.buffer.extend_from_slice(&more);
        }
        Ok(())
    }
}

struct Drainer {
    state: Arc<State>,
    publisher: Arc<Publisher>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Notify>,
    window: usize,
    reader: Reader,
    /// Everything before it was delivered.
    checkpoint: Position,
}

type Completion = (
    u64,
    OutgoingRecord,
    Result<crate::kafka::DeliveryOutcomeReport, oneshot::error::RecvError>,
);

/// A record published by the drainer, resolving to its delivery report.
async fn awaiting(
    seq: u64,
    record: OutgoingRecord,
    outcome: oneshot::Receiver<crate::kafka::DeliveryOutcomeReport>,
) -> Completion {
    (seq, record, outcome.await)
}

impl Drainer {
    async fn run(mut self) {
        // Session-local numbers of the records read, in order; each maps to where it ends.
        let mut next: u64 = 0;
        let mut ends: BTreeMap<u64, Position> = BTreeMap::new();
        let mut completed = BTreeSet::new();
        let mut done_through: u64 = 0;
        let mut in_flight = FuturesUnordered::new();
        let mut persisted = self.checkpoint;
        let mut last_persist = Instant::now();
        // Records whose delivery failed for the moment, to be sent again once their time comes.
        let mut retries: VecDeque<(Instant, u64, OutgoingRecord)> = VecDeque::new();
        loop {
            let stopping = self.stopping.load(Ordering::Acquire);
            while !stopping
                && in_flight.len() < self.window
                && retries
                    .front()
                    .is_some_and(|(due, _, _)| *due <= Instant::now())
            {
                let (_, seq, record) = retries.pop_front().expect("checked above");
                match self.enqueue(&record).await {
                    Some(outcome) => in_flight.push(awaiting(seq, record, outcome)),
                    None => break,
                }
            }
            // Publish durable records while the window has room.
            while !stopping && in_flight.len() < self.window {
                let durable = self.state.durable();
                let step = match self.reader.next(durable.end) {
                    Ok(step) => step,
                    Err(err) => {
                        error!(error = %err, "cannot read the spool; retrying");
                        self.reader = Reader::new(self.state.dir.clone(), self.reader.position());
                        break;
                    }
                };
                match step {
                    Step::Record { body, end } => {
                        let record = match serde_json::from_slice::<OutgoingRecord>(&body) {
                            Ok(record) => record,
                            Err(err) => {
                                // A valid frame whose body is not a record: keep it aside too.
                                let at = Position {
                                    segment: end.segment,
                                    offset: end.offset - log::HEADER_BYTES - body.len() as u64,
                                };
                                self.quarantine(at, &body, &format!("not a record: {err}"));
                                ends.insert(next, end);
                                completed.insert(next);
                                next += 1;
                                continue;
                            }
                        };
                        let Some(outcome) = self.enqueue(&record).await else {
                            break;
                        };
                        let seq = next;
                        ends.insert(seq, end);
                        in_flight.push(awaiting(seq, record, outcome));
                        next += 1;
                    }
                    Step::Damaged { at, bytes } => {
                        self.quarantine(at, &bytes, "not a valid record");
                    }
                    Step::Wait => {
                        // Every durable record was read. If fewer were found than were
                        // written, damage destroyed the rest while the bridge ran.
                        if next < durable.records && self.reader.position() >= durable.end {
                            let destroyed = durable.records - next;
                            SpoolEventsDestroyed { destroyed }.emit(&self.state.metrics);
                            for seq in next..durable.records {
                                ends.insert(seq, self.reader.position());
                                completed.insert(seq);
                            }
                            next = durable.records;
                        }
                        break;
                    }
                }
            }
            if stopping && in_flight.is_empty() {
                // What waits for a retry stays in the spool for the next start.
                break;
            }
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    if let Some((seq, record)) = self.complete(done, &mut completed) {
                        retries.push_back((Instant::now() + RETRY_PAUSE, seq, record));
                    }
                }
                () = self.state.appended.notified(), if !stopping && in_flight.len() < self.window => {}
                () = self.stop.notified() => {}
                () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            }
            while completed.remove(&done_through) {
                if let Some(end) = ends.remove(&done_through) {
                    self.checkpoint = end;
                }
                done_through += 1;
            }
            self.state.delivered.store(done_through, Ordering::Release);
            if self.checkpoint != persisted && last_persist.elapsed() >= CHECKPOINT_EVERY {
                self.persist();
                persisted = self.checkpoint;
                last_persist = Instant::now();
            }
            self.state.publish_gauges();
        }
        self.persist();
    }

    fn quarantine(&self, at: Position, bytes: &[u8], why: &str) {
        let kept = log::quarantine(&self.state.dir, at.segment, at.offset, bytes);
        SpoolDamageQuarantined {
            segment: at.segment,
            offset: at.offset,
            bytes: bytes.len(),
            why,
            quarantine: kept.as_deref(),
        }
        .emit(&self.state.metrics);
    }

    fn persist(&self) {
        if let Err(err) = log::write_checkpoint(&self.state.dir, self.checkpoint) {
            warn!(error = %err, "could not persist the spool checkpoint");
            return;
        }
        if let Err(err) = remove_delivered_segments(&self.state, self.checkpoint) {
            warn!(error = %err, "could not remove delivered spool segments");
        }
    }

    /// Hands a record to the producer, waiting while it cannot take it (queue full, producer
    /// being rebuilt). A record the producer refuses for good (larger than `message.max.bytes`,
    /// or, with a schema registry, of a type whose schema it does not hold) is dead-lettered at
    /// once, so it cannot block the records behind it, and its outcome comes back already
    /// successful: done, like a delivered one. `None` when the bridge stops first.
    async fn enqueue(
        &self,
        record: &OutgoingRecord,
    ) -> Option<oneshot::Receiver<crate::kafka::DeliveryOutcomeReport>> {
        loop {
            let (waiter, outcome) = oneshot::channel();
            match self.publisher.publish_record(record, waiter) {
                Ok(()) => return Some(outcome),
                Err(_) if self.stopping.load(Ordering::Acquire) => return None,
                Err(PublishError::Producer(err)) if never_fits(&err) => {
                    return Some(
                        self.dead_letter_at_once(
                            record,
                            &format!("refused by the producer: {err}"),
                        ),
                    );
                }
                Err(err @ PublishError::NoSchema(_)) => {
                    return Some(self.dead_letter_at_once(record, &err.to_string()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Dead-letters a record no retry can publish, and gives the outcome of a finished one.
    fn dead_letter_at_once(
        &self,
        record: &OutgoingRecord,
        error: &str,
    ) -> oneshot::Receiver<crate::kafka::DeliveryOutcomeReport> {
        let (waiter, outcome) = oneshot::channel();
        self.publisher.dead_letter_record(record, error);
        let _ = waiter.send(Ok(()));
        outcome
    }

    /// What a delivery report means for the spool: delivered (or dead-lettered for good) and
    /// done; or to be sent again, returned to the caller.
    fn complete(
        &self,
        (seq, record, outcome): Completion,
        completed: &mut BTreeSet<u64>,
    ) -> Option<(u64, OutgoingRecord)> {
        match outcome {
            Ok(Ok(())) => {
                completed.insert(seq);
                None
            }
            // Purged at shutdown: it stays in the spool for the next start.
            _ if self.stopping.load(Ordering::Acquire) => None,
            Ok(Err(failure)) if failure.is_permanent() => {
                // No retry can deliver it, and it was acknowledged: the dead-letter file.
                self.publisher
                    .dead_letter_record(&record, &failure.to_string());
                completed.insert(seq);
                None
            }
            // A failure of the moment (a `message.timeout.ms` the operator set, a broker
            // away): the spool's promise is to ride it out, so the record is sent again.
            Ok(Err(failure)) => {
                warn!(event_id = %record.event_id, error = %failure,
                    "a spooled event was not delivered yet; sending it again");
                Some((seq, record))
            }
            Err(_) => {
                // The producer dropped the report without an outcome: send it again.
                Some((seq, record))
            }
        }
    }
}

/// Errors no retry can fix: the record is larger than the producer or the broker takes.
fn never_fits(err: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode::{InvalidMessageSize, MessageSizeTooLarge};
    matches!(
        err.rdkafka_error_code(),
        Some(MessageSizeTooLarge | InvalidMessageSize)
    )
}

/// Checks that a spool directory can be created and written, for a clear startup error.
pub fn check_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let probe = dir.join(".write-test");
    File::create(&probe)?.sync_all()?;
    fs::remove_file(probe)
}

#[cfg(test)]
mod tests;
