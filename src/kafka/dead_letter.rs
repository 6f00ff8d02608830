//! The dead-letter file: events that were acknowledged to ZEGO but could not be delivered, one
//! JSON line each, fsync'd, so `zego-kafka-bridge replay FILE` can publish them again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::{SecondsFormat, Utc};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::internal_events::{
    AcknowledgedEventLost, DeadLetterFileState, EventDeadLettered, InternalEvent,
};
use crate::kafka::record::OutgoingRecord;
use crate::metrics::Metrics;

/// Most letters written with one `fdatasync`.
const MAX_BATCH: usize = 10_000;

/// How often the writer thread proves the file's disk can take a write, when no letter came:
/// a disk that fills while Kafka is healthy must be known before Kafka fails, so that `queued`
/// stops acknowledging instead of acknowledging into nothing. One byte written and fdatasync'd
/// a second costs nothing beside the callbacks.
pub const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// One line of the dead-letter file.
#[derive(Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    /// RFC 3339 time of the failure.
    pub failed_at: String,
    pub error: String,
    pub topic: String,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    /// The event exactly as it would have been published.
    pub event: Box<RawValue>,
}

impl DeadLetter {
    /// The letter of a record librdkafka gave back.
    pub fn of_message(error: &str, message: &BorrowedMessage<'_>) -> serde_json::Result<Self> {
        // The JSON, without the schema registry's framing: the file keeps what replay frames again.
        let payload =
            String::from_utf8_lossy(super::json_of(message.payload().unwrap_or_default()))
                .into_owned();
        let headers = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|header| {
                        (
                            header.key.to_owned(),
                            String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(DeadLetter {
            failed_at: now(),
            error: error.to_owned(),
            topic: message.topic().to_owned(),
            key: message
                .key()
                .map(|key| String::from_utf8_lossy(key).into_owned()),
            headers,
            event: RawValue::from_string(payload)?,
        })
    }

    /// The letter of a record the spool held.
    pub fn of_record(error: &str, record: &OutgoingRecord) -> serde_json::Result<Self> {
        Ok(DeadLetter {
            failed_at: now(),
            error: error.to_owned(),
            topic: record.topic.clone(),
            key: record.key.clone(),
            headers: record.headers.iter().cloned().collect(),
            event: RawValue::from_string(record.payload.clone())?,
        })
    }
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub struct DeadLetterFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
    /// Why the last write or probe failed; `None` once one succeeded.
    failure: Mutex<Option<String>>,
    /// A write failed part-way: the next one starts with a line break, so that the torn line
    /// stays one unreadable line and every whole letter after it parses.
    torn: std::sync::atomic::AtomicBool,
    /// When the write or probe in progress began; `None` when none is.
    busy_since: Mutex<Option<std::time::Instant>>,
}

/// A write or probe taking longer than this counts as a failure while it hangs: a healthy
/// fdatasync of a few KiB takes milliseconds.
const STUCK_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Clears [`DeadLetterFile::busy`]'s mark when the call returns.
struct BusyGuard<'a>(&'a Mutex<Option<std::time::Instant>>);

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
    }
}

/// The refusal of a path that cannot keep letters.
fn not_a_regular_file() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        "not a regular file (a FIFO, a directory or a device cannot keep letters)",
    )
}

/// Whether the last byte of a file of `len` bytes is a line break.
fn ends_with_newline(file: &File, len: u64) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

