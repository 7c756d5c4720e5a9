//! `nudge serve`: the API on one listener until SIGINT or SIGTERM.

use crate::cli::ServeArgs;
use crate::settings::Settings;
use anyhow::Context;
use nudge_engine::SystemClock;
use nudge_http::AppState;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let state = AppState::new(store, Arc::new(SystemClock));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    let public = args.public_url.unwrap_or_else(|| format!("http://{addr}"));
    eprintln!("Nudge is running on {}", settings.database_display());
    eprintln!("  API:     {public}/api/v1 (create a key with `nudge api-key create --name NAME`)");
    eprintln!("  OpenAPI: {public}/api/v1/openapi.json");
    eprintln!("  Health:  {public}/healthz");
    axum::serve(
        listener,
        nudge_http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await
    .context("the server stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
