//! Parts of the documentation generated from the code (the settings table, the event catalog),
//! and the check that the committed copies are current.

use std::path::Path;

/// Fails when the text between `begin` and `end` in the repository file `path` is not
/// `generated`; with `UPDATE_DOCS` set, rewrites it instead.
pub fn assert_current(path: &str, begin: &str, end: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let start = text
        .find(begin)
        .unwrap_or_else(|| panic!("{} lacks the marker {begin}", path.display()))
        + begin.len();
    let stop = text
        .find(end)
        .unwrap_or_else(|| panic!("{} lacks the marker {end}", path.display()));
    let generated = format!("\n{generated}\n");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{generated}{}", &text[..start], &text[stop..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        text[start..stop] == generated,
        "the generated part of {} is stale: run `UPDATE_DOCS=1 cargo test docs`",
        path.display()
    );
}
