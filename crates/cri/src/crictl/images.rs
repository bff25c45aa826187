//! Image commands: `images`, `pull`, `rmi`, `inspecti`, `imagefsinfo`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use super::inspect::{self, ListFormat, StatusFormat};
use super::output::{self, Table};
use super::session::{Deadline, Session};
use super::timestamps::parse_optional_duration;
use super::{filters, lookup, protojson};
use crate::v1::{
    AuthConfig, FilesystemUsage, Image, ImageFilter, ImageFsInfoRequest, ImageSpec,
    ListImagesRequest, ListImagesResponse, PodSandboxConfig, PullImageRequest, RemoveImageRequest,
};

/// Registry credentials and the pull timeout, shared by `pull` and `create --with-pull`.
/// (Their environment values are secrets: `--help` does not show them.)
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct PullAuthArgs {
    /// Use USERNAME[:PASSWORD] for accessing the registry
    #[arg(
        long,
        env = "CRICTL_CREDS",
        hide_env_values = true,
        value_name = "USERNAME[:PASSWORD]"
    )]
    creds: Option<String>,
    /// Use AUTH_STRING (base64 of USERNAME[:PASSWORD]) for accessing the registry
    #[arg(
        long,
        env = "CRICTL_AUTH",
        hide_env_values = true,
        value_name = "AUTH_STRING"
    )]
    auth: Option<String>,
    /// Maximum time to be used for pulling the image, disabled if set to 0s
    #[arg(
        long,
        visible_alias = "pt",
        env = "CRICTL_PULL_TIMEOUT",
        value_parser = parse_optional_duration,
        default_value = "0s"
    )]
    pub(crate) pull_timeout: Duration,
}

impl PullAuthArgs {
    /// The credentials to send, if any were given.
    pub(crate) fn auth_config(&self) -> anyhow::Result<Option<AuthConfig>> {
        auth_config(self.creds.as_deref(), self.auth.as_deref())
    }
}

/// `cox crictl images`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImagesArgs {
    /// Only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
    /// Show verbose info for images
    #[arg(short, long)]
    verbose: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Output format
    #[arg(short, long, value_enum, default_value = "table")]
    output: ListFormat,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Show output without truncating the ID
    #[arg(long)]
    no_trunc: bool,
    /// Show whether the image is pinned or not
    #[arg(long)]
    pinned: bool,
}

/// `cox crictl pull`.
#[derive(Debug, clap::Args)]
pub(crate) struct PullArgs {
    /// The image to pull
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    image: String,
    /// Use pod-config.json for the pull
    #[arg(long, value_name = "POD-CONFIG.json")]
    pod_config: Option<PathBuf>,
    /// Annotation to be set on the pulled image (key=value)
    #[arg(short, long)]
    annotation: Vec<String>,
    #[command(flatten)]
    auth: PullAuthArgs,
}

/// `cox crictl rmi`.
#[derive(Debug, clap::Args)]
pub(crate) struct RmiArgs {
    /// The images: references, IDs or unique ID prefixes
    #[arg(value_name = "IMAGE-ID", required_unless_present_any = ["all", "prune"])]
    images: Vec<String>,
    /// Remove all images
    #[arg(short, long)]
    all: bool,
    /// Remove all unused images
    #[arg(short = 'q', long)]
    prune: bool,
}

/// `cox crictl inspecti`.
#[derive(Debug, clap::Args)]
pub(crate) struct InspectiArgs {
    /// The images: references, IDs or unique ID prefixes (all if none)
    #[arg(value_name = "IMAGE-ID")]
    images: Vec<String>,
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    output: StatusFormat,
    /// Do not show verbose information
    #[arg(short, long)]
    quiet: bool,
    /// Filter by image name
    #[arg(long)]
    name: Option<String>,
}

/// `cox crictl imagefsinfo`.
#[derive(Debug, clap::Args)]
pub(crate) struct ImageFsInfoArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "json")]
    output: StatusFormat,
}

