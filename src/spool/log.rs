//! The on-disk layout of the spool: numbered segment files of framed records, and a checkpoint.
//!
//! A record is `[length: u32 LE][crc32 of the body: u32 LE][body]`. Records are numbered from 0
//! across segments; a segment file is named after the number of its first record. The
//! checkpoint file holds the number of the first record not yet delivered.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".log";
const CHECKPOINT: &str = "checkpoint";
const HEADER_BYTES: u64 = 8;
/// A record larger than this is corruption, not data (bodies are capped far below it).
const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

pub fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}"))
}

/// The segments in `dir`, by first record number.
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
        if let Ok(first_seq) = number.parse::<u64>() {
            segments.push((first_seq, entry.path()));
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

/// Reads the next record; `Ok(None)` at a clean end, or at a torn or corrupt tail (a crash
/// in the middle of a write), which the caller treats as the end.
pub fn read_record(reader: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER_BYTES as usize];
    match reader.read_exact(&mut header) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let length = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if length > MAX_RECORD_BYTES {
        return Ok(None);
    }
    let mut body = vec![0u8; length as usize];
    match reader.read_exact(&mut body) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    if crc32fast::hash(&body) != crc {
        return Ok(None);
    }
    Ok(Some(body))
}

/// Counts the valid records of a segment and cuts off a torn tail. Returns the record count
/// and the file's valid length.
pub fn recover_segment(path: &Path) -> io::Result<(u64, u64)> {
    let file = File::open(path)?;
    let mut reader = BufReader::new(file);
    let mut records = 0;
    let mut valid = 0;
    while let Some(body) = read_record(&mut reader)? {
        records += 1;
        valid += HEADER_BYTES + body.len() as u64;
    }
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() != valid {
        file.set_len(valid)?;
        file.sync_all()?;
    }
    Ok((records, valid))
}

/// Reads records of one segment from a byte offset.
pub struct SegmentReader {
    reader: BufReader<File>,
    offset: u64,
}

impl SegmentReader {
    pub fn open(path: &Path, offset: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(SegmentReader {
            reader: BufReader::new(file),
            offset,
        })
    }

    /// The next record, or `None` if none is complete yet.
    pub fn next(&mut self) -> io::Result<Option<Vec<u8>>> {
        let body = read_record(&mut self.reader)?;
        match &body {
            Some(body) => self.offset += HEADER_BYTES + body.len() as u64,
            // A partial record may be a write in progress: read it again next time.
            None => {
                self.reader.seek(SeekFrom::Start(self.offset))?;
            }
        }
        Ok(body)
    }
}

pub fn read_checkpoint(dir: &Path) -> io::Result<Option<u64>> {
    match fs::read_to_string(dir.join(CHECKPOINT)) {
        Ok(text) => {
            text.trim().parse().map(Some).map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "checkpoint is not a number")
            })
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// Replaces the checkpoint atomically: a crash leaves the old one or the new one.
pub fn write_checkpoint(dir: &Path, seq: u64) -> io::Result<()> {
    let temporary = dir.join(format!("{CHECKPOINT}.tmp"));
    let mut file = File::create(&temporary)?;
    file.write_all(seq.to_string().as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, dir.join(CHECKPOINT))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_off_and_valid_records_kept() {
        let dir = std::env::temp_dir().join(format!("spool-log-{}", rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        let path = segment_path(&dir, 0);
        let mut bytes = Vec::new();
        frame(b"first", &mut bytes);
        frame(b"second", &mut bytes);
        let valid = bytes.len() as u64;
        let mut torn = Vec::new();
        frame(b"third, cut short", &mut torn);
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        fs::write(&path, &bytes).unwrap();
        assert_eq!(recover_segment(&path).unwrap(), (2, valid));
        assert_eq!(fs::metadata(&path).unwrap().len(), valid);
        let mut reader = SegmentReader::open(&path, 0).unwrap();
        assert_eq!(reader.next().unwrap().unwrap(), b"first");
        assert_eq!(reader.next().unwrap().unwrap(), b"second");
        assert_eq!(reader.next().unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_record_ends_the_segment() {
        let mut bytes = Vec::new();
        frame(b"good", &mut bytes);
        let mut bad = Vec::new();
        frame(b"flipped", &mut bad);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        bytes.extend_from_slice(&bad);
        let mut reader = io::Cursor::new(bytes);
        assert_eq!(read_record(&mut reader).unwrap().unwrap(), b"good");
        assert_eq!(read_record(&mut reader).unwrap(), None);
    }

    #[test]
    fn checkpoints_replace_atomically() {
        let dir = std::env::temp_dir().join(format!("spool-cp-{}", rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap(), None);
        write_checkpoint(&dir, 41).unwrap();
        write_checkpoint(&dir, 42).unwrap();
        assert_eq!(read_checkpoint(&dir).unwrap(), Some(42));
        fs::remove_dir_all(dir).unwrap();
    }
}
