//! The spool's recovery against damage at every byte: no intact acknowledged record is lost.

use super::*;

/// A spool directory written by hand: two segments of three records each, and the byte range
/// `(segment, start, end)` of every record.
struct Layout {
    dir: PathBuf,
    records: Vec<(u64, u64, u64, Vec<u8>)>,
}

fn record_body(n: usize) -> Vec<u8> {
    serde_json::to_vec(&OutgoingRecord {
        event_id: uuid::Uuid::from_u128(n as u128),
        topic: "t.mix.started".into(),
        key: Some("k".into()),
        headers: vec![("ce_id".into(), n.to_string())],
        payload: format!(r#"{{"seq":{n}}}"#),
    })
    .unwrap()
}

fn layout(name: &str) -> Layout {
    let dir = std::env::temp_dir().join(format!("spool-{name}-{}", rand::random::<u64>()));
    fs::create_dir_all(&dir).unwrap();
    let mut records = Vec::new();
    for (segment, numbers) in [(0u64, 0..3), (1u64, 3..6)] {
        let mut bytes = Vec::new();
        for n in numbers {
            let start = bytes.len() as u64;
            let body = record_body(n);
            log::frame(&body, &mut bytes);
            records.push((segment, start, bytes.len() as u64, body));
        }
        fs::write(log::segment_path(&dir, segment), &bytes).unwrap();
    }
    Layout { dir, records }
}

/// Opens the spool as the bridge does and reads everything it would publish, as the drainer
/// does: the records, and the damaged ranges it would quarantine.
fn recover(dir: &Path) -> (Vec<Vec<u8>>, Vec<(Position, usize)>, u64) {
    let metrics = Arc::new(Metrics::new());
    let options = SpoolOptions {
        dir: dir.to_owned(),
        max_bytes: 1024 * 1024,
        window: 10,
    };
    let spool = Spool::open(&options, metrics).expect("the spool opens whatever the damage");
    let pending = spool.stats().pending;
    let limit = spool.state.durable().end;
    let mut reader = Reader::new(dir.to_owned(), spool.start);
    spool.stop_appending();
    let (mut bodies, mut damaged) = (Vec::new(), Vec::new());
    loop {
        match reader.next(limit).unwrap() {
            Step::Record { body, .. } => bodies.push(body),
            Step::Damaged { at, bytes } => damaged.push((at, bytes.len())),
            Step::Wait => break,
        }
    }
    (bodies, damaged, pending)
}

#[test]
fn an_undamaged_spool_is_read_whole() {
    let layout = layout("whole");
    let (bodies, damaged, pending) = recover(&layout.dir);
    assert_eq!(bodies.len(), 6);
    assert!(damaged.is_empty());
    assert_eq!(pending, 6);
    fs::remove_dir_all(layout.dir).unwrap();
}

/// Every byte of the spool damaged in turn, three ways: every record the damage did not touch
/// is still read, in order, exactly once; the spool's pending count says as many; and the
/// damaged record (if any) is reported for quarantine rather than silently dropped.
#[test]
fn damage_at_every_byte_loses_no_intact_record() {
    let layout = layout("every-byte");
    let pristine: Vec<(u64, Vec<u8>)> = (0..2)
        .map(|segment| {
            let path = log::segment_path(&layout.dir, segment);
            (segment, fs::read(path).unwrap())
        })
        .collect();
    type Damage = fn(u8) -> u8;
    let damages: [(&str, Damage); 3] = [
        ("bit flip", |byte| byte ^ 0x01),
        ("zeroed", |_| 0x00),
        ("0xff", |_| 0xff),
    ];
    let mut cases = 0;
    for (segment, bytes) in &pristine {
        for offset in 0..bytes.len() {
            for (kind, damage) in &damages {
                let damaged_byte = damage(bytes[offset]);
                if damaged_byte == bytes[offset] {
                    continue;
                }
                cases += 1;
                let dir = layout
                    .dir
                    .with_extension(format!("{segment}-{offset}-{cases}"));
                fs::create_dir_all(&dir).unwrap();
                for (other, other_bytes) in &pristine {
                    let mut copy = other_bytes.clone();
                    if other == segment {
                        copy[offset] = damaged_byte;
                    }
                    fs::write(log::segment_path(&dir, *other), copy).unwrap();
                }
                let (bodies, damaged, pending) = recover(&dir);
                let intact: Vec<&Vec<u8>> = layout
                    .records
                    .iter()
                    .filter(|(s, start, end, _)| {
                        s != segment || !(*start..*end).contains(&(offset as u64))
                    })
                    .map(|(_, _, _, body)| body)
                    .collect();
                let context = format!("{kind} at segment {segment} byte {offset}");
                assert_eq!(bodies.len(), intact.len(), "{context}");
                for (read, expected) in bodies.iter().zip(&intact) {
                    assert_eq!(read, *expected, "{context}");
                }
                assert_eq!(pending, intact.len() as u64, "{context}");
                if intact.len() < 6 {
                    // The damaged record is reported (or, as an incomplete tail, already cut
                    // off into quarantine at open).
                    let quarantined = dir.join(log::QUARANTINE_DIR).exists();
                    assert!(!damaged.is_empty() || quarantined, "{context}");
                }
                fs::remove_dir_all(&dir).unwrap();
            }
        }
    }
    assert!(cases > 1000, "{cases} cases");
    fs::remove_dir_all(layout.dir).unwrap();
}

#[test]
fn an_impossible_checkpoint_is_reported_and_not_trusted() {
    for (name, checkpoint) in [
        ("past-the-data", "1 999999"),
        ("inside-a-record", "0 5"),
        ("no-such-segment", "7 0"),
        ("unreadable", "x y"),
    ] {
        let layout = layout(name);
        fs::write(layout.dir.join("checkpoint"), checkpoint).unwrap();
        let metrics = Arc::new(Metrics::new());
        let options = SpoolOptions {
            dir: layout.dir.clone(),
            max_bytes: 1024 * 1024,
            window: 10,
        };
        let spool = Spool::open(&options, metrics.clone()).unwrap();
        assert_eq!(
            spool.stats().pending,
            6,
            "{name}: everything is published again"
        );
        assert!(
            metrics
                .render()
                .contains("zego_bridge_spool_checkpoint_distrusted_total 1"),
            "{name}"
        );
        spool.stop_appending();
        fs::remove_dir_all(layout.dir).unwrap();
    }
}

#[test]
fn a_checkpoint_at_a_record_boundary_is_trusted_including_the_old_form() {
    let layout = layout("trusted");
    let second_end = layout.records[1].2;
    // The old form is a record number, counted across segments named after their first record.
    for (checkpoint, pending) in [
        (format!("0 {second_end}"), 4),
        ("1".to_owned(), 3),
        ("2".to_owned(), 2),
    ] {
        fs::write(layout.dir.join("checkpoint"), &checkpoint).unwrap();
        let spool = Spool::open(
            &SpoolOptions {
                dir: layout.dir.clone(),
                max_bytes: 1024 * 1024,
                window: 10,
            },
            Arc::new(Metrics::new()),
        )
        .unwrap();
        assert_eq!(spool.stats().pending, pending, "{checkpoint}");
        spool.stop_appending();
    }
    fs::remove_dir_all(layout.dir).unwrap();
}
