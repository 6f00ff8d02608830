//! Callback secrets that can change while the bridge runs. Read from the file named by
//! `ZEGO_BRIDGE_CALLBACK_SECRETS_FILE` (a Kubernetes Secret volume), they are read again when the
//! file's content changes: the kubelet swaps a Secret volume's files in place, so a rotation in
//! the Secret reaches every pod without a restart. A file that has become unreadable or invalid
//! changes nothing: the secrets in use stay, and the fault is logged, counted and alerted on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, Guard};

use crate::internal_events::{CallbackSecretsReloadFailed, CallbackSecretsReloaded, InternalEvent};
use crate::metrics::Metrics;
use crate::zego::{CallbackSecrets, SecretsError};

/// How often the file is looked at. Reading a few hundred bytes costs nothing next to a
/// callback, and the kubelet takes up to a minute or so to update a Secret volume anyway.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// The secrets every callback is verified against now.
#[derive(Debug)]
pub struct LiveSecrets(ArcSwap<CallbackSecrets>);

impl LiveSecrets {
    pub fn new(secrets: CallbackSecrets) -> Self {
        LiveSecrets(ArcSwap::from_pointee(secrets))
    }

    /// The current secrets: a pointer load, no lock.
    pub fn current(&self) -> Guard<Arc<CallbackSecrets>> {
        self.0.load()
    }

    fn replace(&self, secrets: CallbackSecrets) {
        self.0.store(Arc::new(secrets));
    }
}

/// Why a secrets file cannot be used. Never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretsFileError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid { path: PathBuf, source: SecretsError },
    #[error("{} changed at each of the last {looks} looks, a second apart: it is applied once it holds still for one", path.display())]
    NeverSettles { path: PathBuf, looks: u32 },
}

/// Looks in a row that found a new content each time before it is reported: a writer that
/// rewrites the file every second would otherwise keep the new secrets out silently.
const UNSETTLED_LOOKS_REPORTED: u32 = 10;

/// A secrets file holds a few hundred bytes; past this it is no secrets file.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads a secrets file: the syntax of `ZEGO_BRIDGE_CALLBACK_SECRETS` (entries `SECRET` or
/// `APPID=SECRET`, or the JSON form), where line breaks separate entries as commas do, and
/// blank lines and lines starting with `#` are skipped.
pub fn read_secrets_file(path: &Path) -> Result<CallbackSecrets, SecretsFileError> {
    let read_error = |source| SecretsFileError::Read {
        path: path.to_owned(),
        source,
    };
    let bytes = read_regular_file(path).map_err(read_error)?;
    parse_secrets_bytes(path, bytes)
}

/// The secrets in the content of the file at `path` (named in the errors).
fn parse_secrets_bytes(path: &Path, bytes: Vec<u8>) -> Result<CallbackSecrets, SecretsFileError> {
    let text = String::from_utf8(bytes).map_err(|_| SecretsFileError::Read {
        path: path.to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"),
    })?;
    parse_secrets_file(&text).map_err(|source| SecretsFileError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// The content of `path` if it is a regular file (through symbolic links, as the kubelet
/// makes them) of at most [`MAX_FILE_BYTES`]. A FIFO is opened without blocking and refused,
/// as are a directory and a device: reading one would hang the watcher, or never end.
fn read_regular_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, a directory or a device cannot hold secrets)",
        ));
    }
    let mut content = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut content)?;
    if content.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "larger than 1 MiB: not a secrets file",
        ));
    }
    Ok(content)
}

fn parse_secrets_file(text: &str) -> Result<CallbackSecrets, SecretsError> {
    if text.trim_start().starts_with('{') {
        return CallbackSecrets::parse(text);
    }
    let entries: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    CallbackSecrets::parse(&entries.join(","))
}

/// Watches the secrets file and replaces the live secrets when its content changes.
pub struct SecretsWatcher {
    path: PathBuf,
    live: Arc<LiveSecrets>,
    metrics: Arc<Metrics>,
    /// The content last looked at, valid or not: a change is a new content, not a new mtime
    /// (the kubelet's swap gives new mtimes to an unchanged file).
    last_seen: Option<Vec<u8>>,
    /// A new content seen once: it is applied when the next look finds it unchanged, so that a
    /// file being rewritten in place is never applied half-written.
    settling: Option<Vec<u8>>,
    /// The last content looked at was broken (reported, and the gauge set).
    reported_invalid: bool,
    /// Looks in a row that found yet another content; reported once at
    /// [`UNSETTLED_LOOKS_REPORTED`].
    unsettled_looks: u32,
}

impl SecretsWatcher {
    /// Watches `path`, whose secrets `live` holds. It does not read the file again to know
    /// where it starts: a change made between the start's reading and this one would be taken
    /// as seen and never applied. The first looks find what is in use and apply nothing.
    pub fn new(path: PathBuf, live: Arc<LiveSecrets>, metrics: Arc<Metrics>) -> Self {
        SecretsWatcher {
            path,
            live,
            metrics,
            last_seen: None,
            settling: None,
            reported_invalid: false,
            unsettled_looks: 0,
        }
    }

