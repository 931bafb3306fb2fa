//! Signals: the first SIGTERM or SIGINT asks for a clean stop, a second one exits at once.

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// Exit status when a second signal cuts the drain short.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Waits for signals; cancels `cancel` on the first, exits the process on the second.
pub async fn watch(cancel: CancellationToken) -> std::io::Result<()> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::info!("stopping: draining writes and saving the cursor");
    cancel.cancel();
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    tracing::warn!("second signal: exiting without draining");
    std::process::exit(EXIT_INTERRUPTED);
}
