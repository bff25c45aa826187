//! Pulls from a real registry (Debian's docker-registry on loopback, plain HTTP or HTTPS with
//! client certificates, started by `dev/test-registry`) with images built offline by
//! `dev/build-images`: through the registries config, over HTTPS with its CA and client
//! certificate settings, through a docker.io mirror, by index, a missing tag, a closed port,
//! and concurrent pulls of one image.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail, ensure};
use cox_runtime::digest::Digest;
use cox_runtime::images::oci;
use cox_runtime::images::registries::Registries;
use cox_runtime::images::registry::{PullProgress, Puller, pull};
use cox_runtime::images::{ImageError, ImageRecord, ImageStore, Reference};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The directory with the test images, built once per test run if missing.
fn images() -> Result<&'static Path> {
    static IMAGES: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let built = IMAGES.get_or_init(|| {
        let dir = repo_root().join("target/images");
        let archives = ["busybox.oci.tar", "nginx.oci.tar"];
        if archives.iter().all(|a| dir.join(a).is_file()) {
            return Ok(dir);
        }
        let output = Command::new(repo_root().join("dev/build-images"))
            .arg(&dir)
            .output()
            .map_err(|e| format!("running dev/build-images: {e}"))?;
        match output.status.success() {
            true => Ok(dir),
            false => Err(format!(
                "dev/build-images failed: {}",
                String::from_utf8_lossy(&output.stderr)
            )),
        }
    });
    built
        .as_deref()
        .map_err(|e| anyhow!("{e} (dev/install-deps installs what it needs)"))
}

/// A free loopback port (free when this returns; nobody else is expected to grab it).
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A registry serving 127.0.0.1:port until dropped.
struct TestRegistry {
    dir: tempfile::TempDir,
    port: u16,
}

impl TestRegistry {
    /// Plain HTTP.
    fn start() -> Result<Self> {
        Self::start_in("http")
    }

    /// HTTPS demanding a client certificate; the certificates are in `tls()`.
    fn start_mtls() -> Result<Self> {
        Self::start_in("mtls")
    }

