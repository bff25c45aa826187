//! Pod networking through the standard CNI plugins (Debian's containernetworking-plugins).
//!
//! The runtime runs the plugins itself, as the CNI specification describes: each plugin binary
//! gets the command and the pod's network namespace in its environment and its configuration on
//! stdin, and answers with a JSON result. The network is a chain: `bridge` (a veth pair from
//! the pod into the node's bridge, an address from `host-local`) then `portmap` (hostPorts).
//! `loopback` brings `lo` up on its own. DEL runs the chain backwards with the result ADD gave.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// How pods are networked on this node.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Where the plugin binaries live.
    pub bin_dir: PathBuf,
    /// The node's bridge.
    pub bridge: String,
    /// The pod address range of this node, e.g. `10.42.0.0/24`.
    pub pod_cidr: String,
    /// Where host-local keeps its leases.
    pub state_dir: PathBuf,
}

/// A port the pod publishes on the node (a hostPort).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    pub host_port: i32,
    pub container_port: i32,
    pub protocol: String,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub host_ip: String,
}

/// A plugin failed; the message is the plugin's own.
#[derive(Debug, thiserror::Error)]
#[error("CNI plugin {plugin} {command} failed: {message}")]
pub struct CniError {
    pub plugin: String,
    pub command: &'static str,
    pub message: String,
}

const CNI_VERSION: &str = "1.0.0";
const NETWORK_NAME: &str = "cox";

impl NetworkConfig {
    /// The plugin chain, as a CNI network configuration list.
    fn plugins(&self) -> Vec<Value> {
        vec![
            json!({
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": self.state_dir.join("ipam"),
                },
            }),
            json!({"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}),
        ]
    }

    /// Connects the namespace at `netns` and returns the final CNI result (to give to
    /// [`NetworkConfig::remove`] later) and the pod's IPv4 address.
    pub fn add(
        &self,
        container_id: &str,
        netns: &Path,
        ports: &[PortMapping],
    ) -> Result<(Value, Option<String>), CniError> {
        self.invoke(
            "loopback",
            &json!({"type": "loopback"}),
            "ADD",
            container_id,
            netns,
            "lo",
        )?;
        let mut previous: Option<Value> = None;
        for plugin in self.plugins() {
            if plugin["type"] == "portmap" && ports.is_empty() {
                continue;
            }
            let mut config = plugin.clone();
            if let Some(previous) = &previous {
                config["prevResult"] = previous.clone();
            }
            if plugin["type"] == "portmap" {
                config["runtimeConfig"] = json!({"portMappings": ports});
            }
            let result = self.invoke_named(&config, "ADD", container_id, netns);
            match result {
                Ok(result) => previous = Some(result),
                Err(e) => {
                    // Undo what succeeded; the error that matters is the first.
                    let _ = self.remove(container_id, netns, previous.as_ref(), ports);
                    return Err(e);
                }
            }
        }
        let result = previous.unwrap_or(Value::Null);
        let ip = result["ips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ip| ip["address"].as_str())
            .find(|address| !address.contains(':'))
            .and_then(|address| address.split('/').next())
            .map(str::to_string);
        Ok((result, ip))
    }

    /// Disconnects a pod. Safe to repeat, and to call when the namespace is already gone.
    pub fn remove(
        &self,
        container_id: &str,
        netns: &Path,
        result: Option<&Value>,
        ports: &[PortMapping],
    ) -> Result<(), CniError> {
        let mut first_error = None;
        for plugin in self.plugins().into_iter().rev() {
            if plugin["type"] == "portmap" && ports.is_empty() {
                continue;
            }
            let mut config = plugin.clone();
            if let Some(result) = result {
                config["prevResult"] = result.clone();
            }
            if plugin["type"] == "portmap" {
                config["runtimeConfig"] = json!({"portMappings": ports});
            }
            if let Err(e) = self.invoke_named(&config, "DEL", container_id, netns) {
                first_error.get_or_insert(e);
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn invoke_named(
        &self,
        config: &Value,
        command: &'static str,
        container_id: &str,
        netns: &Path,
    ) -> Result<Value, CniError> {
        let plugin = config["type"].as_str().unwrap_or_default().to_string();
        self.invoke(&plugin, config, command, container_id, netns, "eth0")
    }

    fn invoke(
        &self,
        plugin: &str,
        config: &Value,
        command: &'static str,
        container_id: &str,
        netns: &Path,
        ifname: &str,
    ) -> Result<Value, CniError> {
        let fail = |message: String| CniError {
            plugin: plugin.to_string(),
            command,
            message,
        };
        let mut config = config.clone();
        config["cniVersion"] = json!(CNI_VERSION);
        config["name"] = json!(NETWORK_NAME);
        let input = serde_json::to_vec(&config).map_err(|e| fail(e.to_string()))?;
        let mut child = Command::new(self.bin_dir.join(plugin))
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &self.bin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot run {}: {e}",
                    self.bin_dir.join(plugin).display()
                ))
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(&input).map_err(|e| fail(e.to_string()))?;
        }
        let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
        if !output.status.success() {
            let message = answer["msg"]
                .as_str()
                .map(|msg| match answer["details"].as_str() {
                    Some(details) if !details.is_empty() => format!("{msg}: {details}"),
                    _ => msg.to_string(),
                })
                .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string());
            return Err(fail(message));
        }
        Ok(answer)
    }
}
