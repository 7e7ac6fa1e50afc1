//! The `fieldbook` binary: parse configuration, run one subcommand, map
//! errors to exit codes.
#![forbid(unsafe_code)]

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;
use fieldbook::auth::{self, Role};
use fieldbook::config::{AppConfig, Cli, Command, S3Config, ServeArgs, SmtpConfig, SmtpTls};
use fieldbook::{AppState, Db, app, logs, selfcheck};

fn read_secret_file(path: &std::path::Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {what} file {}: {e}", path.display()))?;
    let trimmed = text.trim().to_string();
    if trimmed.is_empty() {
        anyhow::bail!("{what} file {} is empty", path.display());
    }
    Ok(trimmed)
}

/// The SMTP settings, checked before start-up: a sender that does not parse
/// or half a set of credentials fails here rather than at the first e-mail.
fn smtp_config(args: &ServeArgs) -> anyhow::Result<Option<SmtpConfig>> {
    let Some(host) = args.smtp_host.clone() else {
        return Ok(None);
    };
    fieldbook::mail::check_address(&args.smtp_from)
        .map_err(|e| anyhow::anyhow!("FIELDBOOK_SMTP_FROM: {e}"))?;
    let password = match (&args.smtp_password_file, &args.smtp_password) {
        (Some(path), _) => Some(read_secret_file(path, "SMTP password")?),
        (None, Some(password)) if !password.is_empty() => Some(password.clone()),
        _ => None,
    };
    let credentials = match (args.smtp_username.clone(), password) {
        (Some(user), Some(password)) => Some((user, password)),
        (None, None) => None,
        (Some(_), None) => anyhow::bail!(
            "FIELDBOOK_SMTP_USERNAME is set but no password: set FIELDBOOK_SMTP_PASSWORD_FILE or FIELDBOOK_SMTP_PASSWORD"
        ),
        (None, Some(_)) => anyhow::bail!("an SMTP password is set but no FIELDBOOK_SMTP_USERNAME"),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if credentials.is_some() && args.smtp_tls == SmtpTls::None && !loopback {
        anyhow::bail!(
            "SMTP credentials would cross the network in clear text: set FIELDBOOK_SMTP_TLS to starttls or tls"
        );
    }
    Ok(Some(SmtpConfig {
        host,
        port: args.smtp_port.unwrap_or(args.smtp_tls.default_port()),
        from: args.smtp_from.clone(),
        tls: args.smtp_tls,
        credentials,
    }))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Checked before anything is touched, so a typo fails fast.
    let verify_interval =
        selfcheck::parse_interval(&args.verify_interval).map_err(anyhow::Error::msg)?;
    let smtp = smtp_config(&args)?;
    let db = Db::connect(&args.db.database_url).await?;
    db.migrate().await?;
    let mut config = AppConfig::new(args.photo_dir.clone());
    if let Some(path) = &args.ops_token_file {
        let token = read_secret_file(path, "ops token")?;
        if token.len() < 16 {
            anyhow::bail!(
                "the ops token in {} must be at least 16 characters",
                path.display()
            );
        }
        config = config.with_ops_token(&token);
    }
    config.smtp = smtp;
    config.secure_cookies = args.secure_cookies;
    config.photo_s3 = args.photo_s3_bucket.clone().map(|bucket| S3Config {
        bucket,
        prefix: args.photo_s3_prefix.clone(),
        region: args.photo_s3_region.clone(),
        endpoint: args.photo_s3_endpoint.clone(),
        path_style: args.photo_s3_path_style,
        access_key_id: args.aws_access_key_id.clone(),
        secret_access_key: args.aws_secret_access_key.clone(),
    });
    config.log_stdout = !args.quiet;
    config.verify_interval = verify_interval;
    if let (Some(email), Some(file)) = (
        &args.bootstrap_admin_email,
        &args.bootstrap_admin_password_file,
    ) {
        let admins = sqlx::query("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
            .fetch_one(&db.pool)
            .await?;
        if sqlx::Row::get::<i64, _>(&admins, "n") == 0 {
            let password = read_secret_file(file, "bootstrap admin password")?;
            auth::create_user(&db, email, &password, Role::Admin, config.argon2)
                .await
                .map_err(|e| anyhow::anyhow!("bootstrap admin: {e}"))?;
            eprintln!("created bootstrap admin {email}");
        }
    }
    let state = AppState::new(db, config).await?;
    selfcheck::start(&state);
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    eprintln!("fieldbook listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    Ok(())
}

/// SIGTERM (what Kubernetes sends) or Ctrl-C: stop accepting, finish in-flight requests.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
    eprintln!("fieldbook: shutting down");
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(*args).await.map(|_| ExitCode::SUCCESS),
        Command::Migrate(args) => {
            Db::connect(&args.database_url).await?.migrate().await?;
            eprintln!("database schema is up to date");
            Ok(ExitCode::SUCCESS)
        }
        Command::VerifyLogs(args) => {
            let db = Db::connect(&args.database_url).await?;
            let report = logs::verify_chains(&db).await?;
            for problem in &report.problems {
                println!("{problem}");
            }
            if report.ok() {
                println!("log chains intact: {} entries checked", report.checked);
                Ok(ExitCode::SUCCESS)
            } else {
                println!(
                    "log chains BROKEN: {} problem(s) in {} entries",
                    report.problems.len(),
                    report.checked
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::CreateAdmin(args) => {
            let password = match &args.password_file {
                Some(path) => read_secret_file(path, "password")?,
                None => {
                    let mut text = String::new();
                    std::io::stdin().read_to_string(&mut text)?;
                    text.trim().to_string()
                }
            };
            let db = Db::connect(&args.db.database_url).await?;
            db.migrate().await?;
            let id = auth::create_user(
                &db,
                &args.email,
                &password,
                Role::Admin,
                AppConfig::new(".".into()).argon2,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!("created admin {} (id {id})", args.email);
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("fieldbook: {}", fieldbook::db::redact(&format!("{e:#}")));
            ExitCode::from(2)
        }
    }
}
