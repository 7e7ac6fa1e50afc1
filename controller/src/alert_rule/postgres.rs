//! The `postgres` source: connect, run the query in a READ ONLY transaction with a statement
//! timeout, disconnect — the round trip an application makes, so `latencySeconds` is the
//! seed's "DB response time".
//!
//! The connection comes from the Secret `spec.source.postgres.connectionSecretRef` (keys
//! `host`, `port`, `dbname`, `user`, `password`; optional `sslmode`, where only `disable` and
//! `prefer` are accepted: this build speaks plain TCP — `prefer` falls back to it — and refuses
//! `require` and stronger rather than pretend). The password goes only into the client's
//! configuration: never into a message, a log line or status.
//!
//! The query goes over the extended protocol, which runs exactly one statement, so a query
//! cannot end the read-only transaction (`COMMIT; DELETE …` is refused by the server).

use std::time::{Duration, Instant};

use tend_crds::alert_rule::{PostgresMeasure, PostgresProbe};
use tokio_postgres::types::{FromSql, Type};

use crate::error::StepError;

/// What a probe produced, before `measure` picks the value.
enum Outcome {
    Answered {
        elapsed: Duration,
        value: Result<f64, String>,
    },
    TimedOut,
    Failed(String),
}

/// The plain settings the probe needs (from the Secret).
pub struct Connection {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: String,
}

/// Reads the connection Secret through the shared cache.
pub async fn connection(
    ctx: &crate::context::Context,
    namespace: &str,
    probe: &PostgresProbe,
) -> Result<Connection, StepError> {
    const FIELD: &str = "spec.source.postgres.connectionSecretRef";
    let name = &probe.connection_secret_ref.name;
    let mut secrets = crate::secrets::Secrets::cached(&ctx.secrets, namespace);
    let host = secrets.required(FIELD, name, "host").await?;
    let port = secrets.required(FIELD, name, "port").await?;
    let port = port.trim().parse::<u16>().map_err(|_| {
        StepError::Setup(format!(
            "{FIELD}: key \"port\" of Secret {name:?} is not a port number"
        ))
    })?;
    if let Some(mode) = secrets.value(FIELD, name, "sslmode").await? {
        check_sslmode(name, &mode)?;
    }
    Ok(Connection {
        host: host.trim().to_owned(),
        port,
        dbname: secrets.required(FIELD, name, "dbname").await?,
        user: secrets.required(FIELD, name, "user").await?,
        password: secrets.required(FIELD, name, "password").await?,
    })
}

/// `sslmode` values this build honours: all of them connect over plain TCP.
fn check_sslmode(secret: &str, mode: &str) -> Result<(), StepError> {
    let mode = mode.trim();
    if matches!(mode, "" | "disable" | "allow" | "prefer") {
        return Ok(());
    }
    Err(StepError::Setup(format!(
        "spec.source.postgres.connectionSecretRef: sslmode {mode:?} of Secret {secret:?} is not supported: this build connects without TLS (disable, allow or prefer)"
    )))
}

/// Probes the database and returns the measured value. Not getting an answer is `up` 0 and,
/// for `latencySeconds`, a timeout counts as the timeout; any other failure of a
/// `latencySeconds` or `value` probe is an error (there is no measurement).
pub async fn probe(connection: &Connection, probe: &PostgresProbe) -> Result<f64, StepError> {
    let timeout = probe
        .timeout
        .parse()
        .map_err(|e| StepError::Setup(format!("spec.source.postgres.timeout: {e}")))?;
    let target = format!(
        "postgres://{}@{}:{}/{}",
        connection.user, connection.host, connection.port, connection.dbname
    );
    let outcome = round_trip(connection, &probe.query, timeout).await;
    measured(probe.measure, outcome, timeout, &target)
}

