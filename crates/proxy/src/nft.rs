//! Getting a [`Ruleset`] into the kernel: one `nft -f -` transaction per sync, so every
//! change lands at once or not at all. The first sync (and any after a failure) replaces
//! the whole `cox-proxy` table; later ones change only what differs from what was applied
//! last: chains rewritten or removed, map elements added or deleted, affinity sets made or
//! dropped (so a client's affinity survives syncs that do not touch its Service).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::rules::{Networks, Ruleset, TABLE, skeleton};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("nft refused the rules: {0}")]
    Refused(String),
}

/// What is in the kernel, as far as this process knows.
#[derive(Debug)]
pub struct Table {
    networks: Networks,
    /// `None` until a sync succeeded (then the next one rebuilds the table).
    applied: Option<Ruleset>,
}

impl Table {
    pub fn new(networks: Networks) -> Self {
        Self {
            networks,
            applied: None,
        }
    }

    /// Makes the kernel's table say `wanted`; returns whether anything had to change.
    pub fn sync(&mut self, wanted: Ruleset) -> Result<bool, Error> {
        let script = match &self.applied {
            Some(applied) if *applied == wanted => return Ok(false),
            Some(applied) => changes(applied, &wanted),
            None => full(&self.networks, &wanted),
        };
        match run_nft(&script) {
            Ok(()) => {
                self.applied = Some(wanted);
                Ok(true)
            }
            Err(e) => {
                self.applied = None;
                Err(e)
            }
        }
    }
}

/// Removes the table (and with it every rule of this proxy); a table that is not there is
/// not an error.
pub fn delete_table() -> Result<(), Error> {
    run_nft(&format!("add table ip {TABLE}\ndelete table ip {TABLE}\n"))
}

fn run_nft(script: &str) -> Result<(), Error> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(Error::Spawn)?;
    }
    let output = child.wait_with_output().map_err(Error::Spawn)?;
    if output.status.success() {
        Ok(())
    } else {
        let message = String::from_utf8_lossy(&output.stderr);
        Err(Error::Refused(message.trim().chars().take(4000).collect()))
    }
}

/// A transaction that replaces the table with the skeleton plus `wanted`.
pub fn full(networks: &Networks, wanted: &Ruleset) -> String {
    let mut script = format!("add table ip {TABLE}\ndelete table ip {TABLE}\n");
    script.push_str(&skeleton(networks));
    let empty = Ruleset::default();
    script.push_str(&changes(&empty, wanted));
    script
}

/// The commands that turn `applied` into `wanted`, in an order nft accepts: new sets and
/// chains first (rules may refer to them), then rules and elements, then what is gone
/// (emptied before deleted, since chains refer to each other).
pub fn changes(applied: &Ruleset, wanted: &Ruleset) -> String {
    let mut out = String::new();
    let t = format!("ip {TABLE}");
    for (set, timeout) in &wanted.affinity_sets {
        if applied.affinity_sets.get(set) != Some(timeout) {
            if applied.affinity_sets.contains_key(set) {
                let _ = writeln!(out, "delete set {t} {}", set);
            }
            let _ = writeln!(
                out,
                "add set {t} {} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}",
                set
            );
        }
    }
    let changed: Vec<(&String, &Vec<String>)> = wanted
        .chains
        .iter()
        .filter(|(name, rules)| applied.chains.get(*name) != Some(rules))
        .collect();
    for (name, _) in &changed {
        let _ = writeln!(out, "add chain {t} {}", name);
    }
    for (name, rules) in &changed {
        if applied.chains.contains_key(*name) {
            let _ = writeln!(out, "flush chain {t} {}", name);
        }
        for rule in *rules {
            let _ = writeln!(out, "add rule {t} {} {}", name, rule);
        }
    }
    let none = BTreeMap::new();
    for (map, elements) in &wanted.elements {
        let before = applied.elements.get(map).unwrap_or(&none);
        for (key, value) in before {
            if elements.get(key) != Some(value) {
                let _ = writeln!(out, "delete element {t} {map} {{ {key} }}");
            }
        }
        for (key, value) in elements {
            if before.get(key) != Some(value) {
                let entry = if value.is_empty() {
                    key.clone()
                } else {
                    format!("{key} : {}", value)
                };
                let _ = writeln!(out, "add element {t} {map} {{ {entry} }}");
            }
        }
    }
    let gone: Vec<&String> = applied
        .chains
        .keys()
        .filter(|name| !wanted.chains.contains_key(*name))
        .collect();
    for name in &gone {
        let _ = writeln!(out, "flush chain {t} {}", name);
    }
    for name in &gone {
        let _ = writeln!(out, "delete chain {t} {}", name);
    }
    for set in applied.affinity_sets.keys() {
        if !wanted.affinity_sets.contains_key(set) {
            let _ = writeln!(out, "delete set {t} {}", set);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_changed_is_sent() {
        let mut before = Ruleset::default();
        before.chains.insert("svc-a".into(), vec!["goto x".into()]);
        before.chains.insert("svc-b".into(), vec!["goto y".into()]);
        before
            .elements
            .entry("service-ips")
            .or_default()
            .insert("1.2.3.4 . tcp . 80".into(), "goto svc-a".into());
        let mut after = before.clone();
        after.chains.remove("svc-b");
        after.chains.insert("svc-c".into(), vec!["goto z".into()]);
        after
            .elements
            .entry("service-ips")
            .or_default()
            .insert("1.2.3.5 . tcp . 80".into(), "goto svc-c".into());
        let script = changes(&before, &after);
        assert!(!script.contains("chain ip cox-proxy svc-a"), "{script}");
        assert!(script.contains("add chain ip cox-proxy svc-c"), "{script}");
        assert!(
            script.contains(
                "add element ip cox-proxy service-ips { 1.2.3.5 . tcp . 80 : goto svc-c }"
            ),
            "{script}"
        );
        assert!(
            script.contains("delete chain ip cox-proxy svc-b"),
            "{script}"
        );
        assert!(!script.contains("1.2.3.4"), "{script}");
    }
}
