//! The command grammar engineers use from their phones, by SMS or as the
//! first line of an email reply. Pure: text in, a command or a precise
//! error out.
//!
//! `ACK [n]`, `NOTE [n] text`, `RES [n] [text]`, `ESC [n]`,
//! `SNOOZE [n] DURATION`, `TAKE [n]`, `ASSIGN [n] PERSON`, `WAIT [n] [text]`,
//! `RESUME [n]`, `LIST`, `HELP`; case-insensitive; the number as
//! `1042` or `#1042`, before or after the verb (`1042 ack`); `A`, `R` and
//! `E` as short forms; surrounding quotes, punctuation and a phone's
//! autocorrect capitalisation tolerated. Carrier keywords (`STOP`, `START`)
//! are recognised so they are never mistaken for a note.

use chrono::TimeDelta;

use crate::case::CaseNumber;

/// Longest command text considered, in characters.
pub const MAX_LEN: usize = 1600;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verb {
    Ack,
    Note(String),
    Resolve(Option<String>),
    Escalate,
    Snooze(TimeDelta),
    /// Assign the case to the sender (acknowledges an open case).
    Take,
    /// Assign the case to the person with this id, as written (lower-cased).
    Assign(String),
    /// Waiting on the customer, with an optional reason.
    Wait(Option<String>),
    /// No longer waiting.
    Resume,
    List,
    Help,
    /// Carrier opt-out keyword.
    Stop,
    /// Carrier opt-in keyword.
    Start,
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// `None`: the one case paging the sender now.
    pub case: Option<CaseNumber>,
    pub verb: Verb,
}

/// Why a text is not a command; the message is the reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Empty message. Reply HELP for commands.")]
    Empty,
    #[error("Message too long. Reply HELP for commands.")]
    TooLong,
    #[error("Unknown command {0:?}. Reply HELP for commands.")]
    Unknown(String),
    #[error("NOTE needs text, e.g. NOTE 1042 restarted the database.")]
    NoteWithoutText,
    #[error("SNOOZE needs a time, e.g. SNOOZE 1042 30m.")]
    SnoozeWithoutTime,
    #[error("{0:?} is not a time; write e.g. 30m or 1h.")]
    BadTime(String),
    #[error("ASSIGN needs a person, e.g. ASSIGN 1042 ben.")]
    AssignWithoutPerson,
}

/// The grammar, for HELP replies (one SMS).
pub const HELP: &str = "Commands: ACK, NOTE text, RES [text], ESC, SNOOZE 30m, TAKE, ASSIGN person, WAIT [text], RESUME, LIST. Add the case number (ACK 1042) unless one case pages you.";

/// Characters around a word that carry no meaning: quotes of every kind,
/// punctuation a phone adds.
fn is_noise(c: char) -> bool {
    c.is_ascii_punctuation() && c != '#' || matches!(c, '‘' | '’' | '“' | '”' | '«' | '»' | '„' | '…' | '¡' | '¿')
}

fn case_number(word: &str) -> Option<CaseNumber> {
    let w = word.trim_matches(is_noise);
    let (hash, digits) = match w.strip_prefix('#') {
        Some(d) => (true, d.trim_matches(is_noise)),
        None => (false, w),
    };
    // A bare number counts as a case number only with three digits or more,
    // so "NOTE 3 nodes back" keeps its 3.
    let ok = !digits.is_empty()
        && digits.len() <= 18
        && digits.chars().all(|c| c.is_ascii_digit())
        && (hash || digits.len() >= 3);
    ok.then(|| digits.parse().ok().map(CaseNumber)).flatten().filter(|n| n.0 > 0)
}

fn verb_of(word: &str) -> Option<&'static str> {
    if word.trim() == "?" {
        return Some("help");
    }
    let w = word.trim_matches(is_noise).to_lowercase();
    Some(match w.as_str() {
        "ack" | "a" | "acknowledge" | "acked" => "ack",
        "note" | "update" => "note",
        "res" | "r" | "resolve" | "resolved" => "res",
        "esc" | "e" | "escalate" => "esc",
        "snooze" => "snooze",
        "take" | "mine" => "take",
        "assign" | "give" => "assign",
        "wait" | "waiting" => "wait",
        "resume" | "unwait" => "resume",
        "list" | "ls" => "list",
        "help" | "h" => "help",
        "stop" | "stopall" | "unsubscribe" | "cancel" | "end" | "quit" => "stop",
        "start" | "unstop" => "start",
        _ => return None,
    })
}

