//! What each command does; `main.rs` only parses arguments.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use nphooks_core::config::Settings;
use nphooks_core::routing::Integration;
use nphooks_core::webhook::EventKind;
use nphooks_samples::{WEBHOOK_PATH, event_files, webhook_body};

use crate::ops;
use crate::send::{self, RetrySchedule, SendOptions};
use crate::serve::{self, ServeOptions};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 3000)]
    pub port: u16,
    /// Use SQS and DynamoDB (AWS credentials, or the moto server at AWS_ENDPOINT_URL) instead of memory.
    #[arg(long)]
    pub aws: bool,
    /// Where previews of unconfigured integrations are written.
    #[arg(long, default_value = "outbox")]
    pub outbox: PathBuf,
    /// Seconds a received message stays hidden before it is retried.
    #[arg(long, default_value_t = 10)]
    pub visibility: u64,
    /// Also run the dashboard over this pipeline's state on 127.0.0.1:PORT.
    #[arg(long)]
    pub dashboard_port: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct DashboardArgs {
    /// Port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Read the deployed stack (AWS credentials) rather than the moto server at AWS_ENDPOINT_URL.
    #[arg(long)]
    pub aws: bool,
    /// The deployed stack whose table and queues to show (from its CloudFormation outputs).
    #[arg(long)]
    pub stack: Option<String>,
    /// Refuse replays and redrives.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// A JSON file (webhook body or API Gateway event) or an event name (`call.ended`, `call.ended:quote_request`, …).
    pub source: String,
    /// Where to send it.
    #[arg(long, default_value = "http://127.0.0.1:3000/webhook/nextphone")]
    pub url: String,
    /// Signing secret (the first of NEXTPHONE_WEBHOOK_SECRETS when not given).
    #[arg(long, env = "NEXTPHONE_WEBHOOK_SECRETS", hide_env_values = true)]
    pub secret: Option<String>,
    /// Bearer API key.
    #[arg(long, env = "NEXTPHONE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Retry like NextPhone (5 min, 15 min, 1 h), compressed (`fast`), or not at all.
    #[arg(long, value_enum, default_value_t = RetrySchedule::None)]
    pub retries: RetrySchedule,
    /// Override a field: `--set data.caller.name="Ann Lee"` (repeatable).
    #[arg(long = "set")]
    pub sets: Vec<String>,
}

fn aws_mode(flag: bool) -> bool {
    flag || std::env::var_os("AWS_ENDPOINT_URL").is_some()
}

async fn aws_config() -> aws_config::SdkConfig {
    nphooks_core::aws::sdk_config(nphooks_processor::AWS_TIMEOUTS).await
}

