//! The JSONPath subset printer columns use: `.a.b`, `[0]`, `[*]`, `['key']` and
//! `[?(@.type=="Ready")]` filters.

use serde_json::Value;

#[derive(Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter(Vec<String>, String),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let p = p.strip_prefix('$').unwrap_or(p);
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut steps = vec![];
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                i = start;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let f: String = chars[start..i].iter().collect();
                if !f.is_empty() {
                    steps.push(Step::Field(f));
                }
            }
            '[' => {
                let close = find_close(&chars, i)?;
                let inner: String = chars[i + 1..close].iter().collect();
                i = close + 1;
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Ok(n) = inner.parse::<usize>() {
                    steps.push(Step::Index(n));
                } else if let Some(f) = inner.strip_prefix("?(").and_then(|x| x.strip_suffix(')')) {
                    let (lhs, rhs) = f.split_once("==")?;
                    let lhs = lhs.trim().strip_prefix("@.")?;
                    let rhs = rhs.trim().trim_matches('"').trim_matches('\'');
                    steps.push(Step::Filter(
                        lhs.split('.').map(String::from).collect(),
                        rhs.to_string(),
                    ));
                } else {
                    steps.push(Step::Field(
                        inner.trim_matches('\'').trim_matches('"').to_string(),
                    ));
                }
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn find_close(chars: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, c) in chars.iter().enumerate().skip(open) {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// All values the path selects, in document order.
pub fn select<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return vec![];
    };
    let mut cur = vec![obj];
    for step in &steps {
        let mut next = vec![];
        for v in cur {
            match step {
                Step::Field(f) => next.extend(v.get(f)),
                Step::Index(n) => next.extend(v.get(*n)),
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(lhs, rhs) => {
                    if let Value::Array(a) = v {
                        for item in a {
                            let mut x = Some(item);
                            for seg in lhs {
                                x = x.and_then(|y| y.get(seg));
                            }
                            if x.is_some_and(|x| as_text(x) == *rhs) {
                                next.push(item);
                            }
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let o = json!({"status": {"conditions": [{"type": "Stalled", "status": "False"}, {"type": "Ready", "status": "True"}]},
                       "spec": {"targets": [{"kind": "db"}, {"kind": "images"}]}});
        assert_eq!(
            select(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert_eq!(select(&o, ".spec.targets[*].kind").len(), 2);
        assert_eq!(select(&o, ".spec.targets[1].kind"), vec![&json!("images")]);
        assert!(select(&o, ".spec.missing").is_empty());
    }
}