/// Registry credentials from `--creds user[:password]` or `--auth base64`.
pub(crate) fn auth_config(
    creds: Option<&str>,
    auth: Option<&str>,
) -> anyhow::Result<Option<AuthConfig>> {
    match (creds, auth) {
        (Some(_), Some(_)) => anyhow::bail!("both `--creds` and `--auth` are specified"),
        (Some(creds), None) => {
            if creds.is_empty() {
                anyhow::bail!("credentials can't be empty");
            }
            let (username, password) = creds.split_once(':').unwrap_or((creds, ""));
            if username.is_empty() {
                anyhow::bail!("username can't be empty");
            }
            Ok(Some(AuthConfig {
                username: username.to_string(),
                password: password.to_string(),
                ..AuthConfig::default()
            }))
        }
        (None, Some(auth)) => Ok(Some(AuthConfig {
            auth: auth.to_string(),
            ..AuthConfig::default()
        })),
        (None, None) => Ok(None),
    }
}

/// Pulls `image`; returns the reference the runtime gives the pulled image. A zero `timeout`
/// is no limit.
pub(crate) async fn pull_image(
    session: &mut Session,
    image: &str,
    auth: Option<AuthConfig>,
    sandbox_config: Option<PodSandboxConfig>,
    annotations: HashMap<String, String>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let mut client = session.images().await?;
    let deadline = if timeout.is_zero() {
        Deadline::none()
    } else {
        Deadline::after(timeout)
    };
    let request = PullImageRequest {
        image: Some(ImageSpec {
            image: image.to_string(),
            annotations,
            ..ImageSpec::default()
        }),
        auth,
        sandbox_config,
    };
    let response = match deadline
        .call(client.pull_image(deadline.request(request)))
        .await
    {
        Ok(response) => response,
        // As crictl's client: an Unknown code adds nothing to the runtime's message.
        Err(error) if error.code() == tonic::Code::Unknown => {
            anyhow::bail!("{}", error.0.message())
        }
        Err(error) => return Err(error.into()),
    };
    if response.image_ref.is_empty() {
        anyhow::bail!("imageRef of image {image:?} is not set");
    }
    Ok(response.image_ref)
}

/// The sort key of an image listing: its first tag, else its first digest, else its ID.
fn sort_key(image: &Image) -> &str {
    image
        .repo_tags
        .first()
        .or(image.repo_digests.first())
        .map_or(image.id.as_str(), String::as_str)
}

/// Splits `repo@digest`: `("<none>", "<none>")` without digests.
fn repo_digest(repo_digests: &[String]) -> (String, String) {
    let Some(first) = repo_digests.first() else {
        return ("<none>".to_string(), "<none>".to_string());
    };
    let parts: Vec<&str> = first.split('@').collect();
    match parts.as_slice() {
        [repo, digest] => ((*repo).to_string(), (*digest).to_string()),
        _ => ("errorName".to_string(), "errorRepoDigest".to_string()),
    }
}

/// `(repository, tag)` rows of an image: one per tag, or the digest's repository with `<none>`.
fn repo_tag_pairs(repo_tags: &[String], image_name: &str) -> Vec<(String, String)> {
    if repo_tags.is_empty() {
        return vec![(image_name.to_string(), "<none>".to_string())];
    }
    repo_tags
        .iter()
        .map(|repo_tag| match repo_tag.rfind(':') {
            Some(colon) => {
                let name = &repo_tag[..colon];
                let name = if name == "<none>" { image_name } else { name };
                (name.to_string(), repo_tag[colon + 1..].to_string())
            }
            None => ("errorRepoTag".to_string(), "errorRepoTag".to_string()),
        })
        .collect()
}

