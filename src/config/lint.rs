//! The lint pre-pass: every unknown key (with the closest known one),
//! duplicate key, missing key and value of the wrong kind in a config file,
//! all in one run, each with its key path, line, column and the line of the
//! file with a caret under the fault.
//!
//! serde stops at its first error; this walks the YAML's parser events with
//! their positions against [`keys::FILE`] instead. When it finds nothing,
//! serde and the model builder take over as before.

use std::borrow::Cow;

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, ScanError, Span};

use super::keys::{self, Key, Kind};
use super::units::{parse_duration, parse_size};
use super::Problem;

/// A place in the text: 1-based line, 0-based column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct At {
    line: usize,
    col: usize,
}

/// A node of the YAML tree with where it starts and ends.
#[derive(Debug)]
struct Node {
    start: At,
    end: At,
    value: Value,
}

#[derive(Debug)]
enum Value {
    Scalar(String, ScalarStyle),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// `*anchor`: checked where the anchor was defined.
    Alias,
}

/// A text range never shown in a snippet.
#[derive(Debug, Clone, Copy)]
struct Redaction {
    start: At,
    end: At,
}

/// Deeper than any real config; keeps recursion bounded on hostile input.
const MAX_DEPTH: usize = 64;

struct Problems {
    out: Vec<(Problem, usize)>,
    redactions: Vec<Redaction>,
}

impl Problems {
    /// A problem at `at`, underlining `width` characters.
    fn push(&mut self, key: &str, at: At, width: usize, message: String) {
        let p = Problem::at(key, (at.line as u64, at.col as u64 + 1), message);
        self.out.push((p, width));
    }
}

/// Every problem the pre-pass finds in `text`, each with a snippet. Empty
/// when the file's shape is right (its meaning is checked later).
pub(super) fn lint(text: &str) -> Vec<Problem> {
    let mut found = Problems {
        out: Vec::new(),
        redactions: Vec::new(),
    };
    match parse(text) {
        Ok(Some(root)) => check(&root, &keys::FILE, "", false, 0, &mut found),
        Ok(None) => {
            let at = At { line: 1, col: 0 };
            found.push("routes", at, 1, "missing: the file has no routes".into());
        }
        Err(e) => {
            let m = e.marker();
            let at = At {
                line: m.line(),
                col: m.col(),
            };
            found.push("", at, 1, format!("not valid YAML: {}", e.info()));
        }
    }
    let lines: Vec<&str> = text.lines().collect();
    let redactions = found.redactions;
    found
        .out
        .into_iter()
        .map(|(p, width)| attach(p, width, &lines, &redactions))
        .collect()
}

/// Adds the snippet (the file's line with a caret) to problems found
/// elsewhere (by serde or the model builder) that have a line.
pub(super) fn with_snippets(text: &str, problems: Vec<Problem>) -> Vec<Problem> {
    let mut found = Problems {
        out: Vec::new(),
        redactions: Vec::new(),
    };
    if let Ok(Some(root)) = parse(text) {
        check(&root, &keys::FILE, "", false, 0, &mut found);
    }
    let lines: Vec<&str> = text.lines().collect();
    problems
        .into_iter()
        .map(|p| {
            if p.message.contains('\n') {
                p
            } else {
                attach(p, 1, &lines, &found.redactions)
            }
        })
        .collect()
}

fn parse(text: &str) -> Result<Option<Node>, ScanError> {
    let mut events = Parser::new_from_str(text);
    loop {
        match next(&mut events)? {
            None => return Ok(None),
            Some((Event::StreamEnd, _)) => return Ok(None),
            Some((Event::StreamStart | Event::DocumentStart(..), _)) => {}
            Some((ev, span)) => return node(&mut events, ev, span, 0).map(Some),
        }
    }
}

type Events<'a> = Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>;

/// The next event that is part of the tree (comments and anchor names are
/// not).
fn next<'a>(events: &mut Events<'a>) -> Result<Option<(Event<'a>, Span)>, ScanError> {
    loop {
        match events.next_event() {
            None => return Ok(None),
            Some(Err(e)) => return Err(e),
            Some(Ok((ev, span))) => match ev {
                Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::SequenceEnd
                | Event::MappingStart(..)
                | Event::MappingEnd
                | Event::Alias(..)
                | Event::StreamEnd
                | Event::StreamStart
                | Event::DocumentStart(..)
                | Event::DocumentEnd => return Ok(Some((ev, span))),
                _ => {}
            },
        }
    }
}

