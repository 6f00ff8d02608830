//! The write-ahead spool of the `spooled` ack mode: a callback is answered 200 once its event
//! is on local disk (fsync'd), and a background drainer publishes the spool to Kafka in order.
//!
//! - One writer thread appends records. It takes every request waiting at that moment, writes
//!   them together and fsyncs once (group commit), so the cost of an fsync is shared.
//! - The drainer reads durable records in order, publishes them with a bounded window, and
//!   advances a checkpoint over the records Kafka acknowledged. It deletes segments that are
//!   fully behind the checkpoint.
//! - On start, a torn tail left by a crash is cut off, and everything after the checkpoint is
//!   published again. That is at least once: the same event ids, deduplicated by consumers.

mod log;

use std::collections::BTreeSet;
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

use crate::kafka::{OutgoingRecord, Publisher};
use crate::metrics::Metrics;

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

/// State shared by the writer, the drainer and the request handlers.
struct State {
    dir: PathBuf,
    max_bytes: u64,
    /// One past the last durable record.
    durable_end: AtomicU64,
    /// The first record not yet delivered.
    checkpoint: AtomicU64,
    /// Bytes in live segment files.
    bytes: AtomicU64,
    appended: Notify,
    failure: Mutex<Option<String>>,
    metrics: Arc<Metrics>,
}

pub struct Spool {
    state: Arc<State>,
    appends: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Notify>,
    drainer: Mutex<Option<tokio::task::JoinHandle<()>>>,
    window: usize,
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
        let (last_first, last_path) = segments.last().cloned().expect("one segment at least");
        let (last_records, _) = log::recover_segment(&last_path)?;
        let durable_end = last_first + last_records;
        let checkpoint = log::read_checkpoint(dir)?
            .unwrap_or(segments[0].0)
            .clamp(segments[0].0, durable_end);
        let mut bytes = 0;
        for (_, path) in &segments {
            bytes += fs::metadata(path)?.len();
        }
        let state = Arc::new(State {
            dir: dir.clone(),
            max_bytes: options.max_bytes,
            durable_end: AtomicU64::new(durable_end),
            checkpoint: AtomicU64::new(checkpoint),
            bytes: AtomicU64::new(bytes),
            appended: Notify::new(),
            failure: Mutex::new(None),
            metrics,
        });
        remove_delivered_segments(&state)?;
        if durable_end > checkpoint {
            info!(
                pending = durable_end - checkpoint,
                dir = %dir.display(),
                "recovered undelivered events from the spool; publishing them again"
            );
        }
        let (appends, requests) = mpsc::channel();
        let writer_state = state.clone();
        let writer = std::thread::Builder::new()
            .name("spool-writer".into())
            .spawn(move || write_loop(&writer_state, &requests, last_first))
            .expect("spawning the spool writer");
        Ok(Spool {
            state,
            appends: Mutex::new(Some(appends)),
            writer: Mutex::new(Some(writer)),
            stopping: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(Notify::new()),
            drainer: Mutex::new(None),
            window: options.window.max(1),
        })
    }

    /// Appends a record; resolves once it is on disk.
    pub async fn append(&self, record: &OutgoingRecord) -> Result<(), SpoolError> {
        if let Some(failure) = self.failure() {
            return Err(SpoolError::Failed(failure));
        }
        let body = serde_json::to_vec(record).map_err(|err| SpoolError::Failed(err.to_string()))?;
        let (done, outcome) = oneshot::channel();
        {
            let appends = self.appends.lock().expect("spool lock");
            let Some(appends) = appends.as_ref() else {
                return Err(SpoolError::Closed);
            };
            appends
                .send(AppendRequest { body, done })
                .map_err(|_| SpoolError::Closed)?;
        }
        outcome.await.unwrap_or(Err(SpoolError::Closed))
    }

    pub fn failure(&self) -> Option<String> {
        self.state.failure.lock().expect("spool lock").clone()
    }

    pub fn stats(&self) -> SpoolStats {
        let durable_end = self.state.durable_end.load(Ordering::Acquire);
        let checkpoint = self.state.checkpoint.load(Ordering::Acquire);
        SpoolStats {
            bytes: self.state.bytes.load(Ordering::Acquire),
            pending: durable_end.saturating_sub(checkpoint),
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

    /// Ends the drainer, persists the checkpoint, and reports what stays in the spool for the
    /// next start.
    pub async fn finish(&self) -> SpoolStats {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_one();
        let drainer = self.drainer.lock().expect("spool lock").take();
        if let Some(drainer) = drainer {
            let _ = drainer.await;
        }
        let checkpoint = self.state.checkpoint.load(Ordering::Acquire);
        if let Err(err) = log::write_checkpoint(&self.state.dir, checkpoint) {
            error!(error = %err, "could not persist the spool checkpoint: delivered events will be published again at the next start");
        }
        self.stats()
    }
}

fn write_loop(state: &State, requests: &mpsc::Receiver<AppendRequest>, mut segment_first: u64) {
    let open = |first: u64| -> std::io::Result<File> {
        let path = log::segment_path(&state.dir, first);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        File::open(&state.dir)?.sync_all()?;
        Ok(file)
    };
    let mut file = match open(segment_first) {
        Ok(file) => file,
        Err(err) => return fail(state, requests, &err.to_string()),
    };
    let mut segment_bytes = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let segment_limit = segment_bytes_for(state.max_bytes);
    let mut buffer = Vec::with_capacity(1024 * 1024);
    // Blocks for the first request of each batch; ends when every sender is gone.
    while let Ok(first) = requests.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        buffer.clear();
        let mut accepted = Vec::with_capacity(batch.len());
        let used = state.bytes.load(Ordering::Acquire);
        for request in batch {
            let framed = request.body.len() as u64 + 8;
            if used + buffer.len() as u64 + framed > state.max_bytes {
                let _ = request.done.send(Err(SpoolError::Full));
                continue;
            }
            log::frame(&request.body, &mut buffer);
            accepted.push(request.done);
        }
        if accepted.is_empty() {
            continue;
        }
        if segment_bytes >= segment_limit {
            segment_first = state.durable_end.load(Ordering::Acquire);
            match open(segment_first) {
                Ok(next) => {
                    file = next;
                    segment_bytes = 0;
                }
                Err(err) => {
                    report_failure(state, &err.to_string(), accepted);
                    continue;
                }
            }
        }
        if let Err(err) = file.write_all(&buffer).and_then(|()| file.sync_data()) {
            report_failure(state, &err.to_string(), accepted);
            continue;
        }
        segment_bytes += buffer.len() as u64;
        state.bytes.fetch_add(buffer.len() as u64, Ordering::AcqRel);
        state
            .durable_end
            .fetch_add(accepted.len() as u64, Ordering::AcqRel);
        state.metrics.spool_written(accepted.len());
        for done in accepted {
            let _ = done.send(Ok(()));
        }
        state.appended.notify_one();
    }
}