    fn start_in(mode: &str) -> Result<Self> {
        let registry = TestRegistry {
            dir: tempfile::tempdir()?,
            port: free_port()?,
        };
        let output = Command::new(repo_root().join("dev/test-registry"))
            .arg("start")
            .arg(registry.dir.path())
            .arg(registry.port.to_string())
            .arg(mode)
            .output()
            .context("running dev/test-registry (dev/install-deps installs docker-registry)")?;
        if !output.status.success() {
            let log = std::fs::read_to_string(registry.dir.path().join("registry.log"))
                .unwrap_or_default();
            bail!(
                "the test registry did not start: {}\n{log}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(registry)
    }

    /// The CA, server and client certificates of an mtls registry.
    fn tls(&self) -> PathBuf {
        self.dir.path().join("tls")
    }

    /// Copies an archive from `images()` to `repository:tag` here.
    fn push(&self, archive: &str, name: &str) -> Result<()> {
        let mut push = Command::new(repo_root().join("dev/test-registry"));
        push.arg("push")
            .arg(images()?.join(archive))
            .arg(name)
            .arg(self.port.to_string());
        if self.tls().is_dir() {
            push.arg(self.dir.path());
        }
        let output = push.output()?;
        ensure!(
            output.status.success(),
            "pushing {archive} as {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many GETs of `path` this process sent (by the access log and our user agent), once
    /// there are `want` of them or 5 s have passed: the registry logs a request after answering.
    async fn gets(&self, path: &str, want: usize) -> Result<usize> {
        let request = format!("\"GET {path} HTTP/");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let log = std::fs::read_to_string(self.dir.path().join("registry.log"))?;
            let count = log
                .lines()
                .filter(|l| l.contains(&request) && l.contains("coxswain/"))
                .count();
            if count >= want || tokio::time::Instant::now() > deadline {
                return Ok(count);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if self.dir.path().join("registry.pid").exists() {
            let _ = Command::new(repo_root().join("dev/test-registry"))
                .arg("stop")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// The digest and size of the one manifest in an OCI archive.
fn archive_manifest(archive: &str) -> Result<(Digest, u64)> {
    let mut tar = tar::Archive::new(File::open(images()?.join(archive))?);
    for entry in tar.entries()? {
        let entry = entry?;
        if entry.path()?.as_os_str() == "index.json" {
            let index: oci::Index = serde_json::from_reader(entry)?;
            let manifest = index.manifests.first().context("empty index")?;
            return Ok((manifest.digest.clone(), manifest.size));
        }
    }
    bail!("{archive} has no index.json")
}

fn registries(yaml: &str) -> Result<Registries> {
    Registries::from_yaml(yaml).map_err(|e| anyhow!(e))
}

/// The registry as its own plain-HTTP mirror, as k3s users configure a local registry.
fn plain_http(registry: &TestRegistry) -> Result<Registries> {
    let host = registry.host();
    registries(&format!(
        "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{host}\"]\n"
    ))
}

fn reference(text: &str) -> Result<Reference> {
    Ok(Reference::parse(text)?)
}

fn temp_store() -> Result<(tempfile::TempDir, ImageStore)> {
    let dir = tempfile::tempdir()?;
    let store = ImageStore::open(dir.path().join("images"))?;
    Ok((dir, store))
}

/// What busybox.oci.tar holds, as a record must show it.
fn check_busybox(store: &ImageStore, record: &ImageRecord, name: &str) -> Result<()> {
    let (manifest_digest, _) = archive_manifest("busybox.oci.tar")?;
    assert_eq!(record.repo_tags, [name.to_string()]);
    let (repository, _) = name.rsplit_once(':').context("tagged name")?;
    assert_eq!(
        record.repo_digests,
        [format!("{repository}@{manifest_digest}")]
    );
    assert_eq!(
        record.config.config.cmd.as_deref(),
        Some(&["sh".to_string()][..])
    );
    assert_eq!(record.layers.len(), 1);
    let root = store.snapshot_path(&record.layers[0].diff_id);
    assert!(root.join("bin/busybox").is_file(), "layer unpacked");
    assert!(root.join("bin/sh").is_symlink());
    assert!(store.has_blob(&record.id) && store.has_blob(&record.layers[0].blob));
    let found = store
        .resolve(name)?
        .context("the store knows the image by name")?;
    assert_eq!(found.id, record.id);
    Ok(())
}

/// Against Debian's registry (`dev/test-registry`).
mod real_registry {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pulls_over_plain_http_with_progress() -> Result<()> {
        let registry = TestRegistry::start()?;
        registry.push("busybox.oci.tar", "library/busybox:1.36")?;
        let (_dir, store) = temp_store()?;
        let name = format!("{}/library/busybox:1.36", registry.host());
        let reports = Mutex::new(Vec::<PullProgress>::new());
        let record = pull(
            &store,
            &plain_http(&registry)?,
            &reference(&name)?,
            None,
            |update| reports.lock().expect("not poisoned").push(update),
        )
        .await?;
        check_busybox(&store, &record, &name)?;
        let reports = reports.into_inner().expect("not poisoned");
        for blob in [&record.id, &record.layers[0].blob] {
            let last = reports
                .iter()
                .rfind(|r| &r.digest == blob)
                .with_context(|| format!("progress for {blob}"))?;
            assert!(last.total > 0 && last.downloaded == last.total, "{last:?}");
        }

        // Again: nothing to download, the same image.
        let again = pull(
            &store,
            &plain_http(&registry)?,
            &reference(&name)?,
            None,
            |_| {},
        )
        .await?;
        assert_eq!(again.id, record.id);
        assert_eq!(
            registry
                .gets(&format!("/v2/library/busybox/blobs/{}", record.id), 1)
                .await?,
            1
        );
        Ok(())
    }

    /// HTTPS with the registry's CA and a client certificate from the registries file, and
    /// each piece missing; `insecure_skip_verify` in place of the CA.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pulls_over_https_with_the_ca_and_client_certificate_from_the_config() -> Result<()> {
        let registry = TestRegistry::start_mtls()?;
        registry.push("busybox.oci.tar", "library/busybox:tls")?;
        let (host, tls) = (registry.host(), registry.tls());
        let (ca, cert, key) = (
            tls.join("ca.pem"),
            tls.join("client.pem"),
            tls.join("client.key"),
        );
        let config = |settings: String| {
            registries(&format!(
                "configs:\n  \"{host}\":\n    tls: {{{settings}}}\n"
            ))
        };
        let name = format!("{host}/library/busybox:tls");
        let attempt = |config: Registries| {
            let name = name.clone();
            async move {
                let (_dir, store) = temp_store()?;
                let record = pull(&store, &config, &reference(&name)?, None, |_| {}).await?;
                check_busybox(&store, &record, &name)
            }
        };

        // The registry's certificate is signed by a CA nobody trusts.
        let refused = attempt(config(format!(
            "cert_file: {}, key_file: {}",
            cert.display(),
            key.display()
        ))?)
        .await;
        let message = format!("{:#}", refused.expect_err("an unknown CA must be refused"));
        assert!(
            message.contains(&host) && message.contains("certificate"),
            "the error names the registry and the certificate: {message}"
        );
        // The CA, but no client certificate: the registry refuses the handshake.
        let refused = attempt(config(format!("ca_file: {}", ca.display()))?).await;
        let message = format!(
            "{:#}",
            refused.expect_err("a registry demanding a client certificate refuses without")
        );
        assert!(message.contains(&host), "{message}");
        // Both: the pull works.
        attempt(config(format!(
            "ca_file: {}, cert_file: {}, key_file: {}",
            ca.display(),
            cert.display(),
            key.display()
        ))?)
        .await?;
        // Verification off instead of the CA.
        attempt(config(format!(
            "insecure_skip_verify: true, cert_file: {}, key_file: {}",
            cert.display(),
            key.display()
        ))?)
        .await?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pulls_docker_hub_images_through_a_mirror() -> Result<()> {
        let registry = TestRegistry::start()?;
        registry.push("busybox.oci.tar", "library/busybox:1.36")?;
        let (_dir, store) = temp_store()?;
        // The CA file that does not exist stops any attempt at the real Docker Hub before it
        // resolves a name, should the mirror fail: tests must not reach outside.
        let config = registries(&format!(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://{}\"]\n\
             configs:\n  registry-1.docker.io:\n    tls: {{ca_file: /nonexistent/ca.pem}}\n",
            registry.host()
        ))?;
        let name = "docker.io/library/busybox:1.36";
        let record = pull(&store, &config, &reference("busybox:1.36")?, None, |_| {}).await?;
        check_busybox(&store, &record, name)?;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follows_an_index_to_this_platform() -> Result<()> {
        let registry = TestRegistry::start()?;
        registry.push("busybox.oci.tar", "library/busybox:1.36")?;
        registry.push("nginx.oci.tar", "library/busybox:decoy")?;
        let (busybox, busybox_size) = archive_manifest("busybox.oci.tar")?;
        let (nginx, nginx_size) = archive_manifest("nginx.oci.tar")?;
        let other = match oci::host_architecture() {
            "arm64" => "amd64",
            _ => "arm64",
        };
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci::OCI_INDEX,
            "manifests": [
                {"mediaType": oci::OCI_MANIFEST, "digest": nginx, "size": nginx_size,
                 "platform": {"os": "linux", "architecture": other}},
                {"mediaType": oci::OCI_MANIFEST, "digest": busybox, "size": busybox_size,
                 "platform": {"os": "linux", "architecture": oci::host_architecture()}},
            ],
        });
        let body = serde_json::to_vec(&index)?;
        let index_digest = Digest::of(&body);
        let file = tempfile::NamedTempFile::new()?;
        std::fs::write(file.path(), &body)?;
        let status = Command::new("curl")
            .args(["-sSf", "-X", "PUT", "-H"])
            .arg(format!("Content-Type: {}", oci::OCI_INDEX))
            .arg("--data-binary")
            .arg(format!("@{}", file.path().display()))
            .arg(format!(
                "http://{}/v2/library/busybox/manifests/multi",
                registry.host()
            ))
            .status()?;
        ensure!(status.success(), "pushing the index");

        let (_dir, store) = temp_store()?;
        let name = format!("{}/library/busybox:multi", registry.host());
        let record = pull(
            &store,
            &plain_http(&registry)?,
            &reference(&name)?,
            None,
            |_| {},
        )
        .await?;
        assert_eq!(
            record.config.config.cmd.as_deref(),
            Some(&["sh".to_string()][..])
        );
        assert_eq!(
            record.repo_digests,
            [format!(
                "{}/library/busybox@{index_digest}",
                registry.host()
            )],
            "the repo digest is the index's"
        );

        // By digest, which the pull checks the bytes against.
        let by_digest = format!("{}/library/busybox@{index_digest}", registry.host());
        let record = pull(
            &store,
            &plain_http(&registry)?,
            &reference(&by_digest)?,
            None,
            |_| {},
        )
        .await?;
        assert!(record.repo_digests.contains(&by_digest));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_missing_tag_is_not_found() -> Result<()> {
        let registry = TestRegistry::start()?;
        registry.push("busybox.oci.tar", "library/busybox:1.36")?;
        let (_dir, store) = temp_store()?;
        let name = format!("{}/library/busybox:nosuch", registry.host());
        let outcome = pull(
            &store,
            &plain_http(&registry)?,
            &reference(&name)?,
            None,
            |_| {},
        )
        .await;
        let Err(ImageError::NotFound(message)) = outcome else {
            bail!("want NotFound, got {outcome:?}");
        };
        assert!(message.contains(&name), "{message}");
        assert!(message.contains("manifest unknown (404)"), "{message}");
        assert!(store.list()?.is_empty());
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_closed_port_is_a_clear_registry_error() -> Result<()> {
        let (_dir, store) = temp_store()?;
        let host = format!("127.0.0.1:{}", free_port()?);
        let name = format!("{host}/library/busybox:1.36");
        let config = registries(&format!(
            "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{host}\"]\n"
        ))?;
        let outcome = pull(&store, &config, &reference(&name)?, None, |_| {}).await;
        let Err(ImageError::Registry(message)) = outcome else {
            bail!("want a Registry error, got {outcome:?}");
        };
        assert!(
            message.starts_with(&format!("pulling {name}: {host}: ")),
            "{message}"
        );
        assert!(message.contains("Connection refused"), "{message}");
        assert!(!message.contains("client error"), "no noise: {message}");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_pulls_of_one_image_happen_once() -> Result<()> {
        let registry = TestRegistry::start()?;
        registry.push("busybox.oci.tar", "library/busybox:shared")?;
        let (_dir, store) = temp_store()?;
        let puller = Puller::new(store, plain_http(&registry)?);
        let name = reference(&format!("{}/library/busybox:shared", registry.host()))?;
        let heard = Mutex::new((0usize, 0usize));
        let (first, second) = tokio::join!(
            puller.pull(&name, None, |_| heard.lock().expect("not poisoned").0 += 1),
            puller.pull(&name, None, |_| heard.lock().expect("not poisoned").1 += 1),
        );
        let (first, second) = (first?, second?);
        assert_eq!(first.id, second.id);
        assert_eq!(
            registry
                .gets("/v2/library/busybox/manifests/shared", 1)
                .await?,
            1
        );
        assert_eq!(
            registry
                .gets(&format!("/v2/library/busybox/blobs/{}", first.id), 1)
                .await?,
            1
        );
        let (first_heard, _) = *heard.lock().expect("not poisoned");
        assert!(
            first_heard > 0,
            "the caller that started the pull hears its progress"
        );
        assert!(format!("{puller:?}").contains("pulling: []"), "{puller:?}");

        // Once done, a pull is a new pull.
        let third = puller.pull(&name, None, |_| {}).await?;
        assert_eq!(third.id, first.id);
        assert_eq!(
            registry
                .gets("/v2/library/busybox/manifests/shared", 2)
                .await?,
            2
        );
        Ok(())
    }
}

/// Scripted registries for what Debian's registry cannot show without a token server: bearer,
/// identity-token and basic authentication, redirects to another host, mirrors that lack an image, and
/// a registry that misstates a digest.
mod scripted_registry {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use anyhow::{Context, Result, bail};
    use base64::Engine as _;
    use cox_runtime::digest::Digest;
    use cox_runtime::images::oci;
    use cox_runtime::images::registry::{Credentials, pull};
    use cox_runtime::images::{ImageError, Reference};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A request as the server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        /// Path and query.
        target: String,
        authorization: Option<String>,
        body: String,
    }

    struct Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    }

    impl Reply {
        fn ok(content_type: &str, body: &[u8]) -> Self {
            Reply {
                status: 200,
                headers: vec![("Content-Type", content_type.to_string())],
                body: body.to_vec(),
            }
        }

        fn status(status: u16, headers: Vec<(&'static str, String)>) -> Self {
            let body = match status {
                404 => br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
                    .to_vec(),
                _ => Vec::new(),
            };
            Reply {
                status,
                headers,
                body,
            }
        }
    }

    type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

    /// An HTTP/1.1 server on loopback answering one request per connection.
    struct Server {
        address: SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        async fn bind() -> Result<(TcpListener, SocketAddr)> {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            Ok((listener, address))
        }

        fn serve(listener: TcpListener, handler: Handler) -> Result<Server> {
            let address = listener.local_addr()?;
            let seen = Arc::new(Mutex::new(Vec::new()));
            let task = tokio::spawn({
                let seen = Arc::clone(&seen);
                async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        let handler = Arc::clone(&handler);
                        let seen = Arc::clone(&seen);
                        tokio::spawn(async move {
                            let _ = answer(stream, handler, seen).await;
                        });
                    }
                }
            });
            Ok(Server {
                address,
                seen,
                task,
            })
        }

        fn host(&self) -> String {
            self.address.to_string()
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().expect("not poisoned").clone()
        }
    }

    async fn answer(
        stream: tokio::net::TcpStream,
        handler: Handler,
        seen: Arc<Mutex<Vec<Seen>>>,
    ) -> Result<()> {
        let mut stream = BufReader::new(stream);
        let mut line = String::new();
        stream.read_line(&mut line).await?;
        let mut request_line = line.split_whitespace();
        let method = request_line.next().context("request line")?.to_string();
        let target = request_line.next().context("request line")?.to_string();
        let (mut authorization, mut length) = (None, 0usize);
        loop {
            line.clear();
            stream.read_line(&mut line).await?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').context("header")?;
            match name.to_ascii_lowercase().as_str() {
                "authorization" => authorization = Some(value.trim().to_string()),
                "content-length" => length = value.trim().parse()?,
                _ => {}
            }
        }
        let mut body = vec![0; length];
        stream.read_exact(&mut body).await?;
        let request = Seen {
            method,
            target,
            authorization,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        seen.lock().expect("not poisoned").push(request.clone());
        let reply = handler(&request);
        let mut head = format!(
            "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = stream.get_mut();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&reply.body).await?;
        stream.shutdown().await?;
        Ok(())
    }

    /// A one-layer image: the layer tar, the config and the manifest, with their digests.
    struct Image {
        layer: Vec<u8>,
        config: Vec<u8>,
        manifest: Vec<u8>,
    }

    impl Image {
        fn new() -> Result<Image> {
            let mut tar = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_path("hello.txt")?;
            header.set_size(5);
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_cksum();
            tar.append(&header, &b"hello"[..])?;
            let layer = tar.into_inner()?;
            let config = serde_json::to_vec(&serde_json::json!({
                "architecture": oci::host_architecture(), "os": "linux",
                "config": {"Cmd": ["/hello"]},
                "rootfs": {"type": "layers", "diff_ids": [Digest::of(&layer)]},
            }))?;
            let manifest = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": Digest::of(&config), "size": config.len()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": Digest::of(&layer), "size": layer.len()}],
            }))?;
            Ok(Image {
                layer,
                config,
                manifest,
            })
        }

        /// Serves the image as `repository` under any tag; `None` for other paths.
        fn serve(&self, repository: &str, target: &str) -> Option<Reply> {
            let rest = target.strip_prefix(&format!("/v2/{repository}/"))?;
            if rest.starts_with("manifests/") {
                return Some(Reply::ok(oci::OCI_MANIFEST, &self.manifest));
            }
            let digest = rest.strip_prefix("blobs/")?;
            [&self.config, &self.layer]
                .into_iter()
                .find(|blob| Digest::of(blob).as_str() == digest)
                .map(|blob| Reply::ok("application/octet-stream", blob))
        }
    }

    fn basic(username: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        format!("Basic {encoded}")
    }

    fn temp_store() -> Result<(tempfile::TempDir, cox_runtime::images::ImageStore)> {
        super::temp_store()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bearer_tokens_and_redirects_to_another_host() -> Result<()> {
        let image = Arc::new(Image::new()?);
        let layer_digest = Digest::of(&image.layer);
        let (cdn_listener, cdn_address) = Server::bind().await?;
        let cdn = Server::serve(cdn_listener, {
            let image = Arc::clone(&image);
            Arc::new(move |seen: &Seen| match seen.authorization {
                Some(_) => Reply::status(403, vec![]),
                None => Reply::ok("application/octet-stream", &image.layer),
            })
        })?;
        let (listener, address) = Server::bind().await?;
        let registry = Server::serve(listener, {
            let image = Arc::clone(&image);
            Arc::new(move |seen: &Seen| {
                if seen.target.starts_with("/token?") {
                    return match seen.authorization.as_deref() == Some(&basic("alice", "s3cret")) {
                        true => Reply::ok("application/json", br#"{"access_token":"t0k"}"#),
                        false => Reply::status(401, vec![]),
                    };
                }
                if seen.authorization.as_deref() != Some("Bearer t0k") {
                    let challenge = format!(
                        r#"Bearer realm="http://{address}/token",service="scripted",scope="repository:team/app:pull""#
                    );
                    return Reply::status(401, vec![("WWW-Authenticate", challenge)]);
                }
                if seen.target.ends_with(layer_digest.as_str()) {
                    let location = format!("http://{cdn_address}/layer");
                    return Reply::status(307, vec![("Location", location)]);
                }
                image
                    .serve("team/app", &seen.target)
                    .unwrap_or_else(|| Reply::status(404, vec![]))
            })
        })?;
        let host = registry.host();
        let config = super::registries(&format!(
            "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{host}\"]\n"
        ))?;
        let name = Reference::parse(&format!("{host}/team/app:v1"))?;
        let (_dir, store) = temp_store()?;
        let credentials = Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let record = pull(&store, &config, &name, Some(credentials), |_| {}).await?;
        assert_eq!(
            record.config.config.cmd.as_deref(),
            Some(&["/hello".to_string()][..])
        );
        let snapshot = store.snapshot_path(&record.layers[0].diff_id);
        assert_eq!(std::fs::read(snapshot.join("hello.txt"))?, b"hello");

        let seen = registry.seen();
        let tokens: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.target.starts_with("/token"))
            .collect();
        assert_eq!(tokens.len(), 1, "one token for the whole pull: {seen:?}");
        assert!(tokens[0].target.contains("service=scripted"), "{tokens:?}");
        assert!(
            tokens[0]
                .target
                .contains("scope=repository%3Ateam%2Fapp%3Apull"),
            "{tokens:?}"
        );
        let cdn_seen = cdn.seen();
        assert_eq!(cdn_seen.len(), 1, "{cdn_seen:?}");
        assert_eq!(cdn_seen[0].authorization, None, "no token for another host");

        // Without credentials the token service refuses, and the error says where and why.
        let (_dir, store) = temp_store()?;
        let outcome = pull(&store, &config, &name, None, |_| {}).await;
        let Err(ImageError::Registry(message)) = outcome else {
            bail!("want a Registry error, got {outcome:?}");
        };
        assert!(
            message.contains(&format!("{host}: token service {host}: unauthorized (401)")),
            "{message}"
        );
        Ok(())
    }

    /// An identity token from the registries file is an OAuth2 refresh token: POSTed to the
    /// token service, which answers with the access token the pull then uses.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identity_tokens_are_exchanged_for_access_tokens() -> Result<()> {
        let image = Arc::new(Image::new()?);
        let (listener, address) = Server::bind().await?;
        let registry = Server::serve(listener, {
            let image = Arc::clone(&image);
            Arc::new(move |seen: &Seen| {
                if seen.target.starts_with("/oauth") {
                    let form: Vec<&str> = seen.body.split('&').collect();
                    let granted = seen.method == "POST"
                        && form.contains(&"grant_type=refresh_token")
                        && form.contains(&"refresh_token=refresh-me")
                        && form.contains(&"client_id=coxswain")
                        && form.contains(&"service=scripted")
                        && form.contains(&"scope=repository%3Ateam%2Fapp%3Apull");
                    return match granted {
                        true => Reply::ok("application/json", br#"{"access_token":"fresh"}"#),
                        false => Reply::status(401, vec![]),
                    };
                }
                if seen.authorization.as_deref() != Some("Bearer fresh") {
                    let challenge =
                        format!(r#"Bearer realm="http://{address}/oauth",service="scripted""#);
                    return Reply::status(401, vec![("WWW-Authenticate", challenge)]);
                }
                image
                    .serve("team/app", &seen.target)
                    .unwrap_or_else(|| Reply::status(404, vec![]))
            })
        })?;
        let host = registry.host();
        let config = |token: &str| {
            super::registries(&format!(
                "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{host}\"]\n\
                 configs:\n  \"{host}\":\n    auth: {{identitytoken: {token}}}\n"
            ))
        };
        let name = Reference::parse(&format!("{host}/team/app:v1"))?;
        let (_dir, store) = temp_store()?;
        let record = pull(&store, &config("refresh-me")?, &name, None, |_| {}).await?;
        assert_eq!(
            record.config.config.cmd.as_deref(),
            Some(&["/hello".to_string()][..])
        );
        let seen = registry.seen();
        let exchanges: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.target.starts_with("/oauth"))
            .collect();
        assert_eq!(exchanges.len(), 1, "one exchange for the pull: {seen:?}");
        assert_eq!(exchanges[0].authorization, None, "{exchanges:?}");

        // A token the service does not know: refused, and said so.
        let (_dir, store) = temp_store()?;
        let outcome = pull(&store, &config("stale")?, &name, None, |_| {}).await;
        let Err(ImageError::Registry(message)) = outcome else {
            bail!("want a Registry error, got {outcome:?}");
        };
        assert!(
            message.contains(&format!("token service {host}: unauthorized (401)")),
            "{message}"
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn basic_auth_from_the_config_and_mirrors_that_lack_the_image() -> Result<()> {
        let image = Arc::new(Image::new()?);
        let (listener, _) = Server::bind().await?;
        let registry = Server::serve(listener, {
            let image = Arc::clone(&image);
            Arc::new(move |seen: &Seen| {
                if seen.authorization.as_deref() != Some(&basic("bob", "pw")) {
                    let challenge = r#"Basic realm="scripted""#.to_string();
                    return Reply::status(401, vec![("WWW-Authenticate", challenge)]);
                }
                if seen.target.ends_with("/manifests/lying") {
                    let mut reply = Reply::ok(oci::OCI_MANIFEST, &image.manifest);
                    let wrong = format!("sha256:{}", "0".repeat(64));
                    reply.headers.push(("Docker-Content-Digest", wrong));
                    return reply;
                }
                image
                    .serve("app", &seen.target)
                    .unwrap_or_else(|| Reply::status(404, vec![]))
            })
        })?;
        let (listener, _) = Server::bind().await?;
        let empty_mirror =
            Server::serve(listener, Arc::new(|_: &Seen| Reply::status(404, vec![])))?;
        let (host, mirror) = (registry.host(), empty_mirror.host());
        let config = super::registries(&format!(
            "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{mirror}\", \"http://{host}\"]\n\
             configs:\n  \"{host}\":\n    auth: {{username: bob, password: pw}}\n"
        ))?;

        let (_dir, store) = temp_store()?;
        let name = Reference::parse(&format!("{host}/app:v1"))?;
        let record = pull(&store, &config, &name, None, |_| {}).await?;
        assert_eq!(record.repo_tags, [format!("{host}/app:v1")]);
        let asked_mirror: Vec<String> = empty_mirror.seen().into_iter().map(|s| s.target).collect();
        assert!(
            asked_mirror.contains(&"/v2/app/manifests/v1".to_string()),
            "the mirror is asked first: {asked_mirror:?}"
        );

        let lying = Reference::parse(&format!("{host}/app:lying"))?;
        let outcome = pull(&store, &config, &lying, None, |_| {}).await;
        assert!(
            matches!(outcome, Err(ImageError::DigestMismatch { .. })),
            "{outcome:?}"
        );

        // Every endpoint says 404: not found, naming each.
        let missing = Reference::parse(&format!("{host}/nosuch:v1"))?;
        let outcome = pull(&store, &config, &missing, None, |_| {}).await;
        let Err(ImageError::NotFound(message)) = outcome else {
            bail!("want NotFound, got {outcome:?}");
        };
        assert!(
            message.contains(&format!(
                "{mirror}: manifest unknown (404); {host}: manifest unknown (404)"
            )),
            "{message}"
        );

        // Without the configured password the registry's challenge cannot be answered.
        let (_dir, store) = temp_store()?;
        let anonymous = super::registries(&format!(
            "mirrors:\n  \"{host}\":\n    endpoint: [\"http://{host}\"]\n"
        ))?;
        let outcome = pull(&store, &anonymous, &name, None, |_| {}).await;
        let Err(ImageError::Registry(message)) = outcome else {
            bail!("want a Registry error, got {outcome:?}");
        };
        assert!(
            message.contains("wants a user name and password"),
            "{message}"
        );
        Ok(())
    }
}
