//! The `prometheus` source: a PromQL instant query (`GET <url>/api/v1/query?query=…`) against a
//! Prometheus server, and the reading of its JSON answer. The reading is pure and tested here;
//! the request goes through the shared [`Prober`].
//!
//! A scalar or a vector with exactly one sample is the value; an empty vector is "no data"
//! (the state stays); anything else — several samples, a matrix or string result, an answer
//! with `status: error` — is an error that names `spec.source.prometheus.query` and carries
//! Prometheus's own error text.

use std::time::Duration;

use serde::Deserialize;
use tend_crds::alert_rule::PrometheusQuery;

use super::probe::{Prober, redact};
use crate::error::StepError;

/// The answer of a query is small (one sample); this bounds a misbehaving server.
const ANSWER_LIMIT: usize = 4 * 1024 * 1024;
/// The CRD has no timeout for this source; a query that takes longer is an error.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
const FIELD: &str = "spec.source.prometheus.query";

/// What a query answered.
#[derive(Debug, PartialEq)]
pub enum Answer {
    Value(f64),
    /// An empty vector: nothing matched (yet).
    Empty,
}

/// Runs the query and reads the answer.
pub async fn query(prober: &Prober, spec: &PrometheusQuery) -> Result<Answer, StepError> {
    let url = query_url(&spec.url, &spec.query);
    let shown = redact(&spec.url);
    let (status, body) = prober
        .get(&url, QUERY_TIMEOUT, ANSWER_LIMIT)
        .await
        .map_err(|e| StepError::Probe(format!("spec.source.prometheus.url: {e}")))?;
    parse_answer(status, &body).map_err(|e| StepError::Probe(format!("{shown}: {e}")))
}

/// `<base>/api/v1/query?query=<encoded>`; a query string already on the base URL is kept
/// (some proxies need one).
pub fn query_url(base: &str, query: &str) -> String {
    let (base, params) = match base.split_once('?') {
        Some((base, params)) => (base, format!("{params}&")),
        None => (base, String::new()),
    };
    format!(
        "{}/api/v1/query?{params}query={}",
        base.trim_end_matches('/'),
        encode(query)
    )
}

/// Percent-encoding of a query parameter value (RFC 3986 unreserved characters stay).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    result_type: String,
    result: serde_json::Value,
}

/// Reads Prometheus's answer (`status` is the HTTP status, for answers that are not JSON).
pub fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, String> {
    let response: Response = match serde_json::from_slice(body) {
        Ok(response) => response,
        Err(e) => {
            let start: String = String::from_utf8_lossy(body).chars().take(120).collect();
            return Err(format!(
                "answered {status} with something that is not a Prometheus API answer ({e}): {start:?}"
            ));
        }
    };
    if response.status != "success" {
        return Err(format!(
            "Prometheus refused {FIELD} ({}): {}",
            response.error_type.as_deref().unwrap_or("error"),
            response.error.as_deref().unwrap_or("no error text")
        ));
    }
    let Some(data) = response.data else {
        return Err(format!("answered {status} without data"));
    };
    match data.result_type.as_str() {
        "scalar" => sample_value(&data.result).map(Answer::Value),
        "vector" => {
            let samples = data.result.as_array().ok_or("the vector is not a list")?;
            match samples.as_slice() {
                [] => Ok(Answer::Empty),
                [one] => sample_value(one.get("value").unwrap_or(&serde_json::Value::Null))
                    .map(Answer::Value),
                several => Err(format!(
                    "{FIELD} returned a vector of {} samples ({}); it must return a scalar or one sample — aggregate it, e.g. with sum(...) or max(...)",
                    several.len(),
                    several
                        .iter()
                        .take(3)
                        .map(|s| s.get("metric").map(|m| m.to_string()).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        other => Err(format!(
            "{FIELD} returned a {other}; it must return a scalar or a one-sample vector{}",
            if other == "matrix" {
                " (a range selector like [5m] needs a function such as rate() around it)"
            } else {
                ""
            }
        )),
    }
}

/// `[<unix time>, "<value>"]` → the value.
fn sample_value(pair: &serde_json::Value) -> Result<f64, String> {
    let text = pair
        .as_array()
        .and_then(|p| p.get(1))
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("a sample is not [time, \"value\"]: {pair}"))?;
    parse_number(text).ok_or_else(|| format!("a sample's value {text:?} is not a number"))
}

fn parse_number(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Answer, String> {
        parse_answer(200, body.as_bytes())
    }

    #[test]
    fn a_scalar_is_the_value() {
        assert_eq!(
            parse(
                r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"0.25"]}}"#
            ),
            Ok(Answer::Value(0.25))
        );
    }

    #[test]
    fn a_one_sample_vector_is_the_value() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"job":"node"},"value":[1700000000,"1"]}]}}"#;
        assert_eq!(parse(body), Ok(Answer::Value(1.0)));
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000,"NaN"]}]}}"#;
        assert!(matches!(parse(body), Ok(Answer::Value(v)) if v.is_nan()));
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{},"value":[1700000000,"+Inf"]}]},"warnings":["x"]}"#;
        assert_eq!(parse(body), Ok(Answer::Value(f64::INFINITY)));
    }

    #[test]
    fn an_empty_vector_is_no_data() {
        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            Ok(Answer::Empty)
        );
    }

    #[test]
    fn several_samples_are_an_error_naming_the_field() {
        let body = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"cpu":"0"},"value":[1,"1"]},{"metric":{"cpu":"1"},"value":[1,"2"]}]}}"#;
        let error = parse(body).unwrap_err();
        assert!(
            error.contains("spec.source.prometheus.query returned a vector of 2 samples")
                && error.contains(r#"{"cpu":"0"}"#),
            "{error}"
        );
    }

    #[test]
    fn a_matrix_or_string_is_an_error_naming_the_field() {
        let error = parse(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#)
            .unwrap_err();
        assert!(
            error.starts_with("spec.source.prometheus.query returned a matrix")
                && error.contains("rate()"),
            "{error}"
        );
        let error =
            parse(r#"{"status":"success","data":{"resultType":"string","result":[1,"a"]}}"#)
                .unwrap_err();
        assert!(error.contains("returned a string"), "{error}");
    }

    #[test]
    fn prometheus_errors_carry_its_text() {
        let body = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:6: parse error: unexpected \")\""}"#;
        let error = parse_answer(400, body.as_bytes()).unwrap_err();
        assert_eq!(
            error,
            r#"Prometheus refused spec.source.prometheus.query (bad_data): invalid parameter "query": 1:6: parse error: unexpected ")""#
        );
    }

    #[test]
    fn an_answer_that_is_not_json_is_an_error() {
        let error = parse_answer(502, b"<html>Bad Gateway</html>").unwrap_err();
        assert!(
            error.starts_with("answered 502 with something that is not a Prometheus API answer"),
            "{error}"
        );
        let error =
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"x"]}}"#)
                .unwrap_err();
        assert!(error.contains(r#""x" is not a number"#), "{error}");
    }

    #[test]
    fn the_query_is_encoded() {
        assert_eq!(
            query_url("http://p:9090/", r#"up{job="node"} == 1"#),
            "http://p:9090/api/v1/query?query=up%7Bjob%3D%22node%22%7D%20%3D%3D%201"
        );
        assert_eq!(
            query_url("http://p/prom?tenant=a", "x+y"),
            "http://p/prom/api/v1/query?tenant=a&query=x%2By"
        );
    }
}
