//! SMS text that stays in GSM-7: one 160-character segment where it fits,
//! no character that would force the whole message into UCS-2 (70
//! characters a segment), and no word split across segments.

/// GSM 03.38 basic character set (one unit each).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension table (two units each: escape and character).
const EXTENDED: &str = "^{}\\[~]|€\u{0C}";

/// Units of one single-segment message, and of each part of a longer one
/// (the user-data header takes the rest).
pub const SINGLE: usize = 160;
pub const PART: usize = 153;

/// How a character outside GSM-7 is written instead.
fn transliterate(c: char) -> &'static str {
    match c {
        '‘' | '’' | '‚' | '′' | '`' | '´' => "'",
        '“' | '”' | '„' | '″' | '«' | '»' => "\"",
        '–' | '—' | '‒' | '−' => "-",
        '…' => "...",
        '•' | '·' => "*",
        '→' => "->",
        '←' => "<-",
        '×' => "x",
        '\u{a0}' | '\t' | '\u{2009}' | '\u{202f}' => " ",
        'á' | 'â' | 'ã' | 'ā' | 'ą' | 'ă' => "a",
        'Á' | 'Â' | 'Ã' | 'À' | 'Ā' | 'Ą' | 'Ă' => "A",
        'ç' | 'ć' | 'č' => "c",
        'Ć' | 'Č' => "C",
        'ê' | 'ë' | 'ē' | 'ę' | 'ě' => "e",
        'Ê' | 'Ë' | 'È' | 'Ē' | 'Ę' | 'Ě' => "E",
        'í' | 'î' | 'ï' | 'ī' => "i",
        'Í' | 'Î' | 'Ï' | 'Ì' | 'Ī' => "I",
        'ó' | 'ô' | 'õ' | 'ō' | 'ő' => "o",
        'Ó' | 'Ô' | 'Õ' | 'Ò' | 'Ō' | 'Ő' => "O",
        'ú' | 'û' | 'ū' | 'ů' | 'ű' => "u",
        'Ú' | 'Û' | 'Ù' | 'Ū' | 'Ů' | 'Ű' => "U",
        'ý' | 'ÿ' => "y",
        'Ý' | 'Ÿ' => "Y",
        'ł' => "l",
        'Ł' => "L",
        'ń' | 'ň' => "n",
        'ś' | 'š' => "s",
        'Ś' | 'Š' => "S",
        'ź' | 'ż' | 'ž' => "z",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'ř' => "r",
        'ď' => "d",
        'ť' => "t",
        'œ' => "oe",
        'Œ' => "OE",
        'þ' => "th",
        'ð' => "d",
        _ => "?",
    }
}

/// `text` with every character outside GSM-7 transliterated.
pub fn gsm7(text: &str) -> String {
    text.chars()
        .map(|c| if BASIC.contains(c) || EXTENDED.contains(c) { c.to_string() } else { transliterate(c).to_owned() })
        .collect()
}

/// How many GSM-7 units `text` takes (it must be GSM-7 already).
pub fn units(text: &str) -> usize {
    text.chars().map(|c| if EXTENDED.contains(c) { 2 } else { 1 }).sum()
}

/// How many segments `text` is sent in.
pub fn segments(text: &str) -> usize {
    match units(text) {
        n if n <= SINGLE => 1,
        n => n.div_ceil(PART),
    }
}

/// The text to send: GSM-7, and if it needs several segments, padded so
/// that no word (a case number, a command hint) straddles two of them.
pub fn fit(text: &str) -> String {
    let text = gsm7(text);
    if units(&text) <= SINGLE {
        return text;
    }
    let mut out = String::new();
    let mut used = 0;
    for (i, word) in text.split(' ').enumerate() {
        let gap = usize::from(i > 0);
        let len = units(word);
        let room = PART - used % PART;
        if used % PART != 0 && gap + len > room && len <= PART {
            out.extend(std::iter::repeat_n(' ', room));
            used += room;
        } else if i > 0 {
            out.push(' ');
            used += 1;
        }
        out.push_str(word);
        used += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_that_force_ucs2_are_transliterated() {
        assert_eq!(gsm7("Ana’s “db” is down… café → São Paulo"), "Ana's \"db\" is down... café -> Sao Paulo");
        assert_eq!(gsm7("Zürich Ærø ñ ß"), "Zürich Ærø ñ ß", "GSM-7 letters stay");
        assert_eq!(gsm7("🚨 alert"), "? alert");
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(units("a€[b]"), 1 + 2 + 2 + 1 + 2);
        assert_eq!(segments(&"x".repeat(160)), 1);
        assert_eq!(segments(&"x".repeat(161)), 2);
        assert_eq!(segments(&"€".repeat(80)), 1);
    }

    #[test]
    fn no_word_straddles_a_segment_boundary() {
        let text = format!("{} #1042 Reply ACK 1042", "word ".repeat(40));
        let fitted = fit(&text);
        let units: Vec<char> = fitted.chars().collect();
        for boundary in (PART..units.len()).step_by(PART) {
            let before = units[boundary - 1];
            let after = units[boundary];
            assert!(before == ' ' || after == ' ', "a word is split at {boundary}: {fitted:?}");
        }
        assert!(fitted.contains("#1042 Reply ACK 1042"));
    }
}
