//! The command grammar engineers use from their phones, by SMS or as the
//! first line of an email reply. Pure: text in, a command or a precise
//! error out.
//!
//! `ACK [n]`, `NOTE [n] text`, `REPLY [n] text`, `RES [n] [text]`, `ESC [n]`,
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
    /// Text for the customer, mailed in the case's thread.
    Reply(String),
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
    #[error("REPLY needs text for the customer, e.g. REPLY 1042 We are on it.")]
    ReplyWithoutText,
    #[error("SNOOZE needs a time, e.g. SNOOZE 1042 30m.")]
    SnoozeWithoutTime,
    #[error("{0:?} is not a time; write e.g. 30m or 1h.")]
    BadTime(String),
    #[error("ASSIGN needs a person, e.g. ASSIGN 1042 ben.")]
    AssignWithoutPerson,
}

/// The grammar, for HELP replies (one SMS).
pub const HELP: &str = "Commands: ACK, NOTE text, REPLY text (to customer), RES [text], ESC, SNOOZE 30m, TAKE, ASSIGN who, WAIT, RESUME, LIST. Add case # (ACK 1042) unless 1 pages you.";

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
        "reply" | "re" | "answer" => "reply",
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
    parse_with(input, "")
}

/// Parses an engineer's email reply: the command is its first non-empty
/// line; for `REPLY`, the lines after it (the mail's own text, quoted
/// history already stripped) belong to the text for the customer, so a
/// reply can be written as a mail: `REPLY` alone on the first line, then
/// the answer.
pub fn parse_mail(text: &str) -> Result<Command, ParseError> {
    let mut lines = text.lines();
    let first = lines.by_ref().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let rest = lines.collect::<Vec<_>>().join("\n");
    parse_with(first, rest.trim())
}

fn parse_with(input: &str, more: &str) -> Result<Command, ParseError> {
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
    // A reply keeps what was typed after the verb and number as it is
    // (its closing full stop, its quotes): the customer reads it.
    let said = {
        let head = cleaned.trim_start_matches(|c: char| is_noise(c) && c != '?' || c.is_whitespace());
        let consumed = words.len() - args.len();
        let mut rest = head;
        for _ in 0..consumed {
            rest = rest.trim_start();
            rest = &rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..];
        }
        rest.trim().to_owned()
    };
    let verb = match verb {
        "ack" => Verb::Ack,
        "note" if text.is_empty() => return Err(ParseError::NoteWithoutText),
        "note" => Verb::Note(text),
        "reply" => {
            let text = [said.as_str(), more].iter().filter(|t| !t.is_empty()).copied().collect::<Vec<_>>().join("\n");
            if text.is_empty() {
                return Err(ParseError::ReplyWithoutText);
            }
            Verb::Reply(text)
        }
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
            ("REPLY 1042 We are on it.", ok(Some(1042), Verb::Reply("We are on it.".into()))),
            ("reply restored, sorry for the wait", ok(None, Verb::Reply("restored, sorry for the wait".into()))),
            ("Re #1042 fixed", ok(Some(1042), Verb::Reply("fixed".into()))),
            ("1042 reply done", ok(Some(1042), Verb::Reply("done".into()))),
            ("reply", Err(ParseError::ReplyWithoutText)),
            ("REPLY 1042", Err(ParseError::ReplyWithoutText)),
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
    fn an_email_reply_carries_its_whole_text_to_the_customer() {
        let mail = "\n  REPLY 1042\nHello,\n\nthe database is back.\nAna\n";
        assert_eq!(parse_mail(mail), ok(Some(1042), Verb::Reply("Hello,\n\nthe database is back.\nAna".into())));
        let mail = "reply We found it.\nA disk filled up.";
        assert_eq!(parse_mail(mail), ok(None, Verb::Reply("We found it.\nA disk filled up.".into())));
        assert_eq!(parse_mail("REPLY\n\n"), Err(ParseError::ReplyWithoutText));
        // Other commands read the first line only, as before.
        assert_eq!(parse_mail("ack 1042\nthanks"), ok(Some(1042), Verb::Ack));
    }

    #[test]
    fn help_fits_one_sms() {
        assert!(HELP.len() <= 160, "{} characters", HELP.len());
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