fn at(m: &serde_saphyr::granit_parser::Marker) -> At {
    At {
        line: m.line(),
        col: m.col(),
    }
}

fn node<'a>(
    events: &mut Events<'a>,
    ev: Event<'a>,
    span: Span,
    depth: usize,
) -> Result<Node, ScanError> {
    let start = at(&span.start);
    let too_deep = || ScanError::new(span.start, "nested too deeply for a config file");
    let value = match ev {
        Event::Scalar(v, style, ..) => Value::Scalar(v.into_owned(), style),
        Event::Alias(..) => Value::Alias,
        Event::SequenceStart(..) => {
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            let mut items = Vec::new();
            loop {
                match next(events)? {
                    Some((Event::SequenceEnd, end)) => {
                        return Ok(Node {
                            start,
                            end: at(&end.end),
                            value: Value::Seq(items),
                        })
                    }
                    Some((ev, span)) => items.push(node(events, ev, span, depth + 1)?),
                    None => return Err(ScanError::new(span.start, "unclosed list")),
                }
            }
        }
        Event::MappingStart(..) => {
            if depth > MAX_DEPTH {
                return Err(too_deep());
            }
            let mut entries = Vec::new();
            loop {
                match next(events)? {
                    Some((Event::MappingEnd, end)) => {
                        return Ok(Node {
                            start,
                            end: at(&end.end),
                            value: Value::Map(entries),
                        })
                    }
                    Some((ev, span)) => {
                        let k = node(events, ev, span, depth + 1)?;
                        let Some((ev, span)) = next(events)? else {
                            return Err(ScanError::new(span.start, "a key without a value"));
                        };
                        let v = node(events, ev, span, depth + 1)?;
                        entries.push((k, v));
                    }
                    None => return Err(ScanError::new(span.start, "unclosed mapping")),
                }
            }
        }
        _ => Value::Alias,
    };
    Ok(Node {
        start,
        end: at(&span.end),
        value,
    })
}

fn is_null(v: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(v, "" | "~" | "null" | "Null" | "NULL")
}

/// What a node is, in words, for "expected X, found Y".
fn found(n: &Node) -> Cow<'static, str> {
    match &n.value {
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
        Value::Alias => "an alias".into(),
        Value::Scalar(s, _) => {
            let shown: String = s.chars().take(40).collect();
            let more = if s.chars().count() > 40 { "…" } else { "" };
            format!("`{shown}{more}`").into()
        }
    }
}

fn expected(kind: &Kind) -> &'static str {
    match kind {
        Kind::Int => "a whole number",
        Kind::Bool => "`true` or `false`",
        Kind::Str => "a single value",
        Kind::Duration => "a duration (`10s`)",
        Kind::Size => "a size (`1MiB`)",
        Kind::List(_) => "a list (`- item` lines or `[a, b]`)",
        Kind::Map(_) | Kind::FreeMap => "a mapping (`key: value` lines)",
    }
}

fn width(n: &Node) -> usize {
    if n.start.line == n.end.line {
        n.end.col.saturating_sub(n.start.col).max(1)
    } else {
        1
    }
}

