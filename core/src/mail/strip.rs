//! What a person wrote in a reply, without the history they quoted or the
//! signature their phone added. The raw message is always kept; this only
//! shapes the text shown on the timeline.
//!
//! Everything from the first of these lines on is cut:
//! - Tocsin's own "reply above this line" marker;
//! - a quote header ("On … wrote:") in English, German, French, Spanish,
//!   Portuguese, Italian or Dutch, also when a client wraps it over two lines;
//! - an Outlook "-----Original Message-----" line in those languages, or an
//!   Outlook header block ("From:" with "Sent:"/"Date:" close below it);
//! - a signature delimiter (`-- `) or a "Sent from my …" line.
//!
//! Lines quoted with `>` are dropped wherever they are.

use std::sync::LazyLock;

use regex::Regex;

/// The line Tocsin puts above the history in its own emails.
pub const REPLY_MARKER: &str = "## Reply above this line ##";

static QUOTE_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*(?:",
        r"on\s.{4,}\swrote\s?:", // English (Gmail, Apple Mail, Thunderbird, iOS, Android)
        r"|am\s.{4,}\sschrieb\s.{0,200}:", // German
        r"|le\s.{4,}\sa\s(?:é|e)crit\s?:", // French
        r"|el\s.{4,}\sescribi(?:ó|o)\s?:", // Spanish
        r"|em\s.{4,}\sescreveu\s?:", // Portuguese
        r"|il\s.{4,}\sha\sscritto\s?:", // Italian
        r"|op\s.{4,}\sschreef\s.{0,200}:", // Dutch
        r"|.{0,200}\s(?:wrote|schrieb|a\s(?:é|e)crit|escribi(?:ó|o)|escreveu|ha\sscritto|schreef)\s?:",
        r")\s*$"
    ))
    .unwrap_or_else(|e| unreachable!("{e}"))
});

static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original",
        r"|mensagem original|messaggio originale|oorspronkelijk bericht|forwarded message|weitergeleitete nachricht)\s*-{2,}\s*$"
    ))
    .unwrap_or_else(|e| unreachable!("{e}"))
});

/// "From:" in the languages Outlook writes its header block in.
static OUTLOOK_FROM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*\*?(?:from|von|de|da|van)\s?:\*?\s").unwrap_or_else(|e| unreachable!("{e}")));

/// "Sent:" / "Date:" in those languages.
static OUTLOOK_SENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:sent|date|gesendet|datum|envoyé|date|enviado|enviada|fecha|data|inviato|verzonden|verstuurd)\s?:\*?\s")
        .unwrap_or_else(|e| unreachable!("{e}"))
});

static MOBILE_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)^\s*(?:sent from my |sent from (?:outlook|mail) for |get outlook for |gesendet von meinem |von meinem .{1,40} gesendet",
        r"|envoyé de mon |enviado desde mi |enviado do meu |enviado a partir do meu |inviato da(?:l mio)? |verstuurd vanaf mijn |verzonden vanaf mijn )"
    ))
    .unwrap_or_else(|e| unreachable!("{e}"))
});

/// Where the quoted history or signature starts, as a line index.
fn cut_at(lines: &[&str]) -> Option<usize> {
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_end();
        if t.trim() == REPLY_MARKER || t.contains(REPLY_MARKER) {
            return Some(i);
        }
        if QUOTE_HEADER.is_match(t)
            || ORIGINAL_MESSAGE.is_match(t)
            || MOBILE_SIGNATURE.is_match(t)
            || t == "--"
            || *line == "-- "
        {
            return Some(i);
        }
        // Gmail and others wrap a long quote header over two lines.
        if let Some(next) = lines.get(i + 1)
            && !t.trim().is_empty()
            && next.trim_end().ends_with(':')
            && QUOTE_HEADER.is_match(&format!("{} {}", t.trim(), next.trim()))
        {
            return Some(i);
        }
        // Outlook: "From: …" with "Sent: …" or "Date: …" within four lines.
        if OUTLOOK_FROM.is_match(t) && lines[i + 1..].iter().take(4).any(|l| OUTLOOK_SENT.is_match(l)) {
            return Some(i);
        }
    }
    None
}

/// The new text of a reply: quoted history, `>` quotes and signatures
/// removed, surrounding blank lines trimmed. Line endings become `\n`.
pub fn strip_reply(body: &str) -> String {
    let normalised = body.replace("\r\n", "\n");
    let lines: Vec<&str> = normalised.split('\n').collect();
    let end = cut_at(&lines).unwrap_or(lines.len());
    let kept: Vec<&str> = lines[..end].iter().copied().filter(|l| !l.trim_start().starts_with('>')).collect();
    let text = kept.join("\n");
    text.trim_matches(|c: char| c == '\n' || c.is_whitespace()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_without_history_is_kept_whole() {
        assert_eq!(strip_reply("Hello,\r\n\r\nthe site is down.\r\n"), "Hello,\n\nthe site is down.");
    }

    #[test]
    fn a_wrote_in_the_middle_of_a_sentence_is_not_a_quote_header() {
        let body = "On Monday the database wrote: nothing at all to the log,\nand then it stopped.";
        assert_eq!(strip_reply(body), body);
    }
}