fn first_secret(settings: &Settings) -> String {
    settings
        .optional("NEXTPHONE_WEBHOOK_SECRETS")
        .and_then(|s| s.split(',').map(str::trim).find(|s| !s.is_empty()))
        .unwrap_or(nphooks_samples::TEST_WEBHOOK_SECRET)
        .to_owned()
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let aws = aws_mode(args.aws);
    let settings = serve::with_local_defaults(&Settings::from_env(), aws);
    let options = ServeOptions {
        port: args.port,
        aws,
        outbox: args.outbox,
        visibility: Duration::from_secs(args.visibility.max(1)),
        ..ServeOptions::default()
    };
    let running = serve::start(settings.clone(), &options).await?;
    let _dashboard = match args.dashboard_port {
        Some(port) => {
            let source = running.dashboard_source(settings, aws_config().await);
            let options = crate::dashboard::DashboardOptions {
                port,
                read_only: false,
            };
            let dashboard = crate::dashboard::start(source, options).await?;
            println!("dashboard on http://{}/", dashboard.addr);
            Some(dashboard)
        }
        None => None,
    };
    println!(
        "nphooks serving POST http://{}{WEBHOOK_PATH} ({})",
        running.addr,
        if aws {
            "SQS and DynamoDB"
        } else {
            "offline: in-memory queues and store"
        }
    );
    if !running.previews.is_empty() {
        let names: Vec<&str> = running.previews.iter().map(|i| i.as_str()).collect();
        println!(
            "preview mode (not configured, written to {}/): {}",
            running.outbox.dir().display(),
            names.join(", ")
        );
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn dashboard(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        aws_mode(args.aws || args.stack.is_some()),
        "nothing to show: pass --aws for the deployed stack (AWS credentials, IDEMPOTENCY_TABLE), set AWS_ENDPOINT_URL for moto, or run `nphooks serve --dashboard-port {}`",
        args.port
    );
    let aws = aws_config().await;
    let settings = match &args.stack {
        Some(stack) => {
            crate::dashboard::stack::settings_of(&aws, stack, &Settings::from_env()).await?
        }
        None => Settings::from_env(),
    };
    let source = crate::dashboard::AwsSource::new(aws, settings);
    let options = crate::dashboard::DashboardOptions {
        port: args.port,
        read_only: args.read_only,
    };
    let running = crate::dashboard::start(std::sync::Arc::new(source), options).await?;
    println!(
        "nphooks dashboard on http://{}/{}",
        running.addr,
        if args.read_only { " (read-only)" } else { "" }
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(outbox: PathBuf) -> anyhow::Result<ExitCode> {
    let settings = serve::with_local_defaults(&Settings::from_env(), false);
    let secret = first_secret(&settings);
    let api_key = settings.optional("NEXTPHONE_API_KEY").map(str::to_owned);
    let options = ServeOptions {
        port: 0,
        outbox,
        ..ServeOptions::default()
    };
    let running = serve::start(settings, &options).await?;
    println!(
        "nphooks demo: the pipeline is running offline on http://{}{WEBHOOK_PATH}",
        running.addr
    );
    println!("sending a signed call.ended demo request, as NextPhone would…");

    let body = serde_json::to_string_pretty(&webhook_body(EventKind::CallEnded))?;
    let url = format!("http://{}{WEBHOOK_PATH}", running.addr);
    let attempts = send::send(
        &SendOptions {
            url,
            secret,
            api_key,
            retries: RetrySchedule::None,
        },
        &body,
    )
    .await;
    let (code, why) = send::verdict(&attempts);
    if code != 0 {
        anyhow::bail!(
            "the receiver did not accept the demo webhook: {}",
            why.unwrap_or_default()
        );
    }
    let answer: serde_json::Value =
        serde_json::from_str(&attempts.last().map(|a| a.body.clone()).unwrap_or_default())?;
    let key = answer["delivery_key"]
        .as_str()
        .context("the receiver's answer has no delivery key")?;
    let progress = running
        .tracker
        .wait(key, Duration::from_secs(30))
        .await
        .filter(crate::progress::Progress::complete)
        .with_context(|| format!("not every integration finished delivery {key} within 30 s"))?;

    println!("\ndelivery {key}:");
    let mut all_ok = true;
    for integration in &progress.expected {
        let (ok, detail) = progress
            .finished
            .get(integration)
            .cloned()
            .unwrap_or_default();
        all_ok &= ok;
        println!(
            "  {:<7} {} {detail}",
            integration.as_str(),
            if ok { "✓ done" } else { "✗ failed" }
        );
    }
    if !running.previews.is_empty() {
        println!(
            "\nunconfigured integrations ran in preview mode: what they would send is in {}/",
            running.outbox.dir().display()
        );
        println!(
            "configure them (see README, Configuration) or put the names in .env to send for real."
        );
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn send(args: SendArgs) -> anyhow::Result<ExitCode> {
    let body = crate::body::build_body(&args.source, &args.sets)?;
    let secret = args
        .secret
        .as_deref()
        .and_then(|s| s.split(',').map(str::trim).find(|s| !s.is_empty()))
        .context("no signing secret: pass --secret or set NEXTPHONE_WEBHOOK_SECRETS (for `nphooks serve`'s default, use whsec_nphooks_test_only)")?
        .to_owned();
    let options = SendOptions {
        url: args.url,
        secret,
        api_key: args.api_key,
        retries: args.retries,
    };
    let attempts = send::send(&options, &body).await;
    let (code, why) = send::verdict(&attempts);
    if let Some(why) = why {
        eprintln!("error: {why}");
    }
    Ok(if code == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn sign(file: &Path, secret: Option<String>) -> anyhow::Result<ExitCode> {
    let secret = secret
        .as_deref()
        .and_then(|s| s.split(',').map(str::trim).find(|s| !s.is_empty()))
        .context("no signing secret: pass --secret or set NEXTPHONE_WEBHOOK_SECRETS")?
        .to_owned();
    let body = std::fs::read(file).with_context(|| format!("could not read {}", file.display()))?;
    println!(
        "X-NextPhone-Signature: {}",
        send::signature_header(&secret, &body)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn events_generate(dir: &Path) -> anyhow::Result<ExitCode> {
    let mut changed = 0;
    let files = event_files();
    for (path, contents) in &files {
        let file = dir.join(path);
        if std::fs::read_to_string(&file).ok().as_deref() != Some(contents.as_str()) {
            std::fs::create_dir_all(file.parent().context("a file has a parent")?)?;
            std::fs::write(&file, contents)
                .with_context(|| format!("could not write {}", file.display()))?;
            changed += 1;
        }
    }
    println!(
        "{} files in {}, {changed} changed",
        files.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn init_local() -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "AWS_ENDPOINT_URL is not set: start a moto server (moto_server -p 5000) and export AWS_ENDPOINT_URL=http://127.0.0.1:5000"
    );
    ops::init_local(&aws_config().await, &Settings::from_env()).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn dlq_list(integration: Integration) -> anyhow::Result<ExitCode> {
    let letters = ops::dlq_list(&aws_config().await, integration).await?;
    println!("{} message(s) in the {integration} DLQ", letters.len());
    for letter in letters {
        println!(
            "  {}  {}  {}",
            letter.message_id, letter.delivery_key, letter.reason
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn dlq_redrive(integration: Integration) -> anyhow::Result<ExitCode> {
    let moved = ops::dlq_redrive(&aws_config().await, integration).await?;
    println!("moved {moved} message(s) from the {integration} DLQ back to its queue");
    Ok(ExitCode::SUCCESS)
}

pub async fn replay(
    key: &str,
    integration: Option<Integration>,
    force: bool,
) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_env();
    let outcomes = ops::replay(&aws_config().await, &settings, key, integration, force).await?;
    let mut ok = true;
    for (integration, outcome) in outcomes {
        let (done, text) = ops::outcome_text(&outcome);
        ok &= done;
        println!("{:<7} {text}", integration.as_str());
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
