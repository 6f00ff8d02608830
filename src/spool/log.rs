//! The on-disk layout of the spool: numbered segment files of framed records, a checkpoint, and
//! a quarantine for damaged bytes.
//!
//! A record is `[length: u32 LE][crc32 of the body: u32 LE][body]`, and a body is a JSON object.
//! Segment files are named after an increasing number (`segment-<20 digits>.log`); the
//! checkpoint names the first byte not yet delivered, as a segment and an offset in it.
//!
//! Damage anywhere is survived: a reader that meets bytes which are not a valid record
//! resynchronizes on the framing (the next offset where a complete record with a matching CRC
//! starts), so every intact record after the damage is still read; the damaged bytes are
//! reported so that they can be quarantined. Only an incomplete record at the very end of the
//! last segment is a torn tail (a write a crash cut short, never acknowledged).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".log";
const CHECKPOINT: &str = "checkpoint";
/// Damaged bytes are copied here, one file per damaged range, before the reader moves past them.
pub const QUARANTINE_DIR: &str = "quarantine";
pub const HEADER_BYTES: u64 = 8;
/// The smallest body: `{}`.
const MIN_RECORD_BYTES: u32 = 2;
/// A record larger than this is corruption, not data (bodies are capped far below it).
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{id:020}{SEGMENT_SUFFIX}"))
}

/// The segments in `dir`, by id.
pub fn list_segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(number) = name
            .strip_prefix(SEGMENT_PREFIX)
            .and_then(|rest| rest.strip_suffix(SEGMENT_SUFFIX))
        else {
            continue;
        };
        if let Ok(id) = number.parse::<u64>() {
            segments.push((id, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

pub fn frame(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// What starts at one offset of a segment's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A valid record; its body is `bytes[start + 8..end]`.
    Record { start: usize, end: usize },
    /// Bytes that are no record, up to the next valid record (or the end of the bytes).
    Damaged {
        start: usize,
        end: usize,
        /// True when a valid record follows; false when the damage runs to the end.
        resynchronized: bool,
    },
    /// A record whose header is plausible but whose bytes run past the end, with no valid record
    /// after it: a write in progress, or a torn tail.
    Incomplete { start: usize },
    /// Nothing left.
    End,
}

/// The length of the valid record starting at `at`, if one does.
fn record_at(bytes: &[u8], at: usize) -> Option<usize> {
    let header = bytes.get(at..at + HEADER_BYTES as usize)?;
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    if !(MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&length) {
        return None;
    }
    let body_start = at + HEADER_BYTES as usize;
    let body = bytes.get(body_start..body_start + length as usize)?;
    // Cheap checks first: a resynchronizing scan tries every offset.
    if body[0] != b'{' || body[body.len() - 1] != b'}' {
        return None;
    }
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    (crc32fast::hash(body) == crc).then_some(HEADER_BYTES as usize + length as usize)
}

/// Whether the header at `at` is plausible but its record runs past the end of `bytes`.
fn runs_past_the_end(bytes: &[u8], at: usize) -> bool {
    let Some(header) = bytes.get(at..at + HEADER_BYTES as usize) else {
        return true; // fewer bytes than a header
    };
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    (MIN_RECORD_BYTES..=MAX_RECORD_BYTES).contains(&length)
        && at + HEADER_BYTES as usize + length as usize > bytes.len()
}

/// Parses what starts at `at`.
pub fn parse(bytes: &[u8], at: usize) -> Parsed {
    if at >= bytes.len() {
        return Parsed::End;
    }
    if let Some(length) = record_at(bytes, at) {
        return Parsed::Record {
            start: at,
            end: at + length,
        };
    }
    let next_valid = (at + 1..bytes.len()).find(|&candidate| record_at(bytes, candidate).is_some());
    match next_valid {
        Some(end) => Parsed::Damaged {
            start: at,
            end,
            resynchronized: true,
        },
        None if runs_past_the_end(bytes, at) => Parsed::Incomplete { start: at },
        None => Parsed::Damaged {
            start: at,
            end: bytes.len(),
            resynchronized: false,
        },
    }
}

/// A place in the spool: a segment and a byte offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u64,
    pub offset: u64,
}

/// What [`scan_segment`] found in one segment from an offset on.
#[derive(Debug, Default)]
pub struct SegmentScan {
    /// Valid records: where each ends.
    pub record_ends: Vec<u64>,
    /// Damaged ranges `(start, end)`.
    pub damaged: Vec<(u64, u64)>,
    /// Where an incomplete last record starts, if any.
    pub incomplete_from: Option<u64>,
    /// Whether `from` was where a record starts (or the end): a checkpoint must be.
    pub from_is_a_boundary: bool,
}

/// Reads a whole segment and sorts its bytes from `from` on into records, damage and an
/// incomplete tail.
pub fn scan_segment(path: &Path, from: u64) -> io::Result<SegmentScan> {
    let bytes = fs::read(path)?;
    let mut scan = SegmentScan::default();
    // A checkpoint is a boundary when walking the records from the start reaches it.
    let mut at = 0usize;
    while (at as u64) < from {
        match parse(&bytes, at) {
            Parsed::Record { end, .. } | Parsed::Damaged { end, .. } => at = end,
            Parsed::Incomplete { .. } | Parsed::End => break,
        }
    }
    scan.from_is_a_boundary = at as u64 == from && from <= bytes.len() as u64;
    let mut at = from.min(bytes.len() as u64) as usize;
    loop {
        match parse(&bytes, at) {
            Parsed::Record { end, .. } => {
                scan.record_ends.push(end as u64);
                at = end;
            }
            Parsed::Damaged { start, end, .. } => {
                scan.damaged.push((start as u64, end as u64));
                at = end;
            }
            Parsed::Incomplete { start } => {
                scan.incomplete_from = Some(start as u64);
                break;
            }
            Parsed::End => break,
        }
    }
    Ok(scan)
}

/// Cuts a segment back to `length` bytes (a torn tail) and makes it durable.
pub fn truncate(path: &Path, length: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(length)?;
    file.sync_all()
}

/// Copies a damaged range to the quarantine directory (once: the file is named after the
/// range, so meeting the same damage again writes the same file) and returns its path.
pub fn quarantine(dir: &Path, segment: u64, start: u64, bytes: &[u8]) -> io::Result<PathBuf> {
    let quarantine = dir.join(QUARANTINE_DIR);
    fs::create_dir_all(&quarantine)?;
    let path = quarantine.join(format!(
        "segment-{segment:020}-at-{start:012}-{}-bytes.bin",
        bytes.len()
    ));
    if !path.exists() {
        let temporary = path.with_extension("tmp");
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, &path)?;
        File::open(&quarantine)?.sync_all()?;
    }
    Ok(path)
}

/// Reads `length` bytes of a file from `offset` (fewer if it is shorter).
pub fn read_range(path: &Path, offset: u64, length: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::with_capacity(length.min(64 * 1024 * 1024) as usize);
    file.take(length).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// What the checkpoint file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// `<segment> <offset>`: everything before this byte was delivered.
    At(Position),
    /// A bare number, as versions before 0.2 wrote it: the number of the first undelivered
    /// record, counted across segments named after their first record.
    RecordNumber(u64),
}

/// Reads the checkpoint; `Err` with `InvalidData` when it is not one.
pub fn read_checkpoint(dir: &Path) -> io::Result<Option<Checkpoint>> {
    let text = match fs::read_to_string(dir.join(CHECKPOINT)) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    let invalid = || io::Error::new(io::ErrorKind::InvalidData, "the checkpoint is not readable");
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|part| part.parse::<u64>().map_err(|_| invalid()))
        .collect::<Result<_, _>>()?;
    match numbers[..] {
        [segment, offset] => Ok(Some(Checkpoint::At(Position { segment, offset }))),
        [record] => Ok(Some(Checkpoint::RecordNumber(record))),
        _ => Err(invalid()),
    }
}

