//! Every shipped template, rendered with the sample case, as reviewed
//! snapshots; and the checks `tocsin check` makes of templates.

use std::path::Path;

use tocsin::notify::{Templates, sample_renders};

fn shipped() -> Templates {
    Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap_or_else(|e| panic!("{e:#?}"))
}

#[test]
fn every_shipped_template_renders_as_reviewed() {
    for rendered in sample_renders(&shipped()) {
        let (kind, channel, r) = rendered.unwrap();
        let mut shown = String::new();
        if !r.subject.is_empty() {
            shown += &format!("Subject: {}\n\n", r.subject);
        }
        shown += &r.text;
        if let Some(html) = &r.html {
            shown += &format!("\n\n--- html ---\n{html}");
        }
        insta::assert_snapshot!(format!("{}-{}", kind.as_str(), channel.as_str()), shown);
    }
}

#[test]
fn every_shipped_sms_fits_one_segment() {
    for rendered in sample_renders(&shipped()) {
        let (kind, channel, r) = rendered.unwrap();
        if channel == tocsin::people::ChannelKind::Sms {
            let gsm = tocsin::notify::sms::gsm7(&r.text);
            assert_eq!(
                tocsin::notify::sms::segments(&gsm),
                1,
                "{kind:?}: {} units: {gsm}",
                tocsin::notify::sms::units(&gsm)
            );
        }
    }
}

#[test]
fn html_in_a_subject_is_escaped_in_html_mail_and_check_refuses_a_long_sms() {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), dir.path().join(f.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("page.sms.txt"), "{{ case.subject }} {{ case.body }} {{ case.subject }}").unwrap();
    let errors = Templates::load(dir.path()).unwrap_err();
    assert!(
        errors.iter().any(|e| e.contains("page.sms.txt: renders to") && e.contains("more than one SMS")),
        "{errors:#?}"
    );
    std::fs::write(dir.path().join("page.sms.txt"), "{{ case.tag }} {{ case.subject | truncate(40) }}").unwrap();
    std::fs::write(dir.path().join("page.email.html"), "<p>{{ case.subject }}</p>").unwrap();
    let t = Templates::load(dir.path()).unwrap();
    let html = sample_renders(&t)
        .into_iter()
        .filter_map(Result::ok)
        .find(|(k, c, _)| k.as_str() == "page" && *c == tocsin::people::ChannelKind::Email)
        .unwrap()
        .2
        .html
        .unwrap();
    assert_eq!(
        html,
        "<p>Database &lt;b&gt;down&lt;&#x2f;b&gt; in eu-west &amp; every checkout times out after thirty seconds</p>"
    );
}
