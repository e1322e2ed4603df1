use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nphooks_cli::commands;
use nphooks_core::routing::Integration;

/// nphooks: NextPhone webhooks → CRM lead, email, Slack post and sales notification.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole pipeline on this machine: the receiver on POST /webhook/nextphone and every processor.
    Serve(commands::ServeArgs),
    /// Start the pipeline offline, send a signed demo-request call through it, and show what each integration did.
    Demo {
        /// Where previews of unconfigured integrations are written.
        #[arg(long, default_value = "outbox")]
        outbox: PathBuf,
    },
    /// Send a webhook signed exactly as NextPhone does.
    Send(commands::SendArgs),
    /// Print the X-NextPhone-Signature header for a file's bytes.
    Sign {
        file: PathBuf,
        #[arg(long, env = "NEXTPHONE_WEBHOOK_SECRETS", hide_env_values = true)]
        secret: Option<String>,
    },
    /// Sample events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Create the table and queues (with DLQs and redrive) on the moto server at AWS_ENDPOINT_URL.
    InitLocal,
    /// Inspect or redrive an integration's dead-letter queue (SQS or moto).
    Dlq {
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The seeded chaos soak on in-memory adapters: N deliveries at fault rate p, one summary line; non-zero exit on loss or doubling.
    Soak(nphooks_cli::soak::SoakArgs),
    /// Count every AWS request of N demo deliveries on moto (AWS_ENDPOINT_URL) and print the bill per million deliveries.
    Bill(nphooks_cli::bill::BillArgs),
    /// The whole pipeline in one process under load: N signed webhooks over C connections, throughput and POST→last-effect latency; non-zero exit if an effect is missing or doubled.
    Bench(nphooks_cli::bench::BenchArgs),
    /// A local web app on 127.0.0.1: deliveries, dead letters, health; replay and redrive.
    Dashboard(commands::DashboardArgs),
    /// Re-run a delivery's integrations from its stored envelope (completed ones only with --force).
    Replay {
        delivery_key: String,
        #[arg(long)]
        integration: Option<Integration>,
        /// Run integrations that already completed again.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Regenerate events/ from the code that signs and envelopes them.
    Generate {
        #[arg(long, default_value = "events")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    List { integration: Integration },
    Redrive { integration: Integration },
}

#[tokio::main]
async fn main() -> ExitCode {
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: .env could not be read ({error}): fix the line or quote the value");
        return ExitCode::FAILURE;
    }
    let result = match Cli::parse().command {
        Command::Serve(args) => commands::serve(args).await,
        Command::Demo { outbox } => commands::demo(outbox).await,
        Command::Send(args) => commands::send(args).await,
        Command::Sign { file, secret } => commands::sign(&file, secret),
        Command::Events {
            command: EventsCommand::Generate { dir },
        } => commands::events_generate(&dir),
        Command::InitLocal => commands::init_local().await,
        Command::Dlq {
            command: DlqCommand::List { integration },
        } => commands::dlq_list(integration).await,
        Command::Dlq {
            command: DlqCommand::Redrive { integration },
        } => commands::dlq_redrive(integration).await,
        Command::Dashboard(args) => commands::dashboard(args).await,
        Command::Soak(args) => nphooks_cli::soak::soak(&args),
        Command::Bill(args) => nphooks_cli::bill::bill(&args).await,
        Command::Bench(args) => nphooks_cli::bench::bench(&args).await,
        Command::Replay {
            delivery_key,
            integration,
            force,
        } => commands::replay(&delivery_key, integration, force).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