fn report_failure(
    state: &State,
    error: &str,
    waiting: Vec<oneshot::Sender<Result<(), SpoolError>>>,
) {
    error!(%error, dir = %state.dir.display(), "the spool cannot write to disk; refusing callbacks");
    *state.failure.lock().expect("spool lock") = Some(error.to_owned());
    for done in waiting {
        let _ = done.send(Err(SpoolError::Failed(error.to_owned())));
    }
}

fn fail(state: &State, requests: &mpsc::Receiver<AppendRequest>, error: &str) {
    report_failure(state, error, Vec::new());
    while let Ok(request) = requests.recv() {
        let _ = request.done.send(Err(SpoolError::Failed(error.to_owned())));
    }
}

/// Deletes segments whose records are all before the checkpoint.
fn remove_delivered_segments(state: &State) -> std::io::Result<()> {
    let checkpoint = state.checkpoint.load(Ordering::Acquire);
    let segments = log::list_segments(&state.dir)?;
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first <= checkpoint {
            let size = fs::metadata(path)?.len();
            fs::remove_file(path)?;
            state.bytes.fetch_sub(size, Ordering::AcqRel);
        }
    }
    Ok(())
}

struct Drainer {
    state: Arc<State>,
    publisher: Arc<Publisher>,
    stopping: Arc<AtomicBool>,
    stop: Arc<Notify>,
    window: usize,
}

type Completion = (
    u64,
    OutgoingRecord,
    Result<crate::kafka::DeliveryOutcomeReport, oneshot::error::RecvError>,
);

