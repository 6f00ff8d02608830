//! `zego-kafka-bridge replay FILE`: publishes the events of a dead-letter file again, to the
//! topics, keys and headers they had; with a schema registry configured, in its wire format,
//! each type's schema registered under its topic's subject first.
//!
//! Once, not every time it is run: the replay claims the file (`FILE.replaying`, so that letters
//! added meanwhile start a new `FILE` and wait for the next replay), records its progress in
//! `FILE.replaying.checkpoint` every [`CHECKPOINT_EVERY`] letters, moves each letter Kafka
//! acknowledged to `FILE.replayed` (a record for the operator, removed by `dead-letters
//! --purge-replayed`) and puts back in `FILE` each that failed. Interrupted, the next replay
//! resumes after the checkpoint: at most that many letters reach Kafka twice (consumers
//! deduplicate on the event `id`), none is skipped: a checkpoint counts only for the claim it
//! was written for (its inode). It refuses the live file of a running bridge, which sends its
//! own letters again (see [`DeadLetterLock`]), and the working files beside one (`.replaying`,
//! `.replayed`, a retry's claim). Streamed: a file larger than memory is replayed too. Not
//! covered: the bridge appending to `FILE.rejected` in the microseconds a replay renames it
//! (those letters would be in the claim after it was read).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::configuration::{kafka_client_from_env, schema_registry_from_env};
use crate::kafka::{
    append_lines, framed, kind_of_headers, owned_headers, producer_config, subject_of,
    sync_directory, DeadLetter, DeadLetterLock, DeadLetterLockError, RegistryClient,
};

/// Letters between two checkpoints: what an interrupted replay may send twice.
pub const CHECKPOINT_EVERY: usize = 100;

/// How long `replay` waits for Kafka's metadata before it gives up without sending anything.
const REACH_KAFKA_WITHIN_SECS: u64 = 10;

/// What a replay achieved.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub published: usize,
    pub failed: usize,
    pub unreadable: usize,
    /// Letters an interrupted replay had already published (skipped, after its checkpoint).
    pub resumed_after: usize,
    /// Whether there was a file (or an interrupted replay's claim) to replay.
    pub found: bool,
}

pub use crate::kafka::beside;