/// The value `measure` takes from a round trip's outcome.
fn measured(
    measure: PostgresMeasure,
    outcome: Outcome,
    timeout: Duration,
    target: &str,
) -> Result<f64, StepError> {
    match (measure, outcome) {
        (PostgresMeasure::Up, Outcome::Answered { value, .. }) => {
            // The database answered; a query that failed in SQL still counts as down, since
            // the application's queries would not be served either. The error is not lost:
            // it is logged.
            if let Err(error) = &value {
                tracing::info!(%target, %error, "postgres probe: the query failed");
            }
            Ok(if value.is_ok() { 1.0 } else { 0.0 })
        }
        (PostgresMeasure::Up, Outcome::TimedOut | Outcome::Failed(_)) => Ok(0.0),
        (PostgresMeasure::LatencySeconds, Outcome::Answered { elapsed, value }) => value
            .map(|_| elapsed.as_secs_f64())
            .map_err(|e| StepError::Probe(format!("{target}: spec.source.postgres.query: {e}"))),
        (PostgresMeasure::LatencySeconds, Outcome::TimedOut) => Ok(timeout.as_secs_f64()),
        (PostgresMeasure::Value, Outcome::Answered { value, .. }) => value
            .map_err(|e| StepError::Probe(format!("{target}: spec.source.postgres.query: {e}"))),
        (PostgresMeasure::Unknown, _) => Err(StepError::Setup(
            "spec.source.postgres.measure is unknown to this version".into(),
        )),
        (_, Outcome::TimedOut) => Err(StepError::Probe(format!(
            "{target}: no answer within {timeout:?} (spec.source.postgres.timeout)"
        ))),
        (_, Outcome::Failed(message)) => Err(StepError::Probe(format!("{target}: {message}"))),
    }
}

/// Connect, `BEGIN READ ONLY`, `SET LOCAL statement_timeout`, the query, `ROLLBACK`; all within
/// `timeout`. The value is the first cell of the only row, when it is a number.
async fn round_trip(connection: &Connection, query: &str, timeout: Duration) -> Outcome {
    let started = Instant::now();
    let mut config = tokio_postgres::Config::new();
    config
        .host(&connection.host)
        .port(connection.port)
        .dbname(&connection.dbname)
        .user(&connection.user)
        .password(&connection.password)
        .application_name("tend-alert")
        .connect_timeout(timeout)
        .ssl_mode(tokio_postgres::config::SslMode::Disable);
    let work = async {
        let (mut client, driver) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Step::Connect(describe(&e)))?;
        // The connection's I/O runs beside the queries; stopped however this future ends (a
        // timeout drops it mid-query).
        let _driver = AbortOnDrop(tokio::spawn(driver));
        let result = async {
            let tx = client
                .build_transaction()
                .read_only(true)
                .start()
                .await
                .map_err(|e| Step::Connect(describe(&e)))?;
            let millis = timeout.as_millis().max(1);
            tx.batch_execute(&format!("SET LOCAL statement_timeout = {millis}"))
                .await
                .map_err(|e| Step::Connect(describe(&e)))?;
            let rows = tx.query(query, &[]).await;
            let _ = tx.rollback().await;
            Ok::<_, Step>(
                rows.map_err(|e| describe(&e))
                    .and_then(|rows| single_number(&rows)),
            )
        }
        .await;
        drop(client);
        result
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Outcome::TimedOut,
        Ok(Err(Step::Connect(message))) => Outcome::Failed(message),
        Ok(Ok(value)) => Outcome::Answered {
            elapsed: started.elapsed(),
            value,
        },
    }
}

enum Step {
    Connect(String),
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A tokio-postgres error with the server's message when there is one (never the password:
/// neither the client nor the server puts it in an error).
fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// One row with one numeric cell → the number.
fn single_number(rows: &[tokio_postgres::Row]) -> Result<f64, String> {
    let [row] = rows else {
        return Err(format!("returned {} rows; one is needed", rows.len()));
    };
    if row.len() != 1 {
        return Err(format!("returned {} columns; one is needed", row.len()));
    }
    let column = &row.columns()[0];
    let ty = column.type_().clone();
    let value: Option<Number> = row
        .try_get(0)
        .map_err(|_| format!("column {:?} is of type {ty}, not a number", column.name()))?;
    value
        .map(|n| n.0)
        .ok_or_else(|| format!("column {:?} is NULL", column.name()))
}

/// A number of any SQL numeric type (and bool as 0/1).
struct Number(f64);

impl<'a> FromSql<'a> for Number {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let value = match *ty {
            Type::INT2 => f64::from(i16::from_sql(ty, raw)?),
            Type::INT4 => f64::from(i32::from_sql(ty, raw)?),
            Type::INT8 => i64::from_sql(ty, raw)? as f64,
            Type::OID => f64::from(u32::from_sql(ty, raw)?),
            Type::FLOAT4 => f64::from(f32::from_sql(ty, raw)?),
            Type::FLOAT8 => f64::from_sql(ty, raw)?,
            Type::BOOL => f64::from(u8::from(bool::from_sql(ty, raw)?)),
            Type::NUMERIC => numeric(raw)?,
            _ => return Err("not a number".into()),
        };
        Ok(Number(value))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::OID
                | Type::FLOAT4
                | Type::FLOAT8
                | Type::BOOL
                | Type::NUMERIC
        )
    }
}

