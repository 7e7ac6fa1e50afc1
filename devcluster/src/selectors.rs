//! Label selectors (`a=b,c!=d,e in (x,y),f notin (z),g,!h`) and field selectors
//! (`metadata.name=x,involvedObject.uid!=y` — any dotted path into the object).

use crate::status::{ApiError, ApiResult};
use crate::validate;
use serde_json::Value;

#[derive(Debug, Clone)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

#[derive(Debug, Clone, Default)]
pub struct LabelSelector(Vec<LabelReq>);

/// A token of the label selector language, as kube-apiserver's lexer splits it: identifiers run
/// until whitespace or one of `=!(),<>`; `in` and `notin` are keywords only where an operator
/// is expected.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    End,
    Ident(String),
    In,
    NotIn,
    Open,
    Close,
    Comma,
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    /// A run of symbols that is no operator.
    Error(String),
}

impl Tok {
    fn literal(&self) -> String {
        match self {
            Tok::End => String::new(),
            Tok::Ident(s) | Tok::Error(s) => s.clone(),
            Tok::In => "in".into(),
            Tok::NotIn => "notin".into(),
            Tok::Open => "(".into(),
            Tok::Close => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Not => "!".into(),
            Tok::Eq => "=".into(),
            Tok::DoubleEq => "==".into(),
            Tok::NotEq => "!=".into(),
            Tok::Gt => ">".into(),
            Tok::Lt => "<".into(),
        }
    }

    /// Where values are expected, `in`/`notin` are plain identifiers.
    fn into_value(self) -> Tok {
        match self {
            Tok::In | Tok::NotIn => Tok::Ident(self.literal()),
            t => t,
        }
    }
}

