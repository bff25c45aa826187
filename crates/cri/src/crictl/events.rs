//! `events`: the runtime's container events as they happen (`GetContainerEvents`), each printed
//! as crictl prints it, until the runtime ends the stream.

use anyhow::Context as _;

use super::protojson;
use super::session::{Deadline, RpcError, Session};
use crate::v1::{ContainerEventResponse, GetEventsRequest};

/// `cox crictl events`.
#[derive(Debug, clap::Args)]
pub(crate) struct EventsArgs {
    /// Output format, One of: json|yaml
    #[arg(short, long, value_enum, default_value = "json")]
    output: EventsFormat,
}

/// crictl's formats but `go-template`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EventsFormat {
    Json,
    Yaml,
}

/// Runs `events`. The stream has no deadline (only connecting has); it ends when the runtime
/// ends it, as crictl: quietly when it closes, with its error otherwise.
pub(crate) async fn run(session: &mut Session, args: EventsArgs) -> anyhow::Result<()> {
    let mut client = session.runtime().await?;
    let deadline = Deadline::none();
    let mut events = deadline
        .call(client.get_container_events(deadline.request(GetEventsRequest {})))
        .await
        .context("getting container events")?;
    // The runtime has subscribed this client once the call answered: from here on no event is
    // missed (a test waits for this line).
    session.debug("receiving container events");
    while let Some(event) = events
        .message()
        .await
        .map_err(RpcError)
        .context("getting container events")?
    {
        session.print(render(&event, args.output)?)?;
    }
    Ok(())
}

/// One event as crictl prints it: protobuf JSON with default values, indented; or that as YAML
/// with sorted keys and an extra newline.
fn render(event: &ContainerEventResponse, format: EventsFormat) -> anyhow::Result<String> {
    let document = protojson::to_json(event)?;
    Ok(match format {
        EventsFormat::Json => document.to_pretty() + "\n",
        EventsFormat::Yaml => document.sorted().to_yaml() + "\n",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ContainerEventType, PodSandboxStatus};

    #[test]
    fn events_print_as_protobuf_json_with_defaults() {
        let event = ContainerEventResponse {
            container_id: "c1".into(),
            container_event_type: ContainerEventType::ContainerCreatedEvent as i32,
            created_at: 1_700_000_000_123_456_789,
            pod_sandbox_status: None,
            containers_statuses: Vec::new(),
        };
        assert_eq!(
            render(&event, EventsFormat::Json).expect("renders"),
            "{\n  \"containerId\": \"c1\",\n  \"containerEventType\": \"CONTAINER_CREATED_EVENT\",\n  \
             \"createdAt\": \"1700000000123456789\",\n  \"containersStatuses\": []\n}\n"
        );
        let event = ContainerEventResponse {
            container_event_type: ContainerEventType::ContainerDeletedEvent as i32,
            pod_sandbox_status: Some(PodSandboxStatus {
                id: "p1".into(),
                ..Default::default()
            }),
            ..event
        };
        let yaml = render(&event, EventsFormat::Yaml).expect("renders");
        assert!(
            yaml.starts_with("containerEventType: CONTAINER_DELETED_EVENT\ncontainerId: c1\n"),
            "{yaml}"
        );
        assert!(yaml.contains("podSandboxStatus:\n"), "{yaml}");
        assert!(
            yaml.ends_with("\n\n"),
            "an extra newline, as crictl: {yaml:?}"
        );
    }
}
