//! The channel protocol that carries exec, attach and port-forward streams over WebSocket, as
//! kubelets, runtimes' streaming servers and API servers speak it.
//!
//! Every WebSocket message is one binary frame: a channel number byte, then data. For exec and
//! attach: 0 stdin, 1 stdout, 2 stderr, 3 errors (from v4 on, a `metav1.Status` JSON that also
//! carries the exit code), 4 terminal resize (`{"Width":w,"Height":h}`). v5 adds 255, "close":
//! `[255, n]` says the sender will write no more on channel n (stdin's end of file). For
//! port-forward, port i has data channel 2i and error channel 2i+1, and the first frame the
//! server sends on each carries the port number (2 bytes, little endian). Over v5, a client's
//! `[255, 2i]` half-closes port i's connection: the pod reads the end of its input and may
//! still answer; the server ends the stream once the pod has closed every connection.

use serde_json::{Value, json};

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
pub const V3: &str = "v3.channel.k8s.io";
pub const V2: &str = "v2.channel.k8s.io";
pub const V1: &str = "channel.k8s.io";

/// The subprotocols a server accepts, most preferred first.
pub const PROTOCOLS: &[&str] = &[V5, V4, V3, V2, V1];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Picks the subprotocol for a client's `Sec-WebSocket-Protocol` header (comma separated).
pub fn negotiate(offered: &str) -> Option<&'static str> {
    let offered: Vec<&str> = offered.split(',').map(str::trim).collect();
    PROTOCOLS.iter().copied().find(|p| offered.contains(p))
}

/// Whether the protocol reports errors as `metav1.Status` JSON (v4 and later).
pub fn has_status(protocol: &str) -> bool {
    protocol == V4 || protocol == V5
}

/// One frame: the channel byte, then the data.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(data.len() + 1);
    frame.push(channel);
    frame.extend_from_slice(data);
    frame
}

/// Splits a frame into its channel and data; `None` for an empty message.
pub fn parse(frame: &[u8]) -> Option<(u8, &[u8])> {
    frame.split_first().map(|(channel, data)| (*channel, data))
}

/// The status a stream ends with: success, or the command's non-zero exit code.
pub fn exit_status(code: i32) -> Value {
    if code == 0 {
        return json!({"metadata": {}, "status": "Success"});
    }
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("command terminated with non-zero exit code: error executing command, exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

/// A failure that is not an exit code (the command could not start, the container is gone).
pub fn failure_status(message: &str) -> Value {
    json!({"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"})
}

/// The exit code a finished stream's status reports (`None`: it is an error, not an exit).
pub fn exit_code(status: &Value) -> Option<i32> {
    if status["status"] == "Success" {
        return Some(0);
    }
    if status["reason"] != "NonZeroExitCode" {
        return None;
    }
    status["details"]["causes"]
        .as_array()?
        .iter()
        .find(|cause| cause["reason"] == "ExitCode")?["message"]
        .as_str()?
        .parse()
        .ok()
}

/// A terminal size from a resize frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The port-forward preamble: the port number as two little-endian bytes.
pub fn port_preamble(port: u16) -> [u8; 2] {
    port.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_the_newest_offered_protocol() {
        assert_eq!(negotiate("v4.channel.k8s.io, v5.channel.k8s.io"), Some(V5));
        assert_eq!(negotiate("channel.k8s.io"), Some(V1));
        assert_eq!(negotiate("base64.channel.k8s.io"), None);
    }

    #[test]
    fn frames_and_statuses_round_trip() {
        assert_eq!(parse(&frame(STDOUT, b"hi")), Some((STDOUT, &b"hi"[..])));
        assert_eq!(parse(&[]), None);
        assert_eq!(exit_code(&exit_status(0)), Some(0));
        assert_eq!(exit_code(&exit_status(3)), Some(3));
        assert_eq!(exit_code(&failure_status("gone")), None);
        let size: TerminalSize =
            serde_json::from_str(r#"{"Width":80,"Height":24}"#).expect("resize JSON");
        assert_eq!(
            size,
            TerminalSize {
                width: 80,
                height: 24
            }
        );
        assert_eq!(port_preamble(8080), [0x90, 0x1f]);
    }
}
