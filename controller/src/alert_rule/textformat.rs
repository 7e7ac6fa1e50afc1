//! A small parser for the Prometheus text exposition format (what `/metrics` endpoints serve).
//!
//! It reads sample lines — `name{label="value",...} value [timestamp]` — and skips comments
//! (`# HELP`, `# TYPE`, `# EOF`). Label values may contain escaped quotes, backslashes and
//! newlines; values may be `NaN`, `+Inf` or `-Inf`; a trailing OpenMetrics exemplar (`# {...}`)
//! is ignored. Anything else is an error that names the line, never a panic.

use std::collections::BTreeMap;
use std::fmt;

/// One sample of a scraped page.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Why a page could not be read: the 1-based line and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole page.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|message| {
            // Names inside the message come from the page and may be long.
            let message = if message.chars().count() > 160 {
                message.chars().take(160).collect::<String>() + "…"
            } else {
                message
            };
            ParseError {
                line: index + 1,
                message: format!("{message} in {}", excerpt(line, 80)),
            }
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

/// Text as quoted in an error, cut so the message stays short.
fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        format!("{text:?}")
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut:?}…")
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// A cursor over one line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.rest.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.rest = &self.rest[c.len_utf8()..];
        Some(c)
    }

    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    /// A metric or label name; `None` when none starts here.
    fn name(&mut self) -> Option<&'a str> {
        if !self.peek().is_some_and(is_name_start) {
            return None;
        }
        let end = self
            .rest
            .find(|c: char| !is_name_char(c))
            .unwrap_or(self.rest.len());
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(name)
    }

    /// The next blank-separated token (empty at the end of the line).
    fn token(&mut self) -> &'a str {
        self.skip_blanks();
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }
}