/// Replaces the checkpoint atomically: a crash leaves the old one or the new one.
pub fn write_checkpoint(dir: &Path, at: Position) -> io::Result<()> {
    let temporary = dir.join(format!("{CHECKPOINT}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(format!("{} {}\n", at.segment, at.offset).as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(CHECKPOINT))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: usize) -> Vec<u8> {
        format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(n % 7)).into_bytes()
    }

    #[test]
    fn records_damage_and_an_incomplete_tail_are_told_apart() {
        let mut bytes = Vec::new();
        frame(&body(1), &mut bytes);
        let first_end = bytes.len();
        frame(&body(2), &mut bytes);
        let second_end = bytes.len();
        frame(&body(3), &mut bytes);
        let third_end = bytes.len();
        assert_eq!(
            parse(&bytes, 0),
            Parsed::Record {
                start: 0,
                end: first_end
            }
        );
        // A flipped byte in the second record: the third is found again.
        let mut damaged = bytes.clone();
        damaged[first_end + 10] ^= 0x01;
        assert_eq!(
            parse(&damaged, first_end),
            Parsed::Damaged {
                start: first_end,
                end: second_end,
                resynchronized: true
            }
        );
        // The last record cut short: incomplete, not damage.
        let torn = &bytes[..third_end - 3];
        assert_eq!(
            parse(torn, second_end),
            Parsed::Incomplete { start: second_end }
        );
        // The last record complete in length but with a flipped byte: damage, kept.
        let mut flipped = bytes.clone();
        flipped[third_end - 2] ^= 0x40;
        assert_eq!(
            parse(&flipped, second_end),
            Parsed::Damaged {
                start: second_end,
                end: third_end,
                resynchronized: false
            }
        );
    }

    #[test]
    fn checkpoints_replace_atomically_and_old_ones_are_read() {
        let dir = std::env::temp_dir().join(format!("spool-cp-{}", rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap(), None);
        let at = |segment, offset| Position { segment, offset };
        write_checkpoint(&dir, at(0, 41)).unwrap();
        write_checkpoint(&dir, at(3, 42)).unwrap();
        assert_eq!(
            read_checkpoint(&dir).unwrap(),
            Some(Checkpoint::At(at(3, 42)))
        );
        fs::write(dir.join(CHECKPOINT), "17").unwrap();
        assert_eq!(
            read_checkpoint(&dir).unwrap(),
            Some(Checkpoint::RecordNumber(17))
        );
        fs::write(dir.join(CHECKPOINT), "garbage").unwrap();
        assert_eq!(
            read_checkpoint(&dir).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