fn is_symbol(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn symbol(s: &str) -> Option<Tok> {
    Some(match s {
        "(" => Tok::Open,
        ")" => Tok::Close,
        "," => Tok::Comma,
        "!" => Tok::Not,
        "=" => Tok::Eq,
        "==" => Tok::DoubleEq,
        "!=" => Tok::NotEq,
        ">" => Tok::Gt,
        "<" => Tok::Lt,
        _ => return None,
    })
}

fn lex(s: &str) -> Vec<Tok> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = vec![];
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if i >= b.len() {
            out.push(Tok::End);
            return out;
        }
        if is_symbol(b[i]) {
            // The longest run of symbols that is still an operator.
            let mut best: Option<(Tok, usize)> = None;
            let mut j = i;
            while j < b.len() && is_symbol(b[j]) {
                j += 1;
                match symbol(&s[i..j]) {
                    Some(t) => best = Some((t, j)),
                    None if best.is_some() => break,
                    None => {}
                }
            }
            match best {
                Some((t, end)) => {
                    out.push(t);
                    i = end;
                }
                None => {
                    out.push(Tok::Error(format!(
                        "error expected: keyword found '{}'",
                        &s[i..j]
                    )));
                    i = j;
                }
            }
            continue;
        }
        let start = i;
        while i < b.len() && !is_symbol(b[i]) && !matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        let word = &s[start..i];
        out.push(match word {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            w => Tok::Ident(w.to_string()),
        });
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Tok {
        self.toks[self.pos.min(self.toks.len() - 1)].clone()
    }

    fn next(&mut self) -> Tok {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn selector(&mut self) -> Result<Vec<LabelReq>, String> {
        let mut reqs = vec![];
        loop {
            match self.peek().into_value() {
                Tok::Ident(_) | Tok::Not => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match self.next().into_value() {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let t = self.peek().into_value();
                            if !matches!(t, Tok::Ident(_) | Tok::Not) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ));
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<LabelReq, String> {
        let mut t = self.next().into_value();
        let negated = t == Tok::Not;
        if negated {
            t = self.next().into_value();
        }
        let Tok::Ident(key) = t else {
            return Err(format!("found '{}', expected: identifier", t.literal()));
        };
        let key_errors = validate::qualified_name(&key);
        if !key_errors.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {}: {}",
                quoted(&key),
                key_errors.join("; ")
            ));
        }
        if negated || matches!(self.peek(), Tok::End | Tok::Comma) {
            return Ok(if negated {
                LabelReq::NotExists(key)
            } else {
                LabelReq::Exists(key)
            });
        }
        let op = self.next();
        let values = match op {
            Tok::In | Tok::NotIn => self.set_values()?,
            Tok::Eq | Tok::DoubleEq | Tok::NotEq | Tok::Gt | Tok::Lt => vec![self.exact_value()?],
            t => {
                return Err(format!(
                    "found '{}', expected: '=', '!=', '==', 'in', notin'",
                    t.literal()
                ));
            }
        };
        let mut errs = vec![];
        let mut ints = vec![];
        for (i, v) in values.iter().enumerate() {
            if matches!(op, Tok::Gt | Tok::Lt) {
                match v.parse::<i64>() {
                    Ok(n) => ints.push(n),
                    Err(_) => errs.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        quoted(v)
                    )),
                }
            }
            let v_errors = validate::label_value(v);
            if !v_errors.is_empty() {
                errs.push(format!(
                    "values[{i}][{key}]: Invalid value: {}: {}",
                    quoted(v),
                    v_errors.join("; ")
                ));
            }
        }
        match errs.len() {
            0 => {}
            1 => return Err(errs.remove(0)),
            _ => return Err(format!("[{}]", errs.join(", "))),
        }
        let first = values.first().cloned().unwrap_or_default();
        Ok(match op {
            Tok::In => LabelReq::In(key, values),
            Tok::NotIn => LabelReq::NotIn(key, values),
            Tok::NotEq => LabelReq::NotEq(key, first),
            Tok::Gt => LabelReq::Gt(key, ints[0]),
            Tok::Lt => LabelReq::Lt(key, ints[0]),
            _ => LabelReq::Eq(key, first),
        })
    }

    fn exact_value(&mut self) -> Result<String, String> {
        match self.peek().into_value() {
            Tok::End | Tok::Comma => Ok(String::new()),
            _ => match self.next().into_value() {
                Tok::Ident(v) => Ok(v),
                t => Err(format!("found '{}', expected: identifier", t.literal())),
            },
        }
    }

    /// `( v1, v2, … )`; empty members are the empty value. Sorted and de-duplicated.
    fn set_values(&mut self) -> Result<Vec<String>, String> {
        let t = self.next().into_value();
        if t != Tok::Open {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        let mut vals = std::collections::BTreeSet::new();
        let first = self.peek().into_value();
        match first {
            Tok::Close => {
                self.next();
                vals.insert(String::new());
            }
            Tok::Ident(_) | Tok::Comma => {
                loop {
                    match self.next().into_value() {
                        Tok::Ident(v) => {
                            vals.insert(v);
                            match self.peek().into_value() {
                                Tok::Comma => continue,
                                Tok::Close => break,
                                t => {
                                    return Err(format!(
                                        "found '{}', expected: ',' or ')'",
                                        t.literal()
                                    ));
                                }
                            }
                        }
                        Tok::Comma => {
                            if vals.is_empty() {
                                vals.insert(String::new());
                            }
                            match self.peek().into_value() {
                                Tok::Close => {
                                    vals.insert(String::new());
                                    break;
                                }
                                Tok::Comma => {
                                    self.next();
                                    vals.insert(String::new());
                                }
                                _ => {}
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',', or identifier",
                                t.literal()
                            ));
                        }
                    }
                }
                let t = self.next();
                if t != Tok::Close {
                    return Err(format!("found '{}', expected: ')'", first.literal()));
                }
            }
            t => {
                return Err(format!(
                    "found '{}', expected: ',', ')' or identifier",
                    t.literal()
                ));
            }
        }
        Ok(vals.into_iter().collect())
    }
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl LabelSelector {
    /// Parses a selector as kube-apiserver does; a bad one is the 400 it answers.
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut p = Parser {
            toks: lex(s),
            pos: 0,
        };
        p.selector()
            .map(LabelSelector)
            .map_err(ApiError::bad_request)
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let int = |k: &str| get(k).and_then(|v| v.parse::<i64>().ok());
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
            LabelReq::Gt(k, n) => int(k).is_some_and(|x| x > *n),
            LabelReq::Lt(k, n) => int(k).is_some_and(|x| x < *n),
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(s: &str) -> ApiResult<Self> {
        let mut reqs = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, negate, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid field selector: '{part}'"
                )));
            };
            reqs.push((path.trim().to_string(), negate, value.trim().to_string()));
        }
        Ok(FieldSelector(reqs))
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, negate, want)| {
            let mut cur = Some(obj);
            for seg in path.split('.') {
                cur = cur.and_then(|c| c.get(seg));
            }
            let have = match cur {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (have == *want) != *negate
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let o = json!({"metadata": {"labels": {"app": "fieldbook", "tier": "web"}}});
        for (sel, want) in [
            ("app=fieldbook", true),
            ("app==fieldbook,tier=web", true),
            ("app!=fieldbook", false),
            ("tier in (web, db)", true),
            ("tier notin (web)", false),
            ("app", true),
            ("!missing", true),
            ("missing", false),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn label_selector_edge_forms() {
        let o = json!({"metadata": {"labels": {"app": "in", "n": "5", "e": ""}}});
        for (sel, want) in [
            ("app in (in,notin)", true),
            ("app=in", true),
            ("n>4,n<6", true),
            ("n>5", false),
            ("e=", true),
            ("e in ()", true),
            ("x notin (,a)", true),
            ("example.com/x!=y", true),
            ("  app  ,  !zz ", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&o),
                want,
                "{sel}"
            );
        }
    }

    #[test]
    fn bad_label_selectors_are_400_with_the_apiserver_message() {
        for (sel, msg) in [
            (
                "a b",
                "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
            ("a,", "found '', expected: identifier after ','"),
            (
                "=a",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "a in b",
                "unable to parse requirement: found 'b' expected: '('",
            ),
            (
                "a in (b",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "-a",
                "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
            (
                "a=-b",
                "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
            (
                "a>b",
                "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            (
                "a=!b",
                "unable to parse requirement: found '!', expected: identifier",
            ),
        ] {
            let e = LabelSelector::parse(sel).unwrap_err();
            assert_eq!((e.code, e.message.as_str()), (400, msg), "{sel}");
        }
    }

    #[test]
    fn field_selector_paths() {
        let o =
            json!({"metadata": {"name": "a", "namespace": "n"}, "involvedObject": {"uid": "u1"}});
        assert!(
            FieldSelector::parse("metadata.name=a,involvedObject.uid=u1")
                .unwrap()
                .matches(&o)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=n")
                .unwrap()
                .matches(&o)
        );
        assert!(
            FieldSelector::parse("involvedObject.kind=")
                .unwrap()
                .matches(&o)
        );
    }
}