/// The `images` table.
pub(crate) fn images_table(
    images: &[Image],
    digests: bool,
    pinned: bool,
    no_trunc: bool,
) -> String {
    let mut table = Table::new();
    let mut header = vec!["IMAGE", "TAG"];
    if digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "SIZE"]);
    if pinned {
        header.push("PINNED");
    }
    table.row(header);
    for image in images {
        let (name, mut digest) = repo_digest(&image.repo_digests);
        let size = output::human_size_with_precision(image.size as f64, 3);
        let mut id = image.id.clone();
        if !no_trunc {
            id = output::truncate_id(&id, "sha256:");
            digest = output::truncate_id(&digest, "sha256:");
        }
        for (repository, tag) in repo_tag_pairs(&image.repo_tags, &name) {
            let mut row = vec![repository, tag];
            if digests {
                row.push(digest.clone());
            }
            row.extend([id.clone(), size.clone()]);
            if pinned {
                row.push(image.pinned.to_string());
            }
            table.row(row);
        }
    }
    table.render()
}

/// `images --verbose`.
pub(crate) fn images_verbose(images: &[Image]) -> String {
    let mut text = String::new();
    for image in images {
        let _ = writeln!(text, "ID: {}", image.id);
        for tag in &image.repo_tags {
            let _ = writeln!(text, "RepoTags: {tag}");
        }
        for digest in &image.repo_digests {
            let _ = writeln!(text, "RepoDigests: {digest}");
        }
        if image.size != 0 {
            let _ = writeln!(text, "Size: {}", image.size);
        }
        if let Some(uid) = &image.uid {
            let _ = writeln!(text, "Uid: value:{}", uid.value);
        }
        if !image.username.is_empty() {
            let _ = writeln!(text, "Username: {}", image.username);
        }
        if image.pinned {
            let _ = writeln!(text, "Pinned: true");
        }
        text.push('\n');
    }
    text
}

async fn list_images(session: &mut Session, reference: Option<&str>) -> anyhow::Result<Vec<Image>> {
    let mut client = session.images().await?;
    let deadline = session.deadline();
    let request = ListImagesRequest {
        filter: Some(ImageFilter {
            image: Some(ImageSpec {
                image: reference.unwrap_or_default().to_string(),
                ..ImageSpec::default()
            }),
        }),
    };
    let mut images = deadline
        .call(client.list_images(deadline.request(request)))
        .await
        .context("listing images")?
        .images;
    images.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
    Ok(images)
}

/// Runs `images`.
pub(crate) async fn images(session: &mut Session, args: ImagesArgs) -> anyhow::Result<()> {
    let images = list_images(session, args.reference.as_deref()).await?;
    let text = match args.output {
        ListFormat::Json | ListFormat::Yaml => inspect::render_list(
            protojson::to_json(&ListImagesResponse { images })?,
            args.output,
        ),
        ListFormat::Table if args.quiet => images
            .iter()
            .map(|image| format!("{}\n", image.id))
            .collect(),
        ListFormat::Table if args.verbose => images_verbose(&images),
        ListFormat::Table => images_table(&images, args.digests, args.pinned, args.no_trunc),
    };
    session.print(text)?;
    Ok(())
}

/// Runs `pull`.
pub(crate) async fn pull(session: &mut Session, args: PullArgs) -> anyhow::Result<()> {
    if args.image.is_empty() {
        anyhow::bail!("image name cannot be empty");
    }
    let auth = args.auth.auth_config()?;
    let sandbox_config = match &args.pod_config {
        Some(path) => Some(
            super::config::load_pod_config(path)
                .await
                .context("load podSandboxConfig")?,
        ),
        None => None,
    };
    let annotations = filters::parse_labels(&args.annotation)?;
    let image_ref = pull_image(
        session,
        &args.image,
        auth,
        sandbox_config,
        annotations,
        args.auth.pull_timeout,
    )
    .await
    .context("pulling image")?;
    session.print(format!("Image is up to date for {image_ref}\n"))?;
    Ok(())
}