fn parse_line(line: &str) -> Result<Sample, String> {
    let mut cursor = Cursor { rest: line };
    let name = cursor
        .name()
        .ok_or("a sample must start with a metric name")?
        .to_string();
    let mut labels = BTreeMap::new();
    cursor.skip_blanks();
    if cursor.peek() == Some('{') {
        cursor.bump();
        parse_labels(&mut cursor, &mut labels)?;
    }
    let value_text = cursor.token();
    if value_text.is_empty() {
        return Err(format!("sample {name} has no value"));
    }
    let value = parse_value(value_text)?;
    let next = cursor.token();
    let after_timestamp = if next.is_empty() || next.starts_with('#') {
        next
    } else {
        parse_timestamp(next)?;
        cursor.token()
    };
    // An OpenMetrics exemplar (`# {trace_id="..."} 1`) may follow; tend does not use it.
    if !after_timestamp.is_empty() && !after_timestamp.starts_with('#') {
        return Err(format!(
            "unexpected {} after the value and timestamp",
            excerpt(after_timestamp, 20)
        ));
    }
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// Labels after the opening brace, through the closing one.
fn parse_labels(
    cursor: &mut Cursor<'_>,
    labels: &mut BTreeMap<String, String>,
) -> Result<(), String> {
    loop {
        cursor.skip_blanks();
        if cursor.peek() == Some('}') {
            cursor.bump();
            return Ok(());
        }
        let label = cursor
            .name()
            .ok_or_else(|| match cursor.peek() {
                None => "labels are not closed with '}'".to_string(),
                Some(c) => format!("expected a label name, found {c:?}"),
            })?
            .to_string();
        cursor.skip_blanks();
        if cursor.bump() != Some('=') {
            return Err(format!("label {label} has no '='"));
        }
        cursor.skip_blanks();
        if cursor.bump() != Some('"') {
            return Err(format!("the value of label {label} must be quoted"));
        }
        let value = parse_quoted(cursor).map_err(|e| format!("label {label}: {e}"))?;
        if labels.insert(label.clone(), value).is_some() {
            return Err(format!("label {label} appears twice"));
        }
        cursor.skip_blanks();
        match cursor.bump() {
            Some(',') => {}
            Some('}') => return Ok(()),
            Some(c) => {
                return Err(format!(
                    "expected ',' or '}}' after label {label}, found {c:?}"
                ));
            }
            None => return Err("labels are not closed with '}'".into()),
        }
    }
}

/// A label value after its opening quote, through the closing quote.
fn parse_quoted(cursor: &mut Cursor<'_>) -> Result<String, String> {
    let mut value = String::new();
    loop {
        match cursor.bump() {
            None => return Err("the value's quote is not closed".into()),
            Some('"') => return Ok(value),
            Some('\\') => match cursor.bump() {
                Some('\\') => value.push('\\'),
                Some('"') => value.push('"'),
                Some('n') => value.push('\n'),
                Some(c) => return Err(format!("unknown escape \\{c}")),
                None => return Err("the value's quote is not closed".into()),
            },
            Some(c) => value.push(c),
        }
    }
}

fn parse_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "+Inf" | "Inf" => return Ok(f64::INFINITY),
        "-Inf" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also reads `inf`, `infinity` and `nan` in any case; the format does not allow them.
    let plain = text
        .trim_start_matches(['+', '-'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    match text.parse::<f64>() {
        Ok(value) if plain => Ok(value),
        _ => Err(format!("{} is not a number", excerpt(text, 20))),
    }
}

fn parse_timestamp(text: &str) -> Result<i64, String> {
    text.parse::<i64>().map_err(|_| {
        format!(
            "{} is not a timestamp (milliseconds since the epoch)",
            excerpt(text, 20)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_comments_labels_and_timestamps() {
        let page = "# HELP http_requests_total Requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"get\",code=\"200\"} 1027 1395066363000\n\
                    \n\
                    http_requests_total{method=\"post\",code=\"500\",} 3\n\
                    fieldbook_verify_missing_objects 0\n\
                    # EOF\n";
        let samples = parse(page).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "http_requests_total");
        assert_eq!(
            samples[0].labels,
            labels(&[("method", "get"), ("code", "200")])
        );
        assert_eq!(samples[0].value, 1027.0);
        assert_eq!(samples[1].labels["code"], "500");
        assert_eq!(samples[2].name, "fieldbook_verify_missing_objects");
        assert!(samples[2].labels.is_empty());
    }

    #[test]
    fn reads_escapes_special_values_and_blanks() {
        let page = "msg{text=\"say \\\"hi\\\", a\\\\b\\nnext\", empty=\"\"} NaN\n\
                    up_inf +Inf\n\
                    down_inf\t-Inf\n\
                    sci { a = \"}{,\" } 1.5e3 -12\n\
                    neg -0.25\n\
                    exemplar_total 4 # {trace_id=\"abc\"} 1.0\n";
        let samples = parse(page).unwrap();
        assert_eq!(samples[0].labels["text"], "say \"hi\", a\\b\nnext");
        assert_eq!(samples[0].labels["empty"], "");
        assert!(samples[0].value.is_nan());
        assert_eq!(samples[1].value, f64::INFINITY);
        assert_eq!(samples[2].value, f64::NEG_INFINITY);
        assert_eq!(samples[3].labels["a"], "}{,");
        assert_eq!(samples[3].value, 1500.0);
        assert_eq!(samples[4].value, -0.25);
        assert_eq!(samples[5].value, 4.0);
    }

    #[test]
    fn bad_input_names_the_line() {
        let cases = [
            ("ok 1\n{a=\"b\"} 1", 2, "must start with a metric name"),
            ("ok 1\nno_value", 2, "has no value"),
            ("x{a=\"b} 1", 1, "quote is not closed"),
            ("x{a=b} 1", 1, "must be quoted"),
            ("x{a=\"1\",a=\"2\"} 1", 1, "appears twice"),
            ("x{a=\"1\" b=\"2\"} 1", 1, "expected ',' or '}'"),
            ("x{a=\"1\"", 1, "not closed"),
            ("x{a} 1", 1, "has no '='"),
            ("x{a=\"\\t\"} 1", 1, "unknown escape"),
            ("\n\nx one", 3, "\"one\" is not a number"),
            ("x inf", 1, "is not a number"),
            ("x 1 12.5", 1, "is not a timestamp"),
            ("x 1 2 3", 1, "unexpected \"3\""),
            ("x{é=\"1\"} 1", 1, "expected a label name"),
        ];
        for (page, line, fragment) in cases {
            let err = parse(page).expect_err(page);
            assert_eq!(err.line, line, "{page:?}: {err}");
            assert!(err.to_string().contains(fragment), "{page:?}: {err}");
        }
    }

    #[test]
    fn long_lines_are_cut_in_errors() {
        for line in [
            format!("x {}", "9".repeat(500) + "z"),
            format!("{} ", "n".repeat(500)),
            format!("x{{{}=1}} 1", "l".repeat(500)),
        ] {
            let err = parse(&line).unwrap_err();
            assert!(err.to_string().chars().count() < 300, "{err}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap fuzz: every prefix of a tricky page parses or fails cleanly.
        let page = "a{b=\"c\\\"d\",e=\"ü\\\\\"} -Inf 17\n# x\nz{} 1 # {t=\"1\"} 2\n";
        for end in 0..=page.len() {
            if page.is_char_boundary(end) {
                let _ = parse(&page[..end]);
            }
        }
    }
}