/// Parses one command.
pub fn parse(input: &str) -> Result<Command, ParseError> {
    if input.chars().count() > MAX_LEN {
        return Err(ParseError::TooLong);
    }
    // Control characters become spaces; a zero-width character vanishes.
    let cleaned: String = input
        .chars()
        .filter(|c| !matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}'))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    // "# 1042" as some keyboards space it.
    let cleaned = cleaned.replace("# ", "#");
    let text = cleaned.trim().trim_matches(|c: char| is_noise(c) && c != '?' || c.is_whitespace());
    let words: Vec<&str> = text.split_whitespace().collect();
    let Some(&first) = words.first() else { return Err(ParseError::Empty) };
    // The number may come first: "1042 ack".
    let (case, rest) = match case_number(first) {
        Some(n) if words.len() > 1 => (Some(n), &words[1..]),
        _ => (None, &words[..]),
    };
    let verb = verb_of(rest[0]).ok_or_else(|| ParseError::Unknown(rest[0].chars().take(20).collect()))?;
    let mut args = &rest[1..];
    let mut case = case;
    if case.is_none()
        && let Some(n) = args.first().and_then(|w| case_number(w))
    {
        case = Some(n);
        args = &args[1..];
    }
    let text = args.join(" ").trim().to_owned();
    let verb = match verb {
        "ack" => Verb::Ack,
        "note" if text.is_empty() => return Err(ParseError::NoteWithoutText),
        "note" => Verb::Note(text),
        "res" => Verb::Resolve((!text.is_empty()).then_some(text)),
        "esc" => Verb::Escalate,
        "snooze" if text.is_empty() => return Err(ParseError::SnoozeWithoutTime),
        "snooze" => {
            let d = humantime::parse_duration(&text.to_lowercase())
                .map_err(|_| ParseError::BadTime(text.chars().take(20).collect()))?;
            let d = TimeDelta::from_std(d).ok().filter(|d| *d > TimeDelta::zero() && *d <= TimeDelta::days(7));
            Verb::Snooze(d.ok_or_else(|| ParseError::BadTime(text.chars().take(20).collect()))?)
        }
        "take" => Verb::Take,
        "assign" => match args.first() {
            Some(who) => Verb::Assign(who.trim_matches(is_noise).to_lowercase()),
            None => return Err(ParseError::AssignWithoutPerson),
        },
        "wait" => Verb::Wait((!text.is_empty()).then_some(text)),
        "resume" => Verb::Resume,
        "list" => Verb::List,
        "help" => Verb::Help,
        "stop" => Verb::Stop,
        _ => Verb::Start,
    };
    Ok(Command { case, verb })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(case: Option<i64>, verb: Verb) -> Result<Command, ParseError> {
        Ok(Command { case: case.map(CaseNumber), verb })
    }

    #[test]
    fn the_grammar_as_phones_type_it() {
        let note = |t: &str| Verb::Note(t.into());
        let res = |t: Option<&str>| Verb::Resolve(t.map(str::to_owned));
        let table: Vec<(&str, Result<Command, ParseError>)> = vec![
            ("ACK", ok(None, Verb::Ack)),
            ("ack", ok(None, Verb::Ack)),
            ("Ack", ok(None, Verb::Ack)),
            ("aCK", ok(None, Verb::Ack)),
            ("A", ok(None, Verb::Ack)),
            ("a", ok(None, Verb::Ack)),
            ("Ack.", ok(None, Verb::Ack)),
            ("ack!", ok(None, Verb::Ack)),
            ("  ack  \n", ok(None, Verb::Ack)),
            ("\"ack\"", ok(None, Verb::Ack)),
            ("“Ack”", ok(None, Verb::Ack)),
            ("'ack'", ok(None, Verb::Ack)),
            ("ACK 1042", ok(Some(1042), Verb::Ack)),
            ("ack #1042", ok(Some(1042), Verb::Ack)),
            ("Ack #1042.", ok(Some(1042), Verb::Ack)),
            ("1042 ack", ok(Some(1042), Verb::Ack)),
            ("#1042 ACK", ok(Some(1042), Verb::Ack)),
            ("1042 a", ok(Some(1042), Verb::Ack)),
            ("acknowledge 1042", ok(Some(1042), Verb::Ack)),
            ("ack # 1042", ok(Some(1042), Verb::Ack)),
            ("NOTE restarted the db", ok(None, note("restarted the db"))),
            ("note 1042 restarted the db", ok(Some(1042), note("restarted the db"))),
            ("Note #1042 restarted the db", ok(Some(1042), note("restarted the db"))),
            ("1042 note failover done", ok(Some(1042), note("failover done"))),
            ("NOTE 3 of 4 nodes back", ok(None, note("3 of 4 nodes back"))),
            ("note #3 of 4 nodes back", ok(Some(3), note("of 4 nodes back"))),
            ("NOTE", Err(ParseError::NoteWithoutText)),
            ("note 1042", Err(ParseError::NoteWithoutText)),
            ("RES", ok(None, res(None))),
            ("res 1042", ok(Some(1042), res(None))),
            ("R 1042 fixed the disk", ok(Some(1042), res(Some("fixed the disk")))),
            ("RES fixed the disk", ok(None, res(Some("fixed the disk")))),
            ("resolved", ok(None, res(None))),
            ("Resolve #1042", ok(Some(1042), res(None))),
            ("1042 r", ok(Some(1042), res(None))),
            ("ESC", ok(None, Verb::Escalate)),
            ("e 1042", ok(Some(1042), Verb::Escalate)),
            ("Escalate #1042!", ok(Some(1042), Verb::Escalate)),
            ("SNOOZE 30m", ok(None, Verb::Snooze(TimeDelta::minutes(30)))),
            ("snooze 1042 1h", ok(Some(1042), Verb::Snooze(TimeDelta::hours(1)))),
            ("Snooze #1042 90 min", ok(Some(1042), Verb::Snooze(TimeDelta::minutes(90)))),
            ("snooze", Err(ParseError::SnoozeWithoutTime)),
            ("snooze 1042 soon", Err(ParseError::BadTime("soon".into()))),
            ("snooze 1042 30d", Err(ParseError::BadTime("30d".into()))),
            ("LIST", ok(None, Verb::List)),
            ("ls", ok(None, Verb::List)),
            ("help", ok(None, Verb::Help)),
            ("?", ok(None, Verb::Help)),
            ("HELP!", ok(None, Verb::Help)),
            ("STOP", ok(None, Verb::Stop)),
            ("Unsubscribe", ok(None, Verb::Stop)),
            ("START", ok(None, Verb::Start)),
            ("TAKE", ok(None, Verb::Take)),
            ("take 1042", ok(Some(1042), Verb::Take)),
            ("1042 Take.", ok(Some(1042), Verb::Take)),
            ("ASSIGN 1042 ben", ok(Some(1042), Verb::Assign("ben".into()))),
            ("assign #1042 Ben.", ok(Some(1042), Verb::Assign("ben".into()))),
            ("1042 assign chen", ok(Some(1042), Verb::Assign("chen".into()))),
            ("assign ben", ok(None, Verb::Assign("ben".into()))),
            ("assign 1042", Err(ParseError::AssignWithoutPerson)),
            ("WAIT", ok(None, Verb::Wait(None))),
            ("wait 1042 asked for logs", ok(Some(1042), Verb::Wait(Some("asked for logs".into())))),
            ("Resume #1042", ok(Some(1042), Verb::Resume)),
            ("resume", ok(None, Verb::Resume)),
            ("", Err(ParseError::Empty)),
            ("   ", Err(ParseError::Empty)),
            ("...", Err(ParseError::Empty)),
            ("hello there", Err(ParseError::Unknown("hello".into()))),
            ("1042", Err(ParseError::Unknown("1042".into()))),
            ("ok", Err(ParseError::Unknown("ok".into()))),
            // Look-alikes are not the command: Cyrillic А and С, Greek Α.
            ("АСК", Err(ParseError::Unknown("АСК".into()))),
            ("Αck", Err(ParseError::Unknown("Αck".into()))),
            // Control and zero-width characters.
            ("a\u{200b}ck 1042", ok(Some(1042), Verb::Ack)),
            ("ack\u{0007}1042", ok(Some(1042), Verb::Ack)),
            ("\u{0000}ack", ok(None, Verb::Ack)),
            ("ack 99999999999999999999", ok(None, Verb::Ack)),
            ("ack #0", ok(None, Verb::Ack)),
        ];
        assert!(table.len() >= 60);
        assert!(HELP.len() <= 160, "HELP fits one SMS: {}", HELP.len());
        for (input, want) in table {
            assert_eq!(parse(input), want, "{input:?}");
        }
    }

    #[test]
    fn hostile_input_never_panics_and_is_bounded() {
        assert_eq!(parse(&"a".repeat(MAX_LEN + 1)), Err(ParseError::TooLong));
        let long_note = format!("note 1042 {}", "x".repeat(1500));
        assert!(matches!(parse(&long_note), Ok(Command { verb: Verb::Note(_), .. })));
        for weird in ["\u{202e}kca", "🚨🚨🚨", "#", "##1042 ack", "ack #-1", "ack #0", "\r\n\t", "NOTE\u{0000}"] {
            let _ = parse(weird);
        }
    }
}
