//! The coordinator's one error type, and its one mapping to gRPC status
//! codes ([`CoordinatorError::code`]): a caller told UNAVAILABLE tries again,
//! so only trouble that may pass is UNAVAILABLE.
//!
//! A status travels in an HTTP/2 header, which a client refuses past 16 KiB,
//! so its message is summarised within [`MAX_WIRE_MESSAGE`] bytes
//! ([`CoordinatorError::wire_message`]): the first problems of a dataset and
//! how many more, every line cut, nothing of a request echoed at length. A
//! summarised refusal is written whole to standard error, as a
//! log event (`tracing`).

use std::fmt::Write as _;

use tonic::{Code, Status};
use zonesweep_proto::ProtoError;
use zonesweep_shared::data::dataset::{DatasetError, Problem};

use crate::store::{StoreCause, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// A submitted dataset, with every problem found in it.
    #[error("{0}")]
    InvalidDataset(DatasetError),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Not a `source`: the message already holds the store error's, and a
    /// report of the error chain would repeat it.
    #[error("storage: {0}")]
    Store(StoreError),
    /// A batch of the committer was not stored; every change in it is
    /// answered with this (the store error itself goes to one caller only).
    #[error("not stored: {message}")]
    NotStored { cause: StoreCause, message: String },
    #[error("{0}")]
    Internal(String),
    /// Passing trouble: the caller should retry.
    #[error("{0}")]
    Unavailable(String),
    /// The coordinator is busy with other requests of this kind: the
    /// caller may try again once they are done.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Stored data that cannot be read (a quarantined sweep): retrying
    /// reads the same bytes.
    #[error("{0}")]
    DataLoss(String),
    #[error("cannot serve: {0}")]
    Transport(String),
    #[error("invalid coordinator settings: {0}")]
    Config(String),
}

impl From<StoreError> for CoordinatorError {
    fn from(error: StoreError) -> Self {
        CoordinatorError::Store(error)
    }
}

impl From<ProtoError> for CoordinatorError {
    fn from(error: ProtoError) -> Self {
        CoordinatorError::InvalidArgument(error.to_string())
    }
}

/// The code that tells a caller what to do about a storage failure.
fn store_code(cause: StoreCause) -> Code {
    match cause {
        StoreCause::Transient => Code::Unavailable,
        StoreCause::Corrupt => Code::DataLoss,
        StoreCause::Unusable => Code::FailedPrecondition,
        StoreCause::Missing => Code::NotFound,
        StoreCause::Exists => Code::AlreadyExists,
        StoreCause::Refused => Code::Internal,
    }
}

impl CoordinatorError {
    /// The gRPC code of this error: UNAVAILABLE (retry) only for trouble
    /// that may pass; corrupt storage is DATA_LOSS, bad input
    /// INVALID_ARGUMENT, an unknown sweep NOT_FOUND.
    pub fn code(&self) -> Code {
        match self {
            CoordinatorError::NotFound(_) => Code::NotFound,
            CoordinatorError::InvalidArgument(_)
            | CoordinatorError::InvalidDataset(_)
            | CoordinatorError::Config(_) => Code::InvalidArgument,
            CoordinatorError::FailedPrecondition(_) => Code::FailedPrecondition,
            CoordinatorError::Store(error) => store_code(error.cause()),
            CoordinatorError::NotStored { cause, .. } => store_code(*cause),
            CoordinatorError::Internal(_) | CoordinatorError::Transport(_) => Code::Internal,
            CoordinatorError::Unavailable(_) => Code::Unavailable,
            CoordinatorError::ResourceExhausted(_) => Code::ResourceExhausted,
            CoordinatorError::DataLoss(_) => Code::DataLoss,
        }
    }
}

