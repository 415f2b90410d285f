//! `cargo run -p local`: the whole product on one loopback port, no AWS account needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use user_service::adapters::{aws_service, load_sdk_config};
use user_service::{http, Config};

/// Runs the user service and the notification function together on this machine.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to serve the HTTP API on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,

    /// Folder the welcome emails are written to, one .eml file each.
    #[arg(long, default_value = "outbox")]
    outbox: PathBuf,

    /// Use DynamoDB and EventBridge from the standard AWS configuration (AWS_ENDPOINT_URL,
    /// AWS_REGION, credentials; USERS_TABLE and EVENT_BUS_NAME) instead of memory. Emails
    /// are then sent by whatever the bus's rule targets, not written to the outbox.
    #[arg(long)]
    aws: bool,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The runtime's subscriber, as in Lambda: AWS_LAMBDA_LOG_FORMAT=JSON gives JSON lines,
    // AWS_LAMBDA_LOG_LEVEL or RUST_LOG sets the level (info by default).
    lambda_runtime::tracing::init_default_subscriber();
    let args = Args::parse();

    let router = if args.aws {
        aws_router().await?
    } else {
        local::in_memory_router(&args.outbox)?
    };

    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!(addr = %listener.local_addr()?, outbox = %args.outbox.display(), aws = args.aws, "listening");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
}

async fn aws_router() -> Result<axum::Router, Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    let sdk_config = load_sdk_config().await;
    let service = aws_service(&sdk_config, &config);
    Ok(http::router(Arc::new(service)))
}

async fn shutdown() {
    // Without a signal handler there is nothing to wait for; serve until killed.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
