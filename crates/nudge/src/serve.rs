//! `nudge serve`: the API, the public pages and the dispatcher, until SIGINT or SIGTERM.

use crate::cli::ServeArgs;
use crate::delivery;
use crate::settings::Settings;
use anyhow::Context;
use nudge_engine::{Clock, SystemClock};
use nudge_http::AppState;
use nudge_mail::{Dispatcher, SenderSettings};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn run(settings: &Settings, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let secret = delivery::secret(&settings.data_dir)?;
    let transport = delivery::transport(args.smtp_url.as_deref(), &settings.data_dir)?;
    let from = delivery::sender(args.from.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("could not listen on {}", args.listen))?;
    let addr = listener.local_addr().context("no local address")?;
    let public = args.public_url.unwrap_or_else(|| format!("http://{addr}"));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let dispatcher = Dispatcher::new(
        Arc::clone(&store),
        Arc::clone(&clock),
        Arc::clone(&transport),
        SenderSettings {
            from_email: from.clone(),
            from_name: args.from_name,
            public_url: public.clone(),
            tracking: true,
        },
        Arc::clone(&secret),
    )
    .with_smtp_defaults(delivery::smtp_defaults())
    // As many attempts at once as the default relay keeps connections (4, see
    // `delivery::parse_smtp_url`): one at a time would leave all but one idle.
    .with_concurrency(4);
    let accounts = store
        .list_smtp_accounts()
        .await
        .context("could not read the sending accounts")?
        .len();
    let state = AppState::new(Arc::clone(&store), clock, secret).with_wake(dispatcher.waker());
    eprintln!("Nudge is running on {}", settings.database_display());
    eprintln!("  API:     {public}/api/v1 (create a key with `nudge api-key create --name NAME`)");
    eprintln!("  OpenAPI: {public}/api/v1/openapi.json");
    eprintln!("  Health:  {public}/healthz");
    if accounts > 0 {
        eprintln!("  Mail:    through {accounts} sending account(s) of /api/v1/smtp-accounts");
    } else {
        eprintln!(
            "  Mail:    from {from} through {} until a sending account is added at \
             /api/v1/smtp-accounts",
            transport.describe()
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut dispatcher_stop = stop_rx.clone();
    let dispatching = tokio::spawn(dispatcher.run(async move {
        let _ = dispatcher_stop.wait_for(|stop| *stop).await;
    }));
    let served = axum::serve(
        listener,
        nudge_http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await;
    let _ = stop_tx.send(true);
    let _ = dispatching.await;
    served.context("the server stopped with an error")?;
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
