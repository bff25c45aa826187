//! `cox crictl port-forward POD [LOCAL:]REMOTE...`: listens on loopback and carries each
//! connection to the pod's port over the runtime's port-forward stream.

use anyhow::{Context, Result};

use super::lookup;
use super::session::Session;

/// `cox crictl port-forward`.
#[derive(Debug, clap::Args)]
pub(crate) struct PortForwardArgs {
    /// The pod: its ID or a unique prefix
    #[arg(value_name = "POD-ID")]
    pod: String,
    /// Ports as `[LOCAL:]REMOTE` (LOCAL 0 or empty picks a free port)
    #[arg(value_name = "PORT", required = true)]
    ports: Vec<String>,
    /// The local address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::IpAddr,
}

/// Parses `8080:80`, `:80` or `80` into (local, remote).
fn parse_port(text: &str) -> Result<(u16, u16)> {
    let (local, remote) = text.split_once(':').unwrap_or((text, text));
    let remote: u16 = remote
        .parse()
        .with_context(|| format!("invalid port {text:?}"))?;
    let local: u16 = if local.is_empty() {
        0
    } else {
        local
            .parse()
            .with_context(|| format!("invalid port {text:?}"))?
    };
    anyhow::ensure!(remote != 0, "invalid remote port in {text:?}");
    Ok((local, remote))
}

pub(crate) async fn run(session: &mut Session, args: PortForwardArgs) -> Result<()> {
    let pod = lookup::pod_id(session, &args.pod).await?;
    let mut tasks = Vec::new();
    for text in &args.ports {
        let (local, remote) = parse_port(text)?;
        let listener = tokio::net::TcpListener::bind((args.address, local))
            .await
            .with_context(|| format!("listening on {}:{local}", args.address))?;
        println!("Forwarding from {} -> {remote}", listener.local_addr()?);
        let mut client = session.runtime().await?;
        let pod = pod.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let Ok((connection, _)) = listener.accept().await else {
                    continue;
                };
                println!(
                    "Handling connection for {}",
                    listener.local_addr().map(|a| a.port()).unwrap_or(local)
                );
                // Each connection gets its own stream: a URL opens exactly one.
                let response = client
                    .port_forward(crate::v1::PortForwardRequest {
                        pod_sandbox_id: pod.clone(),
                        port: vec![i32::from(remote)],
                    })
                    .await;
                let url = match response {
                    Ok(response) => response.into_inner().url,
                    Err(status) => {
                        eprintln!("port-forward: {}", status.message());
                        continue;
                    }
                };
                tokio::spawn(async move {
                    if let Err(e) = crate::stream_client::forward(&url, remote, connection).await {
                        eprintln!("port-forward: {e:#}");
                    }
                });
            }
        }));
    }
    futures::future::join_all(tasks).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    #[test]
    fn parses_port_pairs() {
        assert_eq!(parse_port("8080:80").ok(), Some((8080, 80)));
        assert_eq!(parse_port(":80").ok(), Some((0, 80)));
        assert_eq!(parse_port("80").ok(), Some((80, 80)));
        assert!(parse_port("x:80").is_err());
        assert!(parse_port("80:0").is_err());
    }
}