/// Publishes every letter of `path` once and waits for Kafka's acknowledgement of each.
pub async fn replay(path: &Path, mut on_failure: impl FnMut(&str)) -> Result<ReplayReport, String> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    if name.as_deref().is_none_or(is_working_file) {
        return Err(format!(
            "{} is not a dead-letter file but one replay or the bridge works with: replay the file \
             it belongs to (FILE or FILE.rejected), which resumes what was interrupted",
            path.display()
        ));
    }
    let _lock = DeadLetterLock::acquire(path).map_err(|err| match err {
        DeadLetterLockError::Held { .. } => format!(
            "{err}. Nothing was replayed. A bridge retries its own dead-letter file by itself \
             (ZEGO_BRIDGE_DEAD_LETTER_RETRY_INTERVAL_MS); replay its {}.rejected once the \
             cause is fixed, or a file no bridge runs on",
            path.display()
        ),
        DeadLetterLockError::Io { .. } => err.to_string(),
    })?;
    let (brokers, properties) = kafka_client_from_env().map_err(|err| err.to_string())?;
    let producer: FutureProducer = producer_config(&brokers, &[], &properties)
        .create()
        .map_err(|err| format!("cannot create the Kafka producer: {err}"))?;
    // Each send waits for Kafka up to its delivery timeout (minutes): with Kafka away, a replay
    // would print nothing for that long per letter. One look first says so at once.
    let probe = producer.clone();
    tokio::task::spawn_blocking(move || {
        probe
            .client()
            .fetch_metadata(None, Duration::from_secs(REACH_KAFKA_WITHIN_SECS))
    })
    .await
    .map_err(|err| format!("the Kafka probe failed: {err}"))?
    .map_err(|err| {
        format!(
            "cannot reach Kafka at {brokers} within {REACH_KAFKA_WITHIN_SECS} s ({err}): nothing \
             was replayed; check ZEGO_BRIDGE_KAFKA_BROKERS and the cluster, then run it again"
        )
    })?;
    let registry = schema_registry_from_env()
        .map_err(|err| err.to_string())?
        .map(|settings| RegistryClient::new(settings).map_err(|err| err.to_string()))
        .transpose()?;
    let mut schema_ids: HashMap<(String, &'static str), u32> = HashMap::new();
    let claim = beside(path, ".replaying");
    let checkpoint = beside(path, ".replaying.checkpoint");
    let replayed = beside(path, ".replayed");
    let cannot = |what: &str, file: &Path, err: std::io::Error| {
        format!("cannot {what} {}: {err}", file.display())
    };
    let mut report = ReplayReport::default();
    if claim.exists() {
        report.resumed_after = read_checkpoint(&checkpoint, &claim)
            .map_err(|err| cannot("read the checkpoint", &checkpoint, err))?;
    } else {
        // A checkpoint without its claim belongs to no claim: never to the next one.
        remove_if_there(&checkpoint).map_err(|err| cannot("remove", &checkpoint, err))?;
        match std::fs::rename(path, &claim) {
            Ok(()) => sync_directory(path).map_err(|err| cannot("sync", path, err))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(err) => return Err(cannot("claim", path, err)),
        }
    }
    report.found = true;
    // Line by line: a file of rejected letters can be larger than the pod's memory.
    let reader = std::io::BufReader::new(
        std::fs::File::open(&claim).map_err(|err| cannot("read", &claim, err))?,
    );
    let mut lines = std::io::BufRead::lines(reader)
        .enumerate()
        .skip(report.resumed_after)
        .peekable();
    let mut done = report.resumed_after;
    while lines.peek().is_some() {
        let mut published = Vec::new();
        let mut back = Vec::new();
        let mut taken = 0;
        for (index, line) in lines.by_ref().take(CHECKPOINT_EVERY) {
            taken += 1;
            let raw = line.map_err(|err| cannot("read", &claim, err))?;
            if raw.trim().is_empty() {
                continue;
            }
            let letter: DeadLetter = match serde_json::from_str(&raw) {
                Ok(letter) => letter,
                Err(err) => {
                    report.unreadable += 1;
                    on_failure(&format!("line {}: {err}", index + 1));
                    back.push(raw);
                    continue;
                }
            };
            match publish(&producer, registry.as_ref(), &mut schema_ids, &letter).await {
                Ok(()) => {
                    report.published += 1;
                    published.push(raw);
                }
                Err(err) => {
                    report.failed += 1;
                    on_failure(&format!(
                        "event {} to {}: {err}",
                        id_of(&letter),
                        letter.topic
                    ));
                    back.push(with_error(&letter, &err).unwrap_or(raw));
                }
            }
        }
        // Both on disk before the checkpoint moves past them: a letter is always in a file.
        append_lines(&replayed, &published).map_err(|err| cannot("write", &replayed, err))?;
        append_lines(path, &back).map_err(|err| cannot("write", path, err))?;
        done += taken;
        write_checkpoint(&checkpoint, done, &claim)
            .map_err(|err| cannot("write the checkpoint", &checkpoint, err))?;
    }
    // The checkpoint first: a claim left without one is replayed whole (duplicates), while a
    // checkpoint left without its claim would make the next claim skip letters.
    remove_if_there(&checkpoint).map_err(|err| cannot("remove", &checkpoint, err))?;
    sync_directory(path).map_err(|err| cannot("sync", path, err))?;
    std::fs::remove_file(&claim).map_err(|err| cannot("remove", &claim, err))?;
    sync_directory(path).map_err(|err| cannot("sync", path, err))?;
    Ok(report)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// The names `replay` and the bridge make beside a dead-letter file, which are not one: a
/// replay of them would republish or skip letters.
fn is_working_file(name: &str) -> bool {
    [
        ".replaying",
        ".replayed",
        ".checkpoint",
        ".lock",
        ".partial",
        ".probe",
    ]
    .iter()
    .any(|suffix| name.ends_with(suffix))
        || name.rsplit_once(".retrying-").is_some_and(|(_, millis)| {
            millis.len() == 13 && millis.bytes().all(|b| b.is_ascii_digit())
        })
}

/// One line per file of letters beside `file` (what `dead-letters` prints): how many, of which
/// topics, the oldest failure and the latest error. Files that do not exist are left out; with
/// none, one line says so.
pub fn inventory(file: &Path) -> Result<Vec<String>, String> {
    let directory = match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .ok_or_else(|| format!("not a file name: {}", file.display()))?
        .to_string_lossy()
        .into_owned();
    let mut paths: Vec<(PathBuf, &str)> = vec![(
        file.to_owned(),
        "waiting: the bridge sends these again by itself",
    )];
    let mut retries: Vec<PathBuf> = std::fs::read_dir(&directory)
        .map_err(|err| format!("cannot list {}: {err}", directory.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| crate::kafka::is_claim_name(n, &format!("{name}.retrying-")))
        })
        .collect();
    retries.sort();
    for retry in retries {
        paths.push((
            retry,
            "a retry by the bridge in progress (or interrupted: it resumes at start)",
        ));
    }
    for (suffix, meaning) in [
        (
            ".rejected",
            "rejected: no retry can deliver these; fix the cause, then `replay` this file",
        ),
        (
            ".replaying",
            "a replay in progress or interrupted (the next `replay` resumes it)",
        ),
        (
            ".replayed",
            "published by `replay`: a record, deleted by `dead-letters --purge-replayed`",
        ),
        (
            ".rejected.replaying",
            "a replay in progress or interrupted (the next `replay` resumes it)",
        ),
        (
            ".rejected.replayed",
            "published by `replay`: a record, deleted by `dead-letters --purge-replayed`",
        ),
    ] {
        paths.push((beside(file, suffix), meaning));
    }
    let mut lines = Vec::new();
    for (path, meaning) in paths {
        // Line by line, keeping counts only: the file can be larger than the pod's memory.
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let mut topics: std::collections::BTreeMap<String, usize> = Default::default();
        let (mut count, mut unreadable) = (0usize, 0usize);
        let mut oldest: Option<String> = None;
        let mut latest_error = String::from("-");
        for line in std::io::BufRead::lines(std::io::BufReader::new(file)) {
            let line = line.map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            count += 1;
            match serde_json::from_str::<DeadLetter>(&line) {
                Ok(letter) => {
                    *topics.entry(letter.topic).or_default() += 1;
                    if oldest
                        .as_ref()
                        .is_none_or(|oldest| letter.failed_at < *oldest)
                    {
                        oldest = Some(letter.failed_at);
                    }
                    latest_error = letter.error;
                }
                Err(_) => unreadable += 1,
            }
        }
        let by_topic: Vec<String> = topics
            .iter()
            .map(|(topic, n)| format!("{topic} {n}"))
            .collect();
        let oldest = oldest.unwrap_or_else(|| "-".to_owned());
        lines.push(format!(
            "{}: {} letters ({meaning}){}{}; oldest failure {oldest}; latest error: {latest_error}",
            path.display(),
            count,
            if by_topic.is_empty() {
                String::new()
            } else {
                format!("; by topic: {}", by_topic.join(", "))
            },
            if unreadable > 0 {
                format!("; {unreadable} unreadable lines")
            } else {
                String::new()
            },
        ));
    }
    if lines.is_empty() {
        lines.push(format!("no dead letters beside {}", file.display()));
    }
    Ok(lines)
}