/// The most bytes of text a status message carries. Percent-encoded (at
/// most three bytes each) it stays well inside the 16 KiB header list a
/// client accepts.
pub const MAX_WIRE_MESSAGE: usize = 4096;
/// The most bytes of one line (or one problem) of a message on the wire.
const MAX_WIRE_LINE: usize = 300;
/// The most bytes of a column name or value quoted in a problem on the wire.
const MAX_WIRE_QUOTE: usize = 60;
/// The most bytes of one line of the log: a value quoted from a request is
/// cut, the list is not.
const MAX_LOG_LINE: usize = 1000;
/// Room kept for the closing "… and N more" line.
const TAIL_ROOM: usize = 200;

/// `text` cut to at most `max` bytes (at a character boundary, "…"
/// included), with line breaks and other control characters as spaces so
/// that one value stays on one line.
fn clip(text: &str, max: usize) -> String {
    let flat = |s: &str| s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>();
    if text.len() <= max {
        return flat(text);
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    flat(&text[..end]) + "…"
}

/// A problem with its column name, value and message cut for the wire or the log.
fn clipped_problem(problem: &Problem, quote: usize, line: usize) -> String {
    let short = Problem {
        file: problem.file,
        line: problem.line,
        column: problem.column.as_deref().map(|c| clip(c, quote)),
        value: problem.value.as_deref().map(|v| clip(v, quote)),
        message: clip(&problem.message, line),
    };
    clip(&short.to_string(), line)
}

/// A message as sent to a caller: whether it had to be shortened to fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    pub text: String,
    pub shortened: bool,
}

/// `lines` (already cut) after `head`, as many as fit in
/// [`MAX_WIRE_MESSAGE`], then how many more there are, in `more`'s words.
fn fit(head: String, lines: impl ExactSizeIterator<Item = String>, more: impl Fn(usize) -> String) -> WireMessage {
    let total = lines.len();
    let mut text = head;
    for (i, line) in lines.enumerate() {
        if text.len() + 1 + line.len() + TAIL_ROOM > MAX_WIRE_MESSAGE {
            let _ = write!(text, "\n{}", more(total - i));
            return WireMessage { text, shortened: true };
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&line);
    }
    WireMessage { text, shortened: false }
}