/// Whether serde reads this scalar as a `T`: the lint is never stricter
/// than serde about what a number or a boolean looks like.
fn serde_reads<T: serde::de::DeserializeOwned>(v: &str, style: ScalarStyle) -> bool {
    let source = match style {
        ScalarStyle::Plain => v.to_string(),
        _ => match serde_json::to_string(v) {
            Ok(quoted) => quoted,
            Err(_) => return false,
        },
    };
    serde_saphyr::from_str::<T>(&source).is_ok()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn check(n: &Node, kind: &Kind, path: &str, secret: bool, depth: usize, p: &mut Problems) {
    if secret {
        p.redactions.push(Redaction {
            start: n.start,
            end: n.end,
        });
    }
    if depth > MAX_DEPTH {
        return;
    }
    if let Value::Scalar(v, style) = &n.value {
        if is_null(v, *style) {
            return; // an absent optional value; serde reports a required one
        }
    }
    if matches!(n.value, Value::Alias) {
        return;
    }
    let wrong = |p: &mut Problems| {
        let what = if secret { "a value".into() } else { found(n) };
        p.push(
            path,
            n.start,
            width(n),
            format!("expected {}, found {what}", expected(kind)),
        );
    };
    match (kind, &n.value) {
        (Kind::Int, Value::Scalar(v, style)) => {
            if !serde_reads::<u64>(v, *style) {
                wrong(p);
            }
        }
        (Kind::Bool, Value::Scalar(v, style)) => {
            if !serde_reads::<bool>(v, *style) {
                wrong(p);
            }
        }
        (Kind::Str, Value::Scalar(..)) => {}
        (Kind::Duration, Value::Scalar(v, _)) => {
            if let Err(e) = parse_duration(v) {
                p.push(path, n.start, width(n), e);
            }
        }
        (Kind::Size, Value::Scalar(v, _)) => {
            if let Err(e) = parse_size(v) {
                p.push(path, n.start, width(n), e);
            }
        }
        (Kind::List(item), Value::Seq(items)) => {
            for (i, it) in items.iter().enumerate() {
                check(it, item, &format!("{path}[{i}]"), secret, depth + 1, p);
            }
        }
        (Kind::Map(keys), Value::Map(entries)) => map(n, keys, entries, path, depth, p),
        (Kind::FreeMap, Value::Map(entries)) => {
            let mut seen: Vec<(&str, usize)> = Vec::new();
            for (k, v) in entries {
                let Value::Scalar(name, _) = &k.value else {
                    p.push(path, k.start, 1, "a key must be a single word".into());
                    continue;
                };
                let key = join(path, name);
                duplicate(&mut seen, name, k, &key, p);
                if !matches!(v.value, Value::Scalar(..) | Value::Alias) {
                    p.push(&key, v.start, 1, "expected a single value".into());
                }
                // Values here (header values) may be credentials.
                p.redactions.push(Redaction {
                    start: v.start,
                    end: v.end,
                });
            }
        }
        _ => wrong(p),
    }
}

fn duplicate<'a>(
    seen: &mut Vec<(&'a str, usize)>,
    name: &'a str,
    k: &Node,
    key: &str,
    p: &mut Problems,
) -> bool {
    if let Some((_, line)) = seen.iter().find(|(s, _)| *s == name) {
        p.push(
            key,
            k.start,
            width(k),
            format!("duplicate key `{name}` (first at line {line})"),
        );
        return true;
    }
    seen.push((name, k.start.line));
    false
}

fn map(
    n: &Node,
    keys: &'static [Key],
    entries: &[(Node, Node)],
    path: &str,
    depth: usize,
    p: &mut Problems,
) {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut suggested: Vec<&str> = Vec::new();
    for (k, v) in entries {
        let name = match &k.value {
            Value::Scalar(name, _) => name.as_str(),
            Value::Alias => continue,
            _ => {
                p.push(path, k.start, 1, "a key must be a single word".into());
                continue;
            }
        };
        if name == "<<" {
            continue; // a YAML merge key; serde checks what it brings in
        }
        let key = join(path, name);
        if duplicate(&mut seen, name, k, &key, p) {
            continue;
        }
        match keys.iter().find(|d| d.name == name) {
            Some(d) => check(v, &d.kind, &key, d.secret, depth + 1, p),
            None => {
                let hint = match suggest(name, keys) {
                    Some(s) => {
                        suggested.push(s);
                        format!("; did you mean `{s}`?")
                    }
                    None => match elsewhere(name, keys) {
                        Some(s) => format!("; `{name}` belongs under `{}`", join(path, s)),
                        None => {
                            let known: Vec<&str> = keys.iter().map(|d| d.name).collect();
                            format!("; known keys here: {}", known.join(", "))
                        }
                    },
                };
                // A secret written at the wrong indentation is still a secret.
                if looks_secret(name) {
                    p.redactions.push(Redaction {
                        start: v.start,
                        end: v.end,
                    });
                }
                p.push(
                    &key,
                    k.start,
                    width(k),
                    format!("unknown key `{name}`{hint}"),
                );
            }
        }
    }
    for d in keys.iter().filter(|d| d.required) {
        if !seen.iter().any(|(s, _)| *s == d.name) && !suggested.contains(&d.name) {
            let whose = if path.is_empty() {
                "the file".to_string()
            } else {
                format!("`{path}`")
            };
            p.push(
                &join(path, d.name),
                n.start,
                1,
                format!("missing: {whose} needs `{}`", d.name),
            );
        }
    }
}

/// Whether an unknown key's value may be a secret: its name is one of the
/// secret keys, or says so.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "value", "url", "header", "secret", "password", "passwd", "token", "auth",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// The known key closest to `name`, when it is close enough to be a typo.
fn suggest(name: &str, keys: &[Key]) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    keys.iter()
        .map(|d| (distance(&lower, d.name), d.name))
        .filter(|(dist, known)| *dist <= (known.len() / 3).clamp(1, 3))
        .min_by_key(|(dist, _)| *dist)
        .map(|(_, known)| known)
}