/// Runs `rmi`.
pub(crate) async fn rmi(session: &mut Session, args: RmiArgs) -> anyhow::Result<()> {
    // Names in order, without repeats; `false` marks an image in use (kept by --prune).
    let mut names: Vec<String> = Vec::new();
    let mut keep: BTreeSet<String> = BTreeSet::new();
    for name in &args.images {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    if args.all || args.prune {
        for image in lookup::all_images(session).await? {
            if args.prune && image.pinned {
                continue;
            }
            if !names.contains(&image.id) {
                names.push(image.id);
            }
        }
    }
    if args.prune {
        for container in lookup::all_containers(session).await? {
            let reference = container.image.map(|image| image.image).unwrap_or_default();
            match lookup::image_status(session, &reference, false).await {
                Ok((Some(image), _)) => {
                    keep.insert(image.id);
                }
                Ok((None, _)) => {}
                Err(error) => output::warn(format_args!(
                    "image status request for {reference:?} failed: {error:#}"
                )),
            }
        }
        names.retain(|name| !keep.contains(name));
    }
    if names.is_empty() {
        output::info("No images to remove");
        return Ok(());
    }
    let mut failures = Vec::new();
    for name in &names {
        if let Err(error) = remove_image(session, name, args.prune).await {
            failures.push(format!("{error:#}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", failures.join("; "))
    }
}

async fn remove_image(session: &mut Session, name: &str, prune: bool) -> anyhow::Result<()> {
    let Some((reference, image, _)) = lookup::image(session, name, false)
        .await
        .with_context(|| format!("image status request for {name:?} failed"))?
    else {
        anyhow::bail!("no such image {name}");
    };
    if image.repo_tags.len() > 1
        && !name.starts_with("sha256:")
        && (name.contains(':') || name.contains('/'))
    {
        output::warn(format_args!(
            "Image {name:?} has multiple tags. Removing this image will delete all of the following tags:"
        ));
        for tag in &image.repo_tags {
            output::warn(format_args!("  {tag}"));
        }
    }
    let mut client = session.images().await?;
    let deadline = session.deadline();
    let removed = deadline
        .call(client.remove_image(deadline.request(RemoveImageRequest {
            image: Some(ImageSpec {
                image: reference,
                ..ImageSpec::default()
            }),
        })))
        .await;
    if let Err(error) = removed {
        // A prune races with the runtime's own garbage collection; crictl ignores those.
        if prune {
            return Ok(());
        }
        return Err(anyhow::Error::new(error).context(format!("error of removing image {name:?}")));
    }
    let deleted = if image.repo_tags.is_empty() {
        &image.repo_digests
    } else {
        &image.repo_tags
    };
    let text: String = deleted
        .iter()
        .map(|name| format!("Deleted: {name}\n"))
        .collect();
    session.print(text)?;
    Ok(())
}

/// `inspecti -o table`.
pub(crate) fn image_status_table(
    image: &Image,
    info: &HashMap<String, String>,
    verbose: bool,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "ID: {}", image.id);
    for tag in &image.repo_tags {
        let _ = writeln!(text, "Tag: {tag}");
    }
    for digest in &image.repo_digests {
        let _ = writeln!(text, "Digest: {digest}");
    }
    let _ = writeln!(
        text,
        "Size: {}",
        output::human_size_with_precision(image.size as f64, 3)
    );
    if verbose {
        let _ = writeln!(text, "Info: {}", super::pods::go_map(info));
    }
    text
}

/// Runs `inspecti`.
pub(crate) async fn inspecti(session: &mut Session, args: InspectiArgs) -> anyhow::Result<()> {
    let names = if args.images.is_empty() {
        let images = list_images(session, args.name.as_deref()).await?;
        if images.is_empty() {
            anyhow::bail!("no IDs provided or nothing found per filter");
        }
        images.into_iter().map(|image| image.id).collect()
    } else {
        args.images.clone()
    };
    let verbose = !args.quiet;
    let mut documents = Vec::new();
    let mut tables = String::new();
    for name in &names {
        let Some((_, image, info)) = lookup::image(session, name, verbose)
            .await
            .with_context(|| format!("image status for {name:?} request"))?
        else {
            anyhow::bail!("no such image {name:?} present");
        };
        if args.output == StatusFormat::Table {
            tables.push_str(&image_status_table(&image, &info, verbose));
        } else {
            documents.push(inspect::status_document(
                Some(protojson::to_json(&image)?),
                Vec::new(),
                &info,
            ));
        }
    }
    if args.output == StatusFormat::Table {
        session.print(tables)?;
    } else {
        session.print(inspect::render_documents(documents, args.output))?;
    }
    Ok(())
}

/// `imagefsinfo -o table`.
fn filesystems_table(label: &str, filesystems: &[FilesystemUsage]) -> String {
    let mut text = format!("{label} Filesystem \n");
    for (index, usage) in filesystems.iter().enumerate() {
        let used = usage.used_bytes.as_ref().map_or(0, |used| used.value);
        let inodes = usage.inodes_used.as_ref().map_or(0, |inodes| inodes.value);
        let mountpoint = usage.fs_id.as_ref().map_or("", |id| id.mountpoint.as_str());
        let _ = writeln!(text, "TimeStamp[{index}]: {}", usage.timestamp);
        let _ = writeln!(text, "Disk[{index}]: {}", output::human_size(used));
        let _ = writeln!(text, "Inodes[{index}]: {inodes}");
        let _ = writeln!(text, "Mountpoint[{index}]: {mountpoint}");
    }
    text
}

/// Runs `imagefsinfo`.
pub(crate) async fn imagefsinfo(
    session: &mut Session,
    args: ImageFsInfoArgs,
) -> anyhow::Result<()> {
    let mut client = session.images().await?;
    let deadline = session.deadline();
    let response = deadline
        .call(client.image_fs_info(deadline.request(ImageFsInfoRequest {})))
        .await
        .context("image filesystem info request")?;
    let text = if args.output == StatusFormat::Table {
        filesystems_table("Container", &response.container_filesystems)
            + &filesystems_table("Image", &response.image_filesystems)
    } else {
        let document = inspect::status_document(
            Some(protojson::to_json(&response)?),
            Vec::new(),
            &HashMap::new(),
        );
        inspect::render_documents(vec![document], args.output)
    };
    session.print(text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{FilesystemIdentifier, UInt64Value};

    fn image(id: &str, tags: &[&str], digests: &[&str], size: u64) -> Image {
        Image {
            id: id.to_string(),
            repo_tags: tags.iter().map(|t| (*t).to_string()).collect(),
            repo_digests: digests.iter().map(|d| (*d).to_string()).collect(),
            size,
            ..Image::default()
        }
    }

    #[test]
    fn images_table_matches_crictl() {
        let images = vec![
            image(
                "sha256:8e1d7573f448dc8d132739037483ef4a3fc5b3b0a2ea9f2d8b5e0f2a1b3c4d5e",
                &[
                    "docker.io/library/busybox:1.36",
                    "docker.io/library/busybox:latest",
                ],
                &[
                    "docker.io/library/busybox@sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7",
                ],
                2_155_790,
            ),
            image(
                "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                &[],
                &[
                    "registry.k8s.io/pause@sha256:2222222222222222222222222222222222222222222222222222222222222222",
                ],
                321_520,
            ),
        ];
        let expected = "\
IMAGE                       TAG                 IMAGE ID            SIZE
docker.io/library/busybox   1.36                8e1d7573f448d       2.16MB
docker.io/library/busybox   latest              8e1d7573f448d       2.16MB
registry.k8s.io/pause       <none>              1111111111111       322kB
";
        assert_eq!(images_table(&images, false, false, false), expected);

        let with_digests = images_table(&images[1..], true, true, false);
        let expected = "\
IMAGE                   TAG                 DIGEST              IMAGE ID            SIZE                PINNED
registry.k8s.io/pause   <none>              2222222222222       1111111111111       322kB               false
";
        assert_eq!(with_digests, expected);
    }

    #[test]
    fn repo_tags_and_digests_split_like_crictl() {
        assert_eq!(
            repo_tag_pairs(&["localhost:5000/app:v1".to_string()], "x"),
            [("localhost:5000/app".to_string(), "v1".to_string())]
        );
        assert_eq!(
            repo_tag_pairs(&["<none>:<none>".to_string()], "repo"),
            [("repo".to_string(), "<none>".to_string())]
        );
        assert_eq!(
            repo_tag_pairs(&["notag".to_string()], "repo"),
            [("errorRepoTag".to_string(), "errorRepoTag".to_string())]
        );
        assert_eq!(
            repo_digest(&[]),
            ("<none>".to_string(), "<none>".to_string())
        );
        assert_eq!(
            repo_digest(&["a@b@c".to_string()]),
            ("errorName".to_string(), "errorRepoDigest".to_string())
        );
    }

    #[test]
    fn images_sort_by_tag_then_digest_then_id() {
        let mut images = [
            image("sha256:c", &[], &[], 0),
            image("sha256:b", &["zeta:1"], &[], 0),
            image("sha256:a", &[], &["alpha@sha256:1"], 0),
            image("sha256:d", &["beta:1"], &[], 0),
        ];
        images.sort_by(|a, b| sort_key(a).cmp(sort_key(b)));
        let ids: Vec<&str> = images.iter().map(|image| image.id.as_str()).collect();
        assert_eq!(ids, ["sha256:a", "sha256:d", "sha256:c", "sha256:b"]);
    }

    #[test]
    fn verbose_images() {
        let mut busybox = image("sha256:1", &["busybox:latest"], &[], 1234);
        busybox.uid = Some(crate::v1::Int64Value { value: 0 });
        busybox.pinned = true;
        assert_eq!(
            images_verbose(&[busybox]),
            "ID: sha256:1\nRepoTags: busybox:latest\nSize: 1234\nUid: value:0\nPinned: true\n\n"
        );
    }

    #[test]
    fn credentials() {
        let auth = auth_config(Some("me:secret:more"), None)
            .expect("valid")
            .expect("some");
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("me", "secret:more")
        );
        let auth = auth_config(Some("me"), None).expect("valid").expect("some");
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("me", ""));
        let auth = auth_config(None, Some("bWU6cHc="))
            .expect("valid")
            .expect("some");
        assert_eq!(auth.auth, "bWU6cHc=");
        assert!(auth_config(None, None).expect("valid").is_none());
        for (creds, auth, message) in [
            (
                Some("a:b"),
                Some("x"),
                "both `--creds` and `--auth` are specified",
            ),
            (Some(""), None, "credentials can't be empty"),
            (Some(":pw"), None, "username can't be empty"),
        ] {
            assert_eq!(
                auth_config(creds, auth).expect_err("invalid").to_string(),
                message
            );
        }
    }

    #[test]
    fn image_fs_info_table() {
        let usage = FilesystemUsage {
            timestamp: 1_714_557_600_000_000_000,
            fs_id: Some(FilesystemIdentifier {
                mountpoint: "/var/lib/cox/images".into(),
            }),
            used_bytes: Some(UInt64Value { value: 123_456_789 }),
            inodes_used: Some(UInt64Value { value: 4242 }),
        };
        assert_eq!(
            filesystems_table("Image", &[usage]),
            "Image Filesystem \nTimeStamp[0]: 1714557600000000000\nDisk[0]: 123.5MB\nInodes[0]: 4242\nMountpoint[0]: /var/lib/cox/images\n"
        );
    }
}