    /// Looks at the file every [`POLL_EVERY`] until the task is dropped, on a blocking thread:
    /// a read that hangs (a stuck network volume) stalls the watcher, not an HTTP worker.
    pub async fn run(self) {
        let mut watcher = self;
        loop {
            tokio::time::sleep(POLL_EVERY).await;
            watcher = match tokio::task::spawn_blocking(move || {
                watcher.check();
                watcher
            })
            .await
            {
                Ok(watcher) => watcher,
                // Only a panic in `check` gets here: the watcher is gone, and said so.
                Err(err) => {
                    tracing::error!(error = %err, "the callback secrets file watcher stopped");
                    return;
                }
            };
        }
    }

    /// One look: a new content is applied once two looks in a row find it (a file written in
    /// place is not applied half-written); a broken file keeps the secrets in use.
    pub fn check(&mut self) {
        let content = read_regular_file(&self.path);
        let unchanged = match (&content, &self.last_seen) {
            (Ok(now), Some(before)) => now == before,
            // Still unreadable: it was reported when it became so.
            (Err(_), None) => true,
            _ => false,
        };
        if unchanged {
            self.settling = None;
            self.unsettled_looks = 0;
            return;
        }
        if let Ok(now) = &content {
            if self.settling.as_ref() != Some(now) {
                self.settling = Some(now.clone());
                self.unsettled_looks += 1;
                if self.unsettled_looks == UNSETTLED_LOOKS_REPORTED {
                    CallbackSecretsReloadFailed {
                        error: &SecretsFileError::NeverSettles {
                            path: self.path.clone(),
                            looks: self.unsettled_looks,
                        },
                    }
                    .emit(&self.metrics);
                }
                return;
            }
        }
        self.settling = None;
        self.unsettled_looks = 0;
        // The bytes that held still, not a third reading that could catch another rewrite.
        let parsed = match content {
            Ok(bytes) => {
                self.last_seen = Some(bytes.clone());
                parse_secrets_bytes(&self.path, bytes)
            }
            Err(source) => {
                self.last_seen = None;
                Err(SecretsFileError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        match parsed {
            // What is in use already (the file as the start read it): nothing to apply.
            Ok(secrets) if !self.reported_invalid && secrets == **self.live.current() => {}
            Ok(secrets) => {
                let count = secrets.count();
                self.live.replace(secrets);
                self.reported_invalid = false;
                CallbackSecretsReloaded {
                    path: &self.path,
                    secrets: count,
                }
                .emit(&self.metrics);
            }
            Err(error) => {
                self.reported_invalid = true;
                CallbackSecretsReloadFailed { error: &error }.emit(&self.metrics);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_takes_entries_on_lines_or_with_commas_and_skips_comments() {
        let secrets =
            parse_secrets_file("# rotated 2026-12\nnew-secret\n\n4242=app,old-secret\n").unwrap();
        assert_eq!(secrets.count(), 3);
        assert_eq!(
            parse_secrets_file(r#"{"*": ["a,b=c"], "7": "d"}"#)
                .unwrap()
                .count(),
            2
        );
        assert!(matches!(
            parse_secrets_file("# nothing but a comment\n"),
            Err(SecretsError::EmptyEntry { .. })
        ));
    }

    /// A secrets file in a directory of its own, its secrets live, and a watcher on it.
    struct Watched {
        dir: PathBuf,
        path: PathBuf,
        live: Arc<LiveSecrets>,
        metrics: Arc<Metrics>,
        watcher: SecretsWatcher,
    }

    impl Watched {
        fn new(content: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("secrets-{}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("secrets");
            std::fs::write(&path, content).unwrap();
            let live = Arc::new(LiveSecrets::new(read_secrets_file(&path).unwrap()));
            let metrics = Arc::new(Metrics::new());
            let watcher = SecretsWatcher::new(path.clone(), live.clone(), metrics.clone());
            Watched {
                dir,
                path,
                live,
                metrics,
                watcher,
            }
        }
    }

    impl LiveSecrets {
        /// Whether a callback signed with `secret` verifies now.
        fn signs(&self, secret: &str) -> bool {
            self.current()
                .verify(1, "1", "n", &crate::zego::sign(secret, "1", "n"))
                .is_ok()
        }
    }

    #[test]
    fn a_change_is_applied_and_a_broken_file_keeps_the_secrets_in_use() {
        let Watched {
            dir: _,
            path,
            live,
            metrics,
            mut watcher,
        } = Watched::new("first\n");
        let signs = |secret: &str| live.signs(secret);

        watcher.check();
        assert!(signs("first"));
        // Half written: seen once, not applied; then completed, and applied once it holds still.
        std::fs::write(&path, "second,th").unwrap();
        watcher.check();
        assert!(signs("first") && !signs("th"), "a content seen once waits");
        std::fs::write(&path, "second,third\n").unwrap();
        watcher.check();
        assert!(signs("first"));
        watcher.check();
        assert!(signs("second") && signs("third") && !signs("first"));

        std::fs::write(&path, "4242=\n").unwrap();
        watcher.check();
        watcher.check();
        assert!(signs("second"), "a broken file keeps the secrets in use");
        let text = metrics.render();
        assert!(
            text.lines()
                .any(|line| line == "zego_bridge_callback_secrets_file_invalid 1"),
            "{text}"
        );
        assert!(text.contains(r#"zego_bridge_callback_secrets_reloads_total{outcome="failed"} 1"#));

        std::fs::remove_file(&path).unwrap();
        watcher.check();
        assert!(signs("second"), "a missing file keeps the secrets in use");

        std::fs::write(&path, "fourth").unwrap();
        watcher.check();
        watcher.check();
        assert!(signs("fourth") && !signs("second"));
        let text = metrics.render();
        assert!(
            text.lines()
                .any(|line| line == "zego_bridge_callback_secrets_file_invalid 0"),
            "{text}"
        );
        assert!(text.contains(r#"zego_bridge_callback_secrets_reloads_total{outcome="applied"} 2"#));
        assert!(text.contains(r#"zego_bridge_callback_secrets_reloads_total{outcome="failed"} 2"#));
        assert!(
            text.lines()
                .any(|line| line == "zego_bridge_callback_secrets 1"),
            "{text}"
        );
    }

    /// What an operator's tools can leave at the path: a byte-order mark, a FIFO, a directory.
    /// Each is refused with the log line and the metric of a broken file, at once (a FIFO does
    /// not hang the watcher), and the secrets in use stay.
    #[test]
    fn a_bom_a_fifo_or_a_directory_is_refused_and_the_secrets_stay() {
        let Watched {
            dir,
            path,
            live,
            metrics,
            mut watcher,
        } = Watched::new("first\n");
        let signs = |secret: &str| live.signs(secret);
        let failed = || {
            metrics
                .render()
                .lines()
                .find_map(|line| {
                    line.strip_prefix(
                        r#"zego_bridge_callback_secrets_reloads_total{outcome="failed"} "#,
                    )
                    .map(str::to_owned)
                })
                .unwrap_or_default()
        };

        std::fs::write(&path, "\u{feff}{\"*\": \"second\"}").unwrap();
        watcher.check();
        watcher.check();
        assert!(signs("first") && !signs("second"));
        assert_eq!(failed(), "1");
        assert!(matches!(
            read_secrets_file(&path),
            Err(SecretsFileError::Invalid {
                source: SecretsError::ByteOrderMark,
                ..
            })
        ));

        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        watcher.check();
        watcher.check();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a FIFO does not block"
        );
        assert!(signs("first"));
        let err = read_secrets_file(&path).unwrap_err().to_string();
        assert!(err.contains("not a regular file"), "{err}");

        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        watcher.check();
        assert!(signs("first"));
        let err = read_secrets_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("not a regular file") || err.contains("directory"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A rotation that lands while the bridge starts (after its secrets were read, before the
    /// watcher runs) is applied, not taken as already seen; the file as read at start is not
    /// applied again.
    #[test]
    fn a_rotation_during_start_up_is_applied() {
        let Watched {
            dir,
            path,
            live,
            metrics,
            mut watcher,
        } = Watched::new("first\n");
        watcher.check();
        watcher.check();
        assert!(
            !metrics.render().contains(r#"outcome="applied"} 1"#),
            "the file as read at start is not applied again"
        );
        std::fs::write(&path, "rotated\n").unwrap();
        let mut late = SecretsWatcher::new(path.clone(), live.clone(), metrics.clone());
        late.check();
        late.check();
        assert!(live.signs("rotated") && !live.signs("first"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A file rewritten at every look is never applied half-written, and not silently either:
    /// after ten looks it is reported (a log line and the failure counter), once; the secrets
    /// in use stay; once it holds still it is applied.
    #[test]
    fn a_file_that_never_holds_still_is_reported_once_and_applied_once_it_does() {
        let Watched {
            dir,
            path,
            live,
            metrics,
            mut watcher,
        } = Watched::new("first\n");
        let failures = |metrics: &Metrics| {
            metrics
                .render()
                .lines()
                .find(|line| {
                    line.starts_with(
                        r#"zego_bridge_callback_secrets_reloads_total{outcome="failed"}"#,
                    )
                })
                .map(str::to_owned)
                .unwrap_or_default()
        };
        for look in 0..25 {
            std::fs::write(&path, format!("changing-{look}\n")).unwrap();
            watcher.check();
        }
        assert!(live.signs("first"), "nothing half-written applied");
        assert!(failures(&metrics).ends_with(" 1"), "{}", failures(&metrics));
        watcher.check();
        assert!(live.signs("changing-24") && !live.signs("first"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
