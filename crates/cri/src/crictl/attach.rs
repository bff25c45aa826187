//! `cox crictl attach CONTAINER`: this terminal attached to a running container's own stdio.

use anyhow::{Context, Result};

use super::CommandExit;
use super::lookup;
use super::session::Session;

/// `cox crictl attach`.
#[derive(Debug, clap::Args)]
pub(crate) struct AttachArgs {
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    stdin: bool,
    /// Stdin is a TTY
    #[arg(short, long)]
    tty: bool,
    /// The container: its ID or a unique prefix
    #[arg(value_name = "CONTAINER-ID")]
    container: String,
}

pub(crate) async fn run(session: &mut Session, args: AttachArgs) -> Result<()> {
    let id = lookup::container_id(session, &args.container).await?;
    let mut client = session.runtime().await?;
    let response = session
        .deadline()
        .call(
            client.attach(session.deadline().request(crate::v1::AttachRequest {
                container_id: id,
                stdin: args.stdin,
                tty: args.tty,
                stdout: true,
                stderr: !args.tty,
            })),
        )
        .await
        .with_context(|| format!("attaching to container {}", args.container))?;
    let code = crate::stream_client::exec(&response.url, args.stdin, args.tty).await?;
    if code != 0 {
        return Err(CommandExit(code).into());
    }
    Ok(())
}