impl CoordinatorError {
    /// The message a caller gets: the whole of it when it fits in
    /// [`MAX_WIRE_MESSAGE`] bytes with no line longer than a few hundred
    /// bytes; else the first lines (a dataset's first problems, each value
    /// cut to a few dozen bytes) and how many more there are.
    pub fn wire_message(&self) -> WireMessage {
        let text = match self {
            CoordinatorError::InvalidDataset(error) => return dataset_wire_message(error),
            // The wire message of these omits the variant's framing.
            CoordinatorError::InvalidArgument(m)
            | CoordinatorError::FailedPrecondition(m)
            | CoordinatorError::Internal(m)
            | CoordinatorError::Unavailable(m)
            | CoordinatorError::ResourceExhausted(m)
            | CoordinatorError::DataLoss(m)
            | CoordinatorError::Transport(m)
            | CoordinatorError::Config(m) => std::borrow::Cow::Borrowed(m.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        let lines = text.split('\n');
        let count = lines.clone().count();
        let mut cut = false;
        let lines = lines.map(|line| {
            let short = clip(line, MAX_WIRE_LINE);
            cut |= short.len() < line.len();
            short
        });
        let mut message = fit(String::new(), ExactLen(lines, count), |n| format!("… and {n} more line(s)"));
        message.shortened |= cut;
        message
    }

    /// The whole message for the coordinator's log: every problem or line,
    /// each cut to a thousand bytes, so a value that fills a request is
    /// not copied out whole.
    pub fn log_text(&self) -> String {
        match self {
            CoordinatorError::InvalidDataset(error) => {
                let mut text = format!("the dataset has {} problem(s):", error.problems.len());
                for problem in &error.problems {
                    let _ = write!(text, "\n  - {}", clipped_problem(problem, MAX_LOG_LINE / 4, MAX_LOG_LINE));
                }
                text
            }
            other => {
                let text = other.to_string();
                text.split('\n').map(|line| clip(line, MAX_LOG_LINE)).collect::<Vec<_>>().join("\n")
            }
        }
    }
}

/// An iterator of a known length (`fit` says how many lines it left out).
struct ExactLen<I>(I, usize);

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.0.next()?;
        self.1 -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.1, Some(self.1))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

/// A dataset's first problems and how many more there are.
fn dataset_wire_message(error: &DatasetError) -> WireMessage {
    let count = error.problems.len();
    let head = format!("the dataset has {count} problem(s):");
    let lines =
        error.problems.iter().map(|problem| format!("  - {}", clipped_problem(problem, MAX_WIRE_QUOTE, MAX_WIRE_LINE)));
    let mut message = fit(head, lines, |n| {
        format!(
            "  … and {n} more (the coordinator's log lists every one; `zonesweep data validate --data DIR --all` lists them all locally)"
        )
    });
    // A value cut to fit is a shortening too: the log has it longer.
    message.shortened |= error.problems.iter().any(|p| {
        p.value.as_ref().is_some_and(|v| v.len() > MAX_WIRE_QUOTE)
            || p.column.as_ref().is_some_and(|c| c.len() > MAX_WIRE_QUOTE)
            || p.message.len() > MAX_WIRE_LINE
    });
    message
}

impl From<CoordinatorError> for Status {
    /// The status a caller gets; a message summarised to fit goes whole to
    /// standard error.
    fn from(error: CoordinatorError) -> Status {
        let message = error.wire_message();
        if message.shortened {
            tracing::info!("refused ({:?}), the caller got a summary: {}", error.code(), error.log_text());
        }
        Status::new(error.code(), message.text)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn each_cause_has_its_code() {
        let corrupt = StoreError::Corrupt { table: "aggregates", key: "sw-1".into(), reason: "truncated".into() };
        let cases = [
            (CoordinatorError::Store(corrupt), Code::DataLoss),
            (CoordinatorError::NotStored { cause: StoreCause::Transient, message: "disk".into() }, Code::Unavailable),
            (CoordinatorError::NotStored { cause: StoreCause::Corrupt, message: "page".into() }, Code::DataLoss),
            (CoordinatorError::Store(StoreError::InUse { path: PathBuf::from("db"), hint: "" }), Code::Unavailable),
            (CoordinatorError::Store(StoreError::JobAlreadyDone { sweep_id: "a".into(), job: 0 }), Code::Internal),
            (CoordinatorError::Store(StoreError::SweepExists { id: "a".into() }), Code::AlreadyExists),
            (CoordinatorError::NotFound("sweep sw-1".into()), Code::NotFound),
            (CoordinatorError::InvalidArgument("bad".into()), Code::InvalidArgument),
            (CoordinatorError::FailedPrecondition("cancelled".into()), Code::FailedPrecondition),
            (CoordinatorError::Unavailable("shutting down".into()), Code::Unavailable),
            (CoordinatorError::ResourceExhausted("busy".into()), Code::ResourceExhausted),
            (CoordinatorError::Internal("bug".into()), Code::Internal),
            (CoordinatorError::DataLoss("sweep sw-1: quarantined".into()), Code::DataLoss),
            (CoordinatorError::Store(StoreError::Empty { path: PathBuf::from("db") }), Code::FailedPrecondition),
            (
                CoordinatorError::Store(StoreError::Closed { path: PathBuf::from("db"), trouble: "".into() }),
                Code::Unavailable,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
            assert_eq!(Status::from(error).code(), code);
        }
    }

    #[test]
    fn long_messages_are_cut_to_fit_a_header() {
        let long = "é".repeat(MAX_WIRE_MESSAGE);
        let status = Status::from(CoordinatorError::InvalidArgument(long));
        assert!(status.message().len() <= MAX_WIRE_MESSAGE, "{}", status.message().len());
        assert!(status.message().starts_with("éé") && status.message().ends_with('…'));
        let short = Status::from(CoordinatorError::InvalidArgument("short".into()));
        assert_eq!(short.message(), "short");
    }

    #[test]
    fn wire_messages_read_as_before() {
        let status = Status::from(CoordinatorError::NotFound("sweep sw-1".into()));
        assert_eq!(status.message(), "sweep sw-1 not found");
        let status = Status::from(CoordinatorError::InvalidArgument("the result is inconsistent".into()));
        assert_eq!(status.message(), "the result is inconsistent");
        let corrupt = StoreError::Corrupt { table: "sweeps", key: "sw-1".into(), reason: "truncated".into() };
        let status = Status::from(CoordinatorError::Store(corrupt));
        assert!(status.message().starts_with("storage: corrupt value in table `sweeps`"), "{status:?}");
    }

    fn problem(line: u64, value: &str) -> Problem {
        Problem {
            file: "panel.csv",
            line: Some(line),
            column: Some("pop".into()),
            value: Some(value.into()),
            message: "not a number".into(),
        }
    }

    #[test]
    fn a_long_problem_list_is_summarised_for_the_wire() {
        let problems: Vec<Problem> = (2..2002).map(|line| problem(line, "x")).collect();
        let error = CoordinatorError::InvalidDataset(DatasetError { problems });
        let message = error.wire_message();
        assert!(message.shortened);
        assert!(message.text.len() <= MAX_WIRE_MESSAGE, "{} bytes", message.text.len());
        assert!(message.text.starts_with("the dataset has 2000 problem(s):\n  - panel.csv line 2, column `pop`"));
        let shown = message.text.lines().filter(|l| l.starts_with("  - ")).count();
        assert!(shown >= 10, "{}", message.text);
        assert!(message.text.ends_with(&format!(
            "  … and {} more (the coordinator's log lists every one; `zonesweep data validate --data DIR --all` lists them all locally)",
            2000 - shown
        )));
        // The log has every problem.
        assert_eq!(error.log_text().lines().filter(|l| l.starts_with("  - ")).count(), 2000);
        assert_eq!(Status::from(error).code(), Code::InvalidArgument);
    }

    #[test]
    fn values_quoted_from_a_request_are_cut() {
        let junk = "ab\ncd".repeat(1 << 20);
        let error = CoordinatorError::InvalidDataset(DatasetError { problems: vec![problem(1, &junk)] });
        let message = error.wire_message();
        assert!(message.shortened && message.text.len() < 300, "{}", message.text);
        assert!(message.text.contains("value `ab cdab"), "control characters become spaces: {}", message.text);
        assert!(error.log_text().len() < 1100, "the log cuts the value too");

        let line = "abcd".repeat(1 << 20);
        let toml = format!("TOML parse error at line 1, column 3\n  |\n1 | {line}\n  |   ^\nexpected `=`");
        let message = CoordinatorError::InvalidArgument(toml).wire_message();
        assert!(message.shortened && message.text.len() <= 600, "{} bytes", message.text.len());
        assert!(message.text.starts_with("TOML parse error at line 1, column 3\n"));
        assert!(message.text.ends_with("expected `=`"), "{}", message.text);

        let many_lines = "a line\n".repeat(100_000);
        let message = CoordinatorError::Internal(many_lines).wire_message();
        assert!(message.text.len() <= MAX_WIRE_MESSAGE && message.text.ends_with("more line(s)"));
    }

    #[test]
    fn short_messages_are_sent_whole() {
        let error = CoordinatorError::InvalidDataset(DatasetError { problems: vec![problem(3, "-1")] });
        let message = error.wire_message();
        assert!(!message.shortened);
        assert_eq!(message.text, error.to_string());
        let message = CoordinatorError::InvalidArgument("two\nlines".into()).wire_message();
        assert_eq!(message, WireMessage { text: "two\nlines".into(), shortened: false });
    }
}
