//! `nudge serve`: the API, the public pages, the sequence engine and the dispatcher, until
//! SIGINT or SIGTERM; and `nudge worker`, the same without the web server.

use crate::cli::{ServeArgs, WorkerArgs};
use crate::delivery;
use crate::settings::Settings;
use anyhow::Context;
use nudge_core::Email;
use nudge_engine::{Clock, Engine, SystemClock, TestClock};
use nudge_http::AppState;
use nudge_http::test_clock::TestClockDriver;
use nudge_mail::{Dispatcher, SenderSettings, Transport};
use nudge_store::Store;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// The background workers of one process: the sequence engine and the dispatcher.
struct Workers {
    dispatcher: Arc<Dispatcher>,
    engine: Arc<Engine>,
}

impl Workers {
    fn new(
        store: &Arc<dyn Store>,
        clock: &Arc<dyn Clock>,
        transport: Arc<dyn Transport>,
        sender: SenderSettings,
        secret: &Arc<[u8]>,
    ) -> Self {
        let dispatcher = Dispatcher::new(
            Arc::clone(store),
            Arc::clone(clock),
            transport,
            sender,
            Arc::clone(secret),
        )
        .with_smtp_defaults(delivery::smtp_defaults())
        // As many attempts at once as the default relay keeps connections (4, see
        // `delivery::parse_smtp_url`): one at a time would leave all but one idle.
        .with_concurrency(4);
        let dispatcher = Arc::new(dispatcher);
        let engine = Arc::new(
            Engine::new(Arc::clone(store), Arc::clone(clock)).with_dispatcher(dispatcher.waker()),
        );
        Self { dispatcher, engine }
    }

    /// Runs both loops until `stop` turns true; the handles end when they have stopped.
    fn spawn(&self, stop: &tokio::sync::watch::Receiver<bool>) -> [JoinHandle<()>; 2] {
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let dispatcher = Arc::clone(&self.dispatcher);
        let engine = Arc::clone(&self.engine);
        let (a, b) = (stopped(stop.clone()), stopped(stop.clone()));
        [
            tokio::spawn(async move { dispatcher.run(a).await }),
            tokio::spawn(async move { engine.run(b).await }),
        ]
    }
}

async fn join(handles: [JoinHandle<()>; 2]) {
    for handle in handles {
        let _ = handle.await;
    }
}

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
    let test_clock = args
        .test_clock
        .then(|| Arc::new(TestClock::starting_at(jiff::Timestamp::now())));
    let clock: Arc<dyn Clock> = match &test_clock {
        Some(test_clock) => test_clock.clone(),
        None => Arc::new(SystemClock),
    };
    let sender = SenderSettings {
        from_email: from.clone(),
        from_name: args.from_name,
        public_url: public.clone(),
        tracking: true,
    };
    let workers = Workers::new(&store, &clock, Arc::clone(&transport), sender, &secret);
    let accounts = store
        .list_smtp_accounts()
        .await
        .context("could not read the sending accounts")?
        .len();
    let mut state = AppState::new(Arc::clone(&store), clock, secret)
        .with_public_url(public.clone())
        .with_wake(workers.dispatcher.waker())
        .with_engine_wake(workers.engine.waker());
    if let Some(test_clock) = test_clock {
        state = state.with_test_clock(Arc::new(TestClockDriver::new(
            test_clock,
            Arc::clone(&store),
            Arc::clone(&workers.engine),
            Arc::clone(&workers.dispatcher),
        )));
    }
    eprintln!("Nudge is running on {}", settings.database_display());
    eprintln!("  Admin:   {public}/admin (sign in as a user made with `nudge user create`)");
    eprintln!("  API:     {public}/api/v1 (create a key with `nudge api-key create --name NAME`)");
    eprintln!("  OpenAPI: {public}/api/v1/openapi.json");
    eprintln!("  Health:  {public}/healthz");
    print_mail(&from, transport.as_ref(), accounts);
    if args.test_clock {
        eprintln!(
            "  Clock:   a test clock, now {}; move it with POST {public}/api/v1/test-clock/advance",
            jiff::Timestamp::now()
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = workers.spawn(&stop_rx);
    let served = axum::serve(
        listener,
        nudge_http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await;
    let _ = stop_tx.send(true);
    join(running).await;
    served.context("the server stopped with an error")?;
    Ok(ExitCode::SUCCESS)
}

fn print_mail(from: &Email, transport: &dyn Transport, accounts: usize) {
    if accounts > 0 {
        eprintln!("  Mail:    through {accounts} sending account(s) of /api/v1/smtp-accounts");
    } else {
        eprintln!(
            "  Mail:    from {from} through {} until a sending account is added at \
             /api/v1/smtp-accounts",
            transport.describe()
        );
    }
}

/// `nudge worker`: the engine and the dispatcher without the web server, for extra machines
/// that share one PostgreSQL database (leases keep them from doing the same work twice).
pub async fn worker(settings: &Settings, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let store = settings.open_store().await?;
    let secret = delivery::secret(&settings.data_dir)?;
    let transport = delivery::transport(args.smtp_url.as_deref(), &settings.data_dir)?;
    let from = delivery::sender(args.from.as_deref())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sender = SenderSettings {
        from_email: from.clone(),
        from_name: args.from_name,
        public_url: args.public_url,
        tracking: true,
    };
    let workers = Workers::new(&store, &clock, Arc::clone(&transport), sender, &secret);
    let accounts = store
        .list_smtp_accounts()
        .await
        .context("could not read the sending accounts")?
        .len();
    eprintln!("Nudge worker is running on {}", settings.database_display());
    print_mail(&from, transport.as_ref(), accounts);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let running = workers.spawn(&stop_rx);
    shutdown().await;
    let _ = stop_tx.send(true);
    join(running).await;
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