impl DeadLetterFile {
    /// Opens lazily: a bridge that never dead-letters never opens the file itself (its disk is
    /// probed beside it, [`DeadLetterFile::probe`]).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterFile {
            path: path.into(),
            file: Mutex::new(None),
            failure: Mutex::new(None),
            torn: std::sync::atomic::AtomicBool::new(false),
            busy_since: Mutex::new(None),
        }
    }

    /// Why the file cannot take a letter now (its last write or probe failed), or `None`.
    pub fn failure(&self) -> Option<String> {
        let stuck = self
            .busy_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .map(|since| since.elapsed())
            .filter(|busy| *busy > STUCK_AFTER);
        if let Some(busy) = stuck {
            return Some(format!(
                "the disk has not answered a write for {} ms",
                busy.as_millis()
            ));
        }
        self.failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Records the outcome of a write or a probe; says whether it changed the file's state.
    fn note(&self, outcome: &std::io::Result<()>) -> bool {
        let mut failure = self
            .failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = outcome.as_ref().err().map(ToString::to_string);
        let changed = failure.is_some() != now.is_some();
        *failure = now;
        changed
    }

    /// Marks a write or a probe in progress until the guard is dropped, so that a disk that
    /// stops answering (a hung network volume) shows as a failure while the call still hangs.
    fn busy(&self) -> BusyGuard<'_> {
        *self
            .busy_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(std::time::Instant::now());
        BusyGuard(&self.busy_since)
    }

    /// Proves the file's disk takes a write now: one byte appended to `<file>.probe` (which
    /// allocates a block, so a full disk fails it) and fdatasync'd, then the probe emptied.
    /// The dead-letter file itself, if it exists, must be a regular file that opens for
    /// appending. Nothing here blocks on a FIFO.
    pub fn probe(&self) -> std::io::Result<()> {
        let outcome = {
            let _busy = self.busy();
            self.try_probe()
        };
        self.note(&outcome);
        outcome
    }

    fn try_probe(&self) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(metadata) = std::fs::metadata(&self.path) {
            if !metadata.is_file() {
                return Err(not_a_regular_file());
            }
            OpenOptions::new()
                .append(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)?;
        }
        let mut probe = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.probe_path())?;
        if !probe.metadata()?.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the probe beside it is not a regular file",
            ));
        }
        probe.write_all(b"p")?;
        probe.sync_data()?;
        probe.set_len(0)?;
        // After a letter failed to write, the probe beside the file proves too little (an error
        // may strike the letters file alone): the file itself must take a write, a line break,
        // which readers skip, before it counts as writable again.
        if self.torn.load(std::sync::atomic::Ordering::Acquire) {
            self.append(b"")?;
        }
        Ok(())
    }

    /// `<file>.probe`, beside the file on the same disk.
    fn probe_path(&self) -> PathBuf {
        beside(&self.path, ".probe")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and waits until it is on disk.
    pub fn write(&self, letter: &DeadLetter) -> std::io::Result<()> {
        self.write_batch(std::slice::from_ref(letter))
    }

    /// Appends one line per letter and waits until all are on disk: one `fdatasync` for the
    /// batch, so that thousands of letters at once (a purge at shutdown) take milliseconds, not
    /// seconds.
    pub fn write_batch<'l>(
        &self,
        letters: impl IntoIterator<Item = &'l DeadLetter>,
    ) -> std::io::Result<()> {
        let mut lines = Vec::with_capacity(4096);
        for letter in letters {
            serde_json::to_writer(&mut lines, letter).map_err(std::io::Error::other)?;
            lines.push(b'\n');
        }
        let outcome = self.append(&lines);
        self.note(&outcome);
        outcome
    }

    fn append(&self, lines: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        use std::sync::atomic::Ordering;
        let _busy = self.busy();
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The path may no longer name the file held open (renamed, removed, rotated by hand):
        // letters must land where `replay` and the retrier look, so the file is opened again.
        if let Some(held) = guard.as_ref() {
            let same = match (held.metadata(), std::fs::metadata(&self.path)) {
                (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
                _ => false,
            };
            if !same {
                *guard = None;
            }
        }
        if guard.is_none() {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path)?;
            let metadata = file.metadata()?;
            if !metadata.is_file() {
                return Err(not_a_regular_file());
            }
            // A line cut short before this process (a crash, a full disk before a restart):
            // the first letter starts on a line of its own.
            if metadata.len() > 0 && !ends_with_newline(&file, metadata.len())? {
                self.torn.store(true, Ordering::Release);
            }
            *guard = Some(file);
        }
        let file = guard.as_mut().expect("opened above");
        let torn = self.torn.load(Ordering::Acquire);
        let written = if torn { file.write_all(b"\n") } else { Ok(()) }
            .and_then(|()| file.write_all(lines))
            .and_then(|()| file.sync_data());
        match written {
            // A failed append may have left part of a line; the next starts on a fresh
            // descriptor.
            Err(_) => {
                self.torn.store(true, Ordering::Release);
                *guard = None;
            }
            Ok(()) => self.torn.store(false, Ordering::Release),
        }
        written
    }

    /// Fails unless the file's disk takes a write now ([`DeadLetterFile::probe`]), so that an
    /// unwritable path is found at start, not when events are being lost.
    pub fn check_writable(&self) -> std::io::Result<()> {
        self.probe()
    }

    /// Takes the letters written so far for a retry: the file is renamed to a claim
    /// (`<file>.retrying-<ms>`) that the caller deletes once every letter in it is delivered or
    /// safe elsewhere, and the next letter starts a new file. `None` when there is nothing to
    /// take. Done under the writer's lock, so no letter can land in a file being read.
    pub fn claim(&self) -> std::io::Result<Option<PathBuf>> {
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match std::fs::metadata(&self.path) {
            Ok(metadata) if metadata.len() > 0 => {}
            Ok(_) => return Ok(None),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        }
        let claimed = self.claim_name(Utc::now().timestamp_millis());
        std::fs::rename(&self.path, &claimed)?;
        *guard = None;
        sync_directory(&self.path)?;
        Ok(Some(claimed))
    }

    /// Claims left by an earlier run (it stopped during a retry), oldest first: they are
    /// retried before anything else.
    pub fn leftover_claims(&self) -> std::io::Result<Vec<PathBuf>> {
        let prefix = self.claim_prefix();
        let directory = directory_of(&self.path);
        let mut claims: Vec<PathBuf> = std::fs::read_dir(directory)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| is_claim_name(name, &prefix))
            })
            .collect();
        claims.sort();
        Ok(claims)
    }

    /// Letters not in Kafka on this file's disk: the file, the retries' claims, the rejected
    /// ones and a replay's claim. Streams them (a file of rejected letters can be larger than
    /// the pod's memory): for the report of a shutdown, not for every scrape.
    pub fn waiting_letters(&self) -> u64 {
        let mut paths = self.leftover_claims().unwrap_or_default();
        paths.push(self.path.clone());
        paths.push(self.rejected_path());
        paths.push(beside(&self.path, ".replaying"));
        paths.push(beside(&self.path, ".rejected.replaying"));
        paths.iter().filter_map(|path| count_lines(path).ok()).sum()
    }

    /// Where letters no retry can deliver (too large, not authorized, unreadable) are kept for a
    /// person: `<file>.rejected`.
    pub fn rejected_path(&self) -> PathBuf {
        beside(&self.path, ".rejected")
    }

    fn claim_prefix(&self) -> String {
        let name = self
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{name}.retrying-")
    }

    fn claim_name(&self, millis: i64) -> PathBuf {
        directory_of(&self.path).join(format!("{}{millis:013}", self.claim_prefix()))
    }

    /// Every line of a dead-letter file with what it parses to; a line that does not parse
    /// comes back with its error, and its text, so that it can be kept.
    pub fn read_lines(path: &Path) -> std::io::Result<Vec<(String, Result<DeadLetter, String>)>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                let parsed =
                    serde_json::from_str(line).map_err(|err| format!("line {}: {err}", index + 1));
                (line.to_owned(), parsed)
            })
            .collect())
    }

    /// Reads every line of a dead-letter file; a line that does not parse is returned as an
    /// error with its number, the others still come back.
    pub fn read(path: &Path) -> std::io::Result<Vec<Result<DeadLetter, String>>> {
        Ok(Self::read_lines(path)?
            .into_iter()
            .map(|(_, parsed)| parsed)
            .collect())
    }
}

fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `<file>.lock`, locked (`flock`) by whoever owns a dead-letter file: a bridge for its whole
/// life, `replay` while it runs. A bridge writes its letters through a handle it keeps open, so
/// a replay that renamed its file would take letters still being written, and two bridges on one
/// file would retry each other's letters: both are refused instead.
#[derive(Debug)]
pub struct DeadLetterLock {
    _file: File,
}

/// Why [`DeadLetterLock::acquire`] failed.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterLockError {
    #[error("{lock} is held by another process: a running bridge owns {file} (it sends its letters again by itself; two bridges cannot share one file), or a replay of it is running")]
    Held { file: PathBuf, lock: PathBuf },
    #[error("cannot lock {lock}: {source}")]
    Io {
        lock: PathBuf,
        source: std::io::Error,
    },
}

impl DeadLetterLock {
    pub fn path_for(file: &Path) -> PathBuf {
        beside(file, ".lock")
    }

    /// Locks `<file>.lock` (made if missing) without waiting. The lock is the one of the file
    /// itself, however it is named: a symbolic link to it, or a path through another directory
    /// name, finds the same lock.
    pub fn acquire(file: &Path) -> Result<Self, DeadLetterLockError> {
        let resolved = std::fs::canonicalize(file).unwrap_or_else(|_| {
            match (file.parent(), file.file_name()) {
                (Some(parent), Some(name)) => {
                    let parent = if parent.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        parent
                    };
                    std::fs::canonicalize(parent)
                        .map(|parent| parent.join(name))
                        .unwrap_or_else(|_| file.to_owned())
                }
                _ => file.to_owned(),
            }
        });
        let lock = Self::path_for(&resolved);
        let io = |source| DeadLetterLockError::Io {
            lock: lock.clone(),
            source,
        };
        let handle = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(io)?;
        match handle.try_lock() {
            Ok(()) => Ok(DeadLetterLock { _file: handle }),
            Err(std::fs::TryLockError::WouldBlock) => Err(DeadLetterLockError::Held {
                file: file.to_owned(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

/// `<file><suffix>`: the files the bridge and `replay` keep beside a dead-letter file.
pub fn beside(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Whether `name` is one of the bridge's retry claims: `<file>.retrying-` and exactly the 13
/// digits of its time, nothing after (a replay's `.replaying` or `.replayed` beside a claim, or
/// a `.lock`, is not one: the retrier once published and deleted such files).
pub fn is_claim_name(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|rest| rest.len() == 13 && rest.bytes().all(|byte| byte.is_ascii_digit()))
}

/// Lines of a file, read in blocks (a torn last one counts too).
pub fn count_lines(path: &Path) -> std::io::Result<u64> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut block = vec![0u8; 64 * 1024];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let read = file.read(&mut block)?;
        if read == 0 {
            return Ok(lines + u64::from(last != b'\n'));
        }
        lines += block[..read].iter().filter(|&&byte| byte == b'\n').count() as u64;
        last = block[read - 1];
    }
}

/// Makes a rename or a removal in the file's directory durable.
pub fn sync_directory(path: &Path) -> std::io::Result<()> {
    File::open(directory_of(path))?.sync_all()
}

/// Appends raw lines to a file and waits until they are on disk.
pub fn append_lines(path: &Path, lines: &[String]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = String::with_capacity(lines.iter().map(|line| line.len() + 1).sum());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_data()
}

/// An acknowledged event that failed for good, on its way to the dead-letter file.
pub struct Undeliverable {
    pub event_id: Uuid,
    pub letter: DeadLetter,
}

/// Writes dead letters on a thread of its own: delivery reports hand them over without waiting
/// for the disk, and the thread writes as many as are waiting with one `fdatasync`, then logs
/// and counts each. [`DeadLetterWriter::close`] returns once everything handed over is on disk
/// (or logged as lost), so nothing is left in memory when the process exits.
pub struct DeadLetterWriter {
    file: Arc<DeadLetterFile>,
    metrics: Arc<Metrics>,
    sender: Mutex<Option<Sender<Undeliverable>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl DeadLetterWriter {
    pub fn start(file: Arc<DeadLetterFile>, metrics: Arc<Metrics>) -> Self {
        let (sender, receiver) = channel();
        let thread = {
            let (file, metrics) = (file.clone(), metrics.clone());
            std::thread::Builder::new()
                .name("dead-letters".into())
                .spawn(move || write_loop(&file, &metrics, &receiver))
                .expect("a thread for the dead-letter file")
        };
        DeadLetterWriter {
            file,
            metrics,
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        }
    }

    pub fn file(&self) -> &Arc<DeadLetterFile> {
        &self.file
    }

    /// Hands a letter over without waiting for the disk (for callers on an HTTP worker): the
    /// writer thread writes it, then logs and counts it, saved or lost.
    pub fn submit_later(&self, item: Undeliverable) {
        self.submit(item);
    }

    /// Hands a letter over; once the writer is closed, writes it at once instead.
    pub fn submit(&self, item: Undeliverable) {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let item = match sender.as_ref() {
            Some(sender) => match sender.send(item) {
                Ok(()) => return,
                Err(returned) => returned.0,
            },
            None => item,
        };
        drop(sender);
        self.write_now(item);
    }

    /// Writes a letter at once and returns when it is on disk (or logged as lost).
    pub fn write_now(&self, item: Undeliverable) {
        record(&self.file, &self.metrics, vec![item]);
    }

    /// Writes everything handed over so far and stops the thread.
    pub fn close(&self) {
        self.sender
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn write_loop(file: &DeadLetterFile, metrics: &Metrics, receiver: &Receiver<Undeliverable>) {
    use std::sync::mpsc::RecvTimeoutError;
    metrics.set_dead_letter_writable(file.failure().is_none());
    loop {
        let first = match receiver.recv_timeout(PROBE_EVERY) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => {
                let before = file.failure();
                let outcome = file.probe();
                report_change(file, metrics, before.is_none(), &outcome);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        record(file, metrics, batch);
    }
}

/// Logs and sets the gauge when the file's state changed (writable before: `was_writable`).
fn report_change(
    file: &DeadLetterFile,
    metrics: &Metrics,
    was_writable: bool,
    outcome: &std::io::Result<()>,
) {
    if was_writable == outcome.is_ok() {
        return;
    }
    DeadLetterFileState {
        path: file.path(),
        error: outcome.as_ref().err(),
    }
    .emit(metrics);
}

/// Writes a batch, then logs and counts each letter: saved, or lost with the reason.
fn record(file: &DeadLetterFile, metrics: &Metrics, batch: Vec<Undeliverable>) {
    let was_writable = file.failure().is_none();
    let written = file.write_batch(batch.iter().map(|item| &item.letter));
    report_change(file, metrics, was_writable, &written);
    match written {
        Ok(()) => {
            for item in &batch {
                EventDeadLettered {
                    event_id: item.event_id,
                    topic: &item.letter.topic,
                    error: &item.letter.error,
                    file: file.path(),
                }
                .emit(metrics);
            }
        }
        Err(write_error) => {
            for item in &batch {
                AcknowledgedEventLost {
                    event_id: item.event_id,
                    topic: &item.letter.topic,
                    error: &item.letter.error,
                    write_error: &write_error,
                }
                .emit(metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_exactly() {
        let dir = scratch_dir();
        let file = DeadLetterFile::new(dir.join("dead.jsonl"));
        let event = r#"{"id":"x","n":18446744073709551615,"f":0.9980469}"#;
        for error in ["first", "second"] {
            file.write(&DeadLetter {
                failed_at: "2026-01-01T00:00:00.000Z".into(),
                error: error.into(),
                topic: "zego.room.closed".into(),
                key: Some("room".into()),
                headers: BTreeMap::from([("ce_id".to_owned(), "x".to_owned())]),
                event: RawValue::from_string(event.to_owned()).unwrap(),
            })
            .unwrap();
        }
        let letters = DeadLetterFile::read(file.path()).unwrap();
        assert_eq!(letters.len(), 2);
        let first = letters[0].as_ref().unwrap();
        assert_eq!(first.event.get(), event, "the event is kept byte for byte");
        assert_eq!(letters[1].as_ref().unwrap().error, "second");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A directory of the test's own.
    fn scratch_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dl-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn letter(error: &str) -> DeadLetter {
        DeadLetter {
            failed_at: "2026-01-01T00:00:00.000Z".into(),
            error: error.into(),
            topic: "zego.room.closed".into(),
            key: None,
            headers: BTreeMap::new(),
            event: RawValue::from_string("{}".to_owned()).unwrap(),
        }
    }

    /// A line cut short before this process started (a crash, a full disk) does not swallow
    /// the first letter written after it.
    #[test]
    fn a_torn_line_left_by_an_earlier_run_stays_apart() {
        let dir = scratch_dir();
        let path = dir.join("dead.jsonl");
        std::fs::write(&path, "{\"failed_at\":\"2026").unwrap();
        let file = DeadLetterFile::new(&path);
        file.write(&letter("after the crash")).unwrap();
        let read = DeadLetterFile::read(&path).unwrap();
        assert_eq!(read.len(), 2);
        assert!(read[0].is_err());
        assert_eq!(read[1].as_ref().unwrap().error, "after the crash");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file renamed or removed under the bridge: the next letters go to the path, where
    /// `replay` and the retrier look, not into the file held open.
    #[test]
    fn letters_follow_the_path_when_the_file_is_moved_away() {
        let dir = scratch_dir();
        let path = dir.join("dead.jsonl");
        let file = DeadLetterFile::new(&path);
        file.write(&letter("first")).unwrap();
        std::fs::rename(&path, dir.join("moved.jsonl")).unwrap();
        file.write(&letter("second")).unwrap();
        let read = DeadLetterFile::read(&path).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].as_ref().unwrap().error, "second");
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A write that hangs (a network volume that stopped answering) is a failure while it
    /// hangs, not only once it returns.
    #[test]
    fn a_write_that_hangs_is_a_failure_while_it_hangs() {
        let file = DeadLetterFile::new(std::env::temp_dir().join("never-written.jsonl"));
        assert_eq!(file.failure(), None);
        let busy = file.busy();
        *file.busy_since.lock().unwrap() =
            Some(std::time::Instant::now() - STUCK_AFTER - std::time::Duration::from_millis(1));
        assert!(file.failure().unwrap().contains("has not answered"));
        drop(busy);
        assert_eq!(file.failure(), None);
    }

    /// After a letter failed to write, only a write to the letters file itself makes the file
    /// writable again, not the probe beside it.
    #[test]
    fn after_a_failed_letter_the_file_itself_must_take_a_write() {
        let dir = scratch_dir();
        let path = dir.join("dead.jsonl");
        let file = DeadLetterFile::new(&path);
        file.write(&letter("first")).unwrap();
        // As a failed append leaves it.
        file.torn.store(true, std::sync::atomic::Ordering::Release);
        let before = std::fs::metadata(&path).unwrap().len();
        file.probe().unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            before + 1,
            "a line break"
        );
        assert!(!file.torn.load(std::sync::atomic::Ordering::Acquire));
        file.write(&letter("second")).unwrap();
        let read = DeadLetterFile::read(&path).unwrap();
        assert_eq!(read.len(), 2, "the empty line is skipped");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[cfg(test)]
mod claim_name_tests {
    use super::*;

    /// The retrier once took a replay's files beside a claim (`….retrying-<ms>.replayed`,
    /// `.lock`, `.checkpoint`) for claims: it published their letters again and deleted them.
    #[test]
    fn only_the_retriers_own_names_are_claims() {
        let prefix = "dead.jsonl.retrying-";
        assert!(is_claim_name("dead.jsonl.retrying-1733616000000", prefix));
        for other in [
            "dead.jsonl.retrying-1733616000000.replayed",
            "dead.jsonl.retrying-1733616000000.lock",
            "dead.jsonl.retrying-1733616000000.replaying.checkpoint",
            "dead.jsonl.retrying-173361600000",
            "dead.jsonl.retrying-17336160000000",
            "dead.jsonl.retrying-abcdefghijklm",
            "dead.jsonl.replaying",
        ] {
            assert!(!is_claim_name(other, prefix), "{other}");
        }
    }

    #[test]
    fn lines_are_counted_without_reading_the_file_whole() {
        let dir = std::env::temp_dir().join(format!("zkb-count-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("letters");
        std::fs::write(&path, "a\nb\nc").unwrap();
        assert_eq!(count_lines(&path).unwrap(), 3, "a torn last line counts");
        let big = "x".repeat(100) + "\n";
        std::fs::write(&path, big.repeat(2000)).unwrap();
        assert_eq!(count_lines(&path).unwrap(), 2000, "across read blocks");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
