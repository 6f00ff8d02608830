//! The dead-letter file: events that were acknowledged to ZEGO but could not be delivered, one
//! JSON line each, fsync'd, so `zego-kafka-bridge replay FILE` can publish them again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

pub struct DeadLetterFile {
    path: PathBuf,
    file: Mutex<Option<File>>,
}

impl DeadLetterFile {
    /// Opens lazily: a bridge that never dead-letters never touches the disk.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterFile {
            path: path.into(),
            file: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and waits until it is on disk.
    pub fn write(&self, letter: &DeadLetter) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(letter).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut guard = self
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.path)?,
            );
        }
        let file = guard.as_mut().expect("opened above");
        file.write_all(&line)?;
        file.sync_data()
    }

    /// Reads every line of a dead-letter file; a line that does not parse is returned as an
    /// error with its number, the others still come back.
    pub fn read(path: &Path) -> std::io::Result<Vec<Result<DeadLetter, String>>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                serde_json::from_str(line).map_err(|err| format!("line {}: {err}", index + 1))
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_exactly() {
        let dir = std::env::temp_dir().join(format!("dl-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
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
}