impl Drainer {
    async fn run(self) {
        let state = &self.state;
        let mut next = state.checkpoint.load(Ordering::Acquire);
        let mut reader: Option<log::SegmentReader> = None;
        let mut completed = BTreeSet::new();
        let mut in_flight = FuturesUnordered::new();
        let mut persisted = next;
        let mut last_persist = Instant::now();
        loop {
            let stopping = self.stopping.load(Ordering::Acquire);
            // Publish durable records while the window has room.
            while !stopping
                && in_flight.len() < self.window
                && next < state.durable_end.load(Ordering::Acquire)
            {
                let record = match self.read(&mut reader, next) {
                    Ok(Some(record)) => record,
                    Ok(None) => break,
                    Err(err) => {
                        error!(error = %err, seq = next, "cannot read the spool; retrying");
                        reader = None;
                        break;
                    }
                };
                let Some(outcome) = self.enqueue(&record).await else {
                    break;
                };
                let seq = next;
                in_flight.push(async move { (seq, record, outcome.await) });
                next += 1;
            }
            if stopping && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    self.complete(done, &mut completed);
                }
                () = state.appended.notified(), if !stopping && in_flight.len() < self.window => {}
                () = self.stop.notified() => {}
                () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            }
            let mut checkpoint = state.checkpoint.load(Ordering::Acquire);
            while completed.remove(&checkpoint) {
                checkpoint += 1;
            }
            state.checkpoint.store(checkpoint, Ordering::Release);
            if checkpoint != persisted && last_persist.elapsed() >= CHECKPOINT_EVERY {
                self.persist(checkpoint);
                persisted = checkpoint;
                last_persist = Instant::now();
            }
        }
        self.persist(state.checkpoint.load(Ordering::Acquire));
    }

    fn persist(&self, checkpoint: u64) {
        if let Err(err) = log::write_checkpoint(&self.state.dir, checkpoint) {
            warn!(error = %err, "could not persist the spool checkpoint");
            return;
        }
        if let Err(err) = remove_delivered_segments(&self.state) {
            warn!(error = %err, "could not remove delivered spool segments");
        }
    }

    /// Reads record `seq`, opening the segment that holds it when needed.
    fn read(
        &self,
        reader: &mut Option<log::SegmentReader>,
        seq: u64,
    ) -> std::io::Result<Option<OutgoingRecord>> {
        if reader.is_none() {
            *reader = Some(self.open_at(seq)?);
        }
        let current = reader.as_mut().expect("opened above");
        let body = match current.next()? {
            Some(body) => body,
            None => {
                // The rest is in the next segment, which starts exactly at `seq`.
                let path = log::segment_path(&self.state.dir, seq);
                if !path.exists() {
                    return Ok(None);
                }
                *reader = Some(log::SegmentReader::open(&path, 0)?);
                match reader.as_mut().expect("opened above").next()? {
                    Some(body) => body,
                    None => return Ok(None),
                }
            }
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
    }

    /// Opens the segment holding `seq` and skips to it.
    fn open_at(&self, seq: u64) -> std::io::Result<log::SegmentReader> {
        let segments = log::list_segments(&self.state.dir)?;
        let (first, path) = segments
            .iter()
            .rev()
            .find(|(first, _)| *first <= seq)
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no segment holds the checkpoint",
                )
            })?;
        let mut reader = log::SegmentReader::open(&path, 0)?;
        for _ in first..seq {
            if reader.next()?.is_none() {
                break;
            }
        }
        Ok(reader)
    }

    /// Hands a record to the producer, waiting while it cannot take it (queue full, producer
    /// being rebuilt). `None` when the bridge stops first.
    async fn enqueue(
        &self,
        record: &OutgoingRecord,
    ) -> Option<oneshot::Receiver<crate::kafka::DeliveryOutcomeReport>> {
        loop {
            let (waiter, outcome) = oneshot::channel();
            match self.publisher.publish_record(record, waiter) {
                Ok(()) => return Some(outcome),
                Err(_) if self.stopping.load(Ordering::Acquire) => return None,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    fn complete(&self, (seq, record, outcome): Completion, completed: &mut BTreeSet<u64>) {
        match outcome {
            Ok(Ok(())) => {
                completed.insert(seq);
            }
            // Purged at shutdown: it stays in the spool for the next start.
            _ if self.stopping.load(Ordering::Acquire) => {}
            Ok(Err(error)) => {
                // A permanent failure (retriable ones are retried without end in this mode):
                // it was acknowledged, so it goes to the dead-letter file.
                self.publisher.dead_letter_record(&record, &error);
                completed.insert(seq);
            }
            Err(_) => {
                // The producer dropped the report without an outcome: keep the event anyway.
                self.publisher
                    .dead_letter_record(&record, "the delivery report was lost");
                completed.insert(seq);
            }
        }
    }
}

/// Checks that a spool directory can be created and written, for a clear startup error.
pub fn check_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let probe = dir.join(".write-test");
    File::create(&probe)?.sync_all()?;
    fs::remove_file(probe)
}