/// The letter's line with the error of this replay.
fn with_error(letter: &DeadLetter, error: &str) -> Option<String> {
    let mut line: serde_json::Value = serde_json::to_value(letter).ok()?;
    line["error"] = serde_json::Value::String(error.to_owned());
    line["failed_at"] = serde_json::Value::String(
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    );
    serde_json::to_string(&line).ok()
}

/// The letters of `claim` already done, by the checkpoint written for that very file (its
/// inode): a checkpoint of another file counts nothing.
fn read_checkpoint(path: &Path, claim: &Path) -> std::io::Result<usize> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(claim)?.ino();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let mut fields = text.split_whitespace();
            let done = fields
                .next()
                .and_then(|done| done.parse().ok())
                .unwrap_or(0);
            let of = fields.next().and_then(|of| of.parse::<u64>().ok());
            Ok(if of == Some(inode) { done } else { 0 })
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(err),
    }
}

fn write_checkpoint(path: &Path, done: usize, claim: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(claim)?.ino();
    let partial = beside(path, ".partial");
    std::fs::write(&partial, format!("{done} {inode}\n"))?;
    std::fs::File::open(&partial)?.sync_all()?;
    std::fs::rename(&partial, path)?;
    sync_directory(path)
}

/// Publishes one letter and waits for Kafka's acknowledgement.
async fn publish(
    producer: &FutureProducer,
    registry: Option<&RegistryClient>,
    schema_ids: &mut HashMap<(String, &'static str), u32>,
    letter: &DeadLetter,
) -> Result<(), String> {
    {
        let value = match registry {
            None => letter.event.get().as_bytes().to_vec(),
            Some(registry) => framed(
                schema_id(registry, schema_ids, letter).await?,
                letter.event.get().as_bytes(),
            ),
        };
        let mut record = FutureRecord::to(&letter.topic)
            .payload(&value)
            .headers(owned_headers(letter.headers.iter()));
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map(|_| ())
            .map_err(|(err, _)| err.to_string())
    }
}

/// The schema id of a letter's type under its topic's subject, registered on first use.
async fn schema_id(
    registry: &RegistryClient,
    known: &mut HashMap<(String, &'static str), u32>,
    letter: &DeadLetter,
) -> Result<u32, String> {
    let kind = kind_of_headers(
        letter
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    )
    .ok_or("its ce_type header names no event type, so its schema is unknown")?;
    let key = (letter.topic.clone(), kind.name);
    if let Some(id) = known.get(&key) {
        return Ok(*id);
    }
    let id = registry
        .register(&subject_of(&letter.topic), kind)
        .await
        .map_err(|err| err.to_string())?;
    known.insert(key, id);
    Ok(id)
}

fn id_of(letter: &DeadLetter) -> &str {
    letter.headers.get("ce_id").map_or("?", String::as_str)
}