/// The key of this mapping under which `name` is a known key (`tolerance`
/// written under a route instead of under its `verify`).
fn elsewhere(name: &str, keys: &[Key]) -> Option<&'static str> {
    keys.iter().find_map(|d| {
        let inner = match d.kind {
            Kind::Map(inner) => inner,
            Kind::List(Kind::Map(inner)) => inner,
            _ => return None,
        };
        inner.iter().any(|i| i.name == name).then_some(d.name)
    })
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(cur).min(row[j])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The widest snippet line shown, in characters.
const SNIPPET_WIDTH: usize = 100;

/// Appends the problem's line of the file, secrets masked, with a caret
/// under its column.
fn attach(mut p: Problem, width: usize, lines: &[&str], redactions: &[Redaction]) -> Problem {
    let Some((line, col)) = p.line else {
        return p;
    };
    let Some(text) = lines.get((line as usize).wrapping_sub(1)) else {
        return p;
    };
    let col = (col as usize).saturating_sub(1);
    let mut chars: Vec<char> = text.chars().collect();
    mask(&mut chars, line as usize, redactions);
    // Long lines: a window around the column.
    let from = if chars.len() > SNIPPET_WIDTH {
        col.saturating_sub(SNIPPET_WIDTH / 2)
    } else {
        0
    };
    let to = chars.len().min(from + SNIPPET_WIDTH);
    let shown: String = chars.get(from..to).unwrap_or_default().iter().collect();
    let pad: String = chars
        .get(from..col.min(chars.len()))
        .unwrap_or_default()
        .iter()
        .map(|c| if *c == '\t' { '\t' } else { ' ' })
        .collect();
    let gutter = " ".repeat(line.to_string().len());
    let width = width.clamp(1, SNIPPET_WIDTH);
    p.message = format!(
        "{}\n  {line} | {}\n  {gutter} | {pad}{}",
        p.message,
        shown.trim_end(),
        "^".repeat(width)
    );
    p
}

/// Replaces secret characters of line `line` (1-based) by `*`. Besides the
/// ranges the tree marked, a few patterns are masked whatever the tree
/// says, because a file that does not parse has no tree: the rest of a
/// `value:` line and the password of a URL (`scheme://user:password@`).
fn mask(chars: &mut [char], line: usize, redactions: &[Redaction]) {
    let len = chars.len();
    for r in redactions {
        if line < r.start.line || line > r.end.line {
            continue;
        }
        let from = if line == r.start.line { r.start.col } else { 0 };
        let to = if line == r.end.line { r.end.col } else { len };
        for c in chars.iter_mut().take(to.min(len)).skip(from) {
            if !c.is_whitespace() {
                *c = '*';
            }
        }
    }
    let text: String = chars.iter().collect();
    let trimmed = text.trim_start().trim_start_matches("- ").trim_start();
    if trimmed.starts_with("value:") || trimmed.contains("{ value:") || trimmed.contains("{value:")
    {
        if let Some(i) = text.find("value:") {
            let start = text[..i].chars().count() + "value:".len();
            for c in chars.iter_mut().skip(start) {
                if !c.is_whitespace() && !matches!(c, '}' | ']' | ',') {
                    *c = '*';
                }
            }
        }
    }
    // scheme://user:password@host
    let text: String = chars.iter().collect();
    let mut search = 0;
    while let Some(i) = text[search..].find("://") {
        let auth_start = search + i + 3;
        let rest = &text[auth_start..];
        let auth_end = rest
            .find(|c: char| c == '/' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        if let Some(at_sign) = rest[..auth_end].rfind('@') {
            if let Some(colon) = rest[..at_sign].find(':') {
                let from = text[..auth_start + colon + 1].chars().count();
                let to = text[..auth_start + at_sign].chars().count();
                for c in chars.iter_mut().take(to).skip(from) {
                    *c = '*';
                }
            }
        }
        search = auth_start;
    }
}

#[cfg(test)]
#[path = "lint_tests.rs"]
mod tests;
