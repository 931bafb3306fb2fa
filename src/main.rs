//! The `atcr-indexer` binary: parses the command line and runs one subcommand.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use tokio_util::sync::CancellationToken;

use atcr_indexer::config::{Cli, Command, LogFormat, Settings};
use atcr_indexer::{daemon, health, inspect, metrics, shutdown};

/// How long `inspect` waits for Valkey before it gives up.
const INSPECT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Exit status for an invalid configuration.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = match &cli.command {
        Command::Run(overrides) | Command::Check(overrides) | Command::Health(overrides) => {
            overrides
        }
        Command::Inspect { overrides, .. } => overrides,
    };
    let settings = match Settings::resolve(overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("atcr-indexer: invalid configuration: {error:#}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let result = match cli.command {
        Command::Check(_) => {
            print!("{}", settings.redacted_toml());
            Ok(())
        }
        Command::Run(_) => run(settings),
        Command::Health(_) => health(&settings),
        Command::Inspect {
            did, repository, ..
        } => inspect(settings, &did, repository.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("atcr-indexer: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::new(&settings.log.level);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn run(settings: Settings) -> anyhow::Result<()> {
    init_logging(&settings);
    let handle = metrics::install().context("installing the metrics recorder")?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        git_sha = metrics::GIT_SHA,
        "atcr-indexer starting"
    );
    let grace = settings.shutdown.grace;
    runtime()?.block_on(async move {
        let cancel = CancellationToken::new();
        let signals = tokio::spawn(shutdown::watch(cancel.clone()));
        let listener = health::serve(settings.metrics.listen, handle, cancel.clone()).await?;
        let mut daemon = tokio::spawn(daemon::run(settings, cancel.clone()));
        let finished = tokio::select! {
            finished = &mut daemon => Some(finished),
            () = cancel.cancelled() => None,
        };
        let finished = match finished {
            Some(finished) => finished,
            None => tokio::time::timeout(grace, daemon)
                .await
                .context("the shutdown grace period elapsed before writes drained")?,
        };
        signals.abort();
        cancel.cancel();
        let _ = listener.await;
        finished.context("the daemon task panicked")??;
        tracing::info!("atcr-indexer stopped");
        Ok(())
    })
}

/// How long `health` waits for the daemon's answer.
const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

fn health(settings: &Settings) -> anyhow::Result<()> {
    let address = settings.metrics.listen;
    match health::probe(address, HEALTH_TIMEOUT) {
        Ok(true) => Ok(()),
        Ok(false) => anyhow::bail!("not ready ({address}/readyz did not answer 200)"),
        Err(error) => anyhow::bail!("no answer from {address}: {error}"),
    }
}

fn inspect(settings: Settings, did: &str, repository: Option<&str>) -> anyhow::Result<()> {
    runtime()?.block_on(async move {
        let cancel = CancellationToken::new();
        let give_up = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(INSPECT_CONNECT_TIMEOUT).await;
            give_up.cancel();
        });
        let store = daemon::connect(&settings, &cancel)
            .await?
            .context("valkey did not answer within 10 seconds")?;
        let keys = daemon::indexer(&settings).keys().clone();
        let value = inspect::inspect(store.client(), &keys, did, repository).await?;
        println!("{}", serde_json::to_string_pretty(&value)?);
        Ok(())
    })
}
