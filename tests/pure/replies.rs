//! Reply stripping against a corpus of each client's reply format
//! (tests/fixtures/replies), as reviewed snapshots.

use tocsin::mail::strip::strip_reply;

#[test]
fn every_fixture_keeps_only_what_the_sender_wrote() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/replies");
    let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    assert!(names.len() >= 20);
    for path in names {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let stripped = strip_reply(&text);
        assert!(!stripped.contains('>'), "{name}: a quote survived:\n{stripped}");
        insta::assert_snapshot!(name, stripped);
    }
}
