//! Who is asking: a verified client certificate (CN user, O groups) or a bearer token from the
//! token file (upstream's `--token-auth-file` format). Anything else is anonymous.

use std::collections::HashMap;
use std::path::Path;

/// An authenticated user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.name == "system:anonymous"
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Static bearer tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(HashMap<String, User>);

impl Tokens {
    pub fn insert(&mut self, token: String, user: User) {
        self.0.insert(token, user);
    }

    pub fn user(&self, token: &str) -> Option<&User> {
        self.0.get(token)
    }

    /// Reads a CSV file of `token,user,uid[,"group1,group2"]` lines, as upstream's
    /// `--token-auth-file`.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let mut tokens = Self::default();
        for line in std::fs::read_to_string(path)?.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.splitn(4, ',');
            let (Some(token), Some(user)) = (fields.next(), fields.next()) else {
                continue;
            };
            let _uid = fields.next();
            let groups = fields
                .next()
                .map(|g| {
                    g.trim_matches('"')
                        .split(',')
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                token.to_owned(),
                User {
                    name: user.to_owned(),
                    groups,
                },
            );
        }
        Ok(tokens)
    }
}

/// The bearer token of an `Authorization` header.
pub fn bearer(header: Option<&http::HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "# comment\nabc,alice,1,\"dev,ops\"\nxyz,bob,2\n").unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.user("abc").unwrap().groups, ["dev", "ops"]);
        assert_eq!(tokens.user("xyz").unwrap().name, "bob");
        assert!(tokens.user("nope").is_none());
    }

    #[test]
    fn bearer_header() {
        let header = http::HeaderValue::from_static("Bearer abc");
        assert_eq!(bearer(Some(&header)), Some("abc"));
        assert_eq!(
            bearer(Some(&http::HeaderValue::from_static("Basic x"))),
            None
        );
    }
}