/// PostgreSQL's binary NUMERIC: ndigits, weight, sign, dscale (i16 each), then base-10000
/// digits; the value is Σ digit × 10000^(weight − i).
fn numeric(raw: &[u8]) -> Result<f64, Box<dyn std::error::Error + Sync + Send>> {
    let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    match sign {
        0xC000 => return Ok(f64::NAN),
        0xD000 => return Ok(f64::INFINITY),
        0xF000 => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let mut value = 0.0_f64;
    for i in 0..ndigits {
        let digit = f64::from(word(4 + i)?);
        value += digit * 10_000_f64.powi(weight - i as i32);
    }
    Ok(if sign == 0x4000 { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[u16]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn answered(value: Result<f64, String>) -> Outcome {
        Outcome::Answered {
            elapsed: Duration::from_millis(250),
            value,
        }
    }

    fn measure(measure: PostgresMeasure, outcome: Outcome) -> Result<f64, String> {
        measured(
            measure,
            outcome,
            Duration::from_secs(2),
            "postgres://u@h:5432/db",
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn each_measure_reads_the_outcome() {
        use PostgresMeasure::*;
        assert_eq!(measure(LatencySeconds, answered(Ok(1.0))), Ok(0.25));
        assert_eq!(measure(Up, answered(Ok(1.0))), Ok(1.0));
        assert_eq!(measure(Value, answered(Ok(42.0))), Ok(42.0));
        // A hung database: down, and as slow as the timeout.
        assert_eq!(measure(Up, Outcome::TimedOut), Ok(0.0));
        assert_eq!(measure(LatencySeconds, Outcome::TimedOut), Ok(2.0));
        assert_eq!(
            measure(Value, Outcome::TimedOut),
            Err(
                "postgres://u@h:5432/db: no answer within 2s (spec.source.postgres.timeout)".into()
            )
        );
        // Refused: down; no latency or value was measured.
        let refused = || Outcome::Failed("connection refused".into());
        assert_eq!(measure(Up, refused()), Ok(0.0));
        assert_eq!(
            measure(LatencySeconds, refused()),
            Err("postgres://u@h:5432/db: connection refused".into())
        );
        // The query failed: down, and an error naming the field for the others.
        let failed = || answered(Err("returned 2 rows; one is needed".into()));
        assert_eq!(measure(Up, failed()), Ok(0.0));
        for m in [LatencySeconds, Value] {
            assert_eq!(
                measure(m, failed()),
                Err("postgres://u@h:5432/db: spec.source.postgres.query: returned 2 rows; one is needed".into())
            );
        }
    }

    #[test]
    fn tls_modes_are_refused_naming_the_field() {
        for ok in ["", "disable", "allow", " prefer\n"] {
            assert!(check_sslmode("db", ok).is_ok(), "{ok:?}");
        }
        let error = check_sslmode("db", "verify-full").unwrap_err().to_string();
        assert_eq!(
            error,
            "spec.source.postgres.connectionSecretRef: sslmode \"verify-full\" of Secret \"db\" is not supported: this build connects without TLS (disable, allow or prefer)"
        );
    }

    #[test]
    fn numeric_binary_is_decoded() {
        // 12345.678 = [1][2345].[6780]: ndigits 3, weight 1, positive, dscale 3.
        let v = numeric(&words(&[3, 1, 0, 3, 1, 2345, 6780])).unwrap();
        assert!((v - 12345.678).abs() < 1e-9, "{v}");
        // -0.05 = [500] at weight -1.
        let v = numeric(&words(&[1, (-1i16) as u16, 0x4000, 2, 500])).unwrap();
        assert!((v + 0.05).abs() < 1e-12, "{v}");
        assert_eq!(numeric(&words(&[0, 0, 0, 0])).unwrap(), 0.0);
        assert!(numeric(&words(&[0, 0, 0xC000, 0])).unwrap().is_nan());
        assert!(numeric(&words(&[2, 0, 0, 0, 1])).is_err());
    }
}
