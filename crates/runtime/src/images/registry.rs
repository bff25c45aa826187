//! Pulling images over the OCI distribution protocol: the manifest (through an index to this
//! platform's manifest), then the config and layer blobs streamed into the store, with token or
//! basic authentication and the configured mirrors tried in order. [`Puller`] pulls an image
//! once however many ask for it at the same time.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use bytes::{Buf, Bytes};
use futures::future::{BoxFuture, FutureExt, Shared};
use futures::{StreamExt, TryStreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::{broadcast, mpsc};

use super::oci::{self, Descriptor, Index, Manifest};
use super::reference::Reference;
pub use super::registries::Credentials;
use super::registries::{Endpoint, Registries, TlsConfig};
use super::store::{ImageError, ImageRecord, ImageStore};
use crate::digest::Digest;

/// How long to wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for a response's status and headers once the request is sent.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a body may go without a byte before the transfer counts as stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Manifests and indexes larger than this are refused (the OCI spec suggests 4 MiB).
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Token and error responses larger than this are refused.
const MAX_SMALL_BODY_BYTES: usize = 1 << 20;
const MAX_REDIRECTS: usize = 10;
/// Blobs downloaded at once in one pull.
const PARALLEL_BLOBS: usize = 3;
/// Body chunks queued between the network and the blocking blob writer.
const CHUNKS_IN_FLIGHT: usize = 16;
/// Progress reports kept for slow listeners of a shared pull; older ones are skipped.
const PROGRESS_BACKLOG: usize = 64;
const USER_AGENT: &str = concat!("coxswain/", env!("CARGO_PKG_VERSION"));
/// The OAuth2 client ID sent with identity tokens.
const CLIENT_ID: &str = "coxswain";
const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// How far one blob of a pull has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub digest: Digest,
    /// Bytes received so far (all of them for a blob the store already had).
    pub downloaded: u64,
    /// The blob's size as the manifest gives it (or the response, if the manifest does not).
    pub total: u64,
}

/// Pulls `reference` into `store`: resolves it to a manifest at the first endpoint that has it,
/// fetches the blobs the store lacks, unpacks the layers and records the image under
/// `reference`. `credentials` go to the registry itself; mirrors use their configured ones.
pub async fn pull(
    store: &ImageStore,
    registries: &Registries,
    reference: &Reference,
    credentials: Option<Credentials>,
    progress: impl Fn(PullProgress) + Send + Sync,
) -> Result<ImageRecord, ImageError> {
    let session = Session::new(registries, reference, credentials);
    let (manifest, manifest_digest) = session.resolve().await?;
    let mut blobs: Vec<&Descriptor> = Vec::new();
    for blob in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !blobs.iter().any(|b| b.digest == blob.digest) {
            blobs.push(blob);
        }
    }
    let progress: &(dyn Fn(PullProgress) + Send + Sync) = &progress;
    // Collected first: a stream over a borrowing closure trips the compiler's `Send` check in
    // `Puller`'s spawned task ("FnOnce is not general enough").
    let downloads: Vec<_> = blobs
        .into_iter()
        .map(|blob| session.download(store, blob, progress))
        .collect();
    futures::stream::iter(downloads)
        .buffer_unordered(PARALLEL_BLOBS)
        .try_collect::<Vec<()>>()
        .await?;
    let record = {
        let store = store.clone();
        let name = reference.clone();
        let manifest_digest = manifest_digest.clone();
        tokio::task::spawn_blocking(move || {
            store.register(&manifest, Some(&manifest_digest), &[name])
        })
        .await
        .map_err(|e| ImageError::Registry(format!("registering {reference}: {e}")))??
    };
    tracing::info!(image = %reference, digest = %manifest_digest, id = %record.id, "pulled");
    Ok(record)
}

/// Pulls images into one store, doing each pull once when several callers ask for the same
/// image (with the same credentials) at the same time. Every caller hears the progress.
pub struct Puller {
    store: ImageStore,
    registries: Arc<Registries>,
    in_flight: Arc<Mutex<HashMap<PullKey, InFlight>>>,
    next_id: AtomicU64,
}

type PullKey = (String, Option<Credentials>);
type SharedPull = Shared<BoxFuture<'static, Result<ImageRecord, Arc<ImageError>>>>;

struct InFlight {
    /// Tells this pull's entry from a later one for the same key.
    id: u64,
    result: SharedPull,
    progress: broadcast::Sender<PullProgress>,
}

impl fmt::Debug for Puller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pulling: Vec<String> = locked(&self.in_flight)
            .keys()
            .map(|(reference, _)| reference.clone())
            .collect();
        f.debug_struct("Puller")
            .field("store", &self.store)
            .field("registries", &self.registries)
            .field("pulling", &pulling)
            .finish()
    }
}

impl Puller {
    pub fn new(store: ImageStore, registries: Registries) -> Self {
        Puller {
            store,
            registries: Arc::new(registries),
            in_flight: Arc::default(),
            next_id: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &ImageStore {
        &self.store
    }

    pub fn registries(&self) -> &Registries {
        &self.registries
    }

    /// Like [`pull`], but joins a pull of the same image already under way. The pull runs in
    /// its own task, so it finishes (and stores the image) even if every caller goes away.
    pub async fn pull(
        &self,
        reference: &Reference,
        credentials: Option<Credentials>,
        progress: impl Fn(PullProgress) + Send + Sync,
    ) -> Result<ImageRecord, ImageError> {
        let (mut result, mut updates) = self.join_or_start(reference, credentials);
        loop {
            tokio::select! {
                biased;
                outcome = &mut result => return outcome.map_err(unshare),
                update = updates.recv() => match update {
                    Ok(update) => progress(update),
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return result.await.map_err(unshare);
                    }
                },
            }
        }
    }

    fn join_or_start(
        &self,
        reference: &Reference,
        credentials: Option<Credentials>,
    ) -> (SharedPull, broadcast::Receiver<PullProgress>) {
        let key: PullKey = (reference.to_string(), credentials.clone());
        let mut in_flight = locked(&self.in_flight);
        if let Some(running) = in_flight.get(&key) {
            return (running.result.clone(), running.progress.subscribe());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = broadcast::channel(PROGRESS_BACKLOG);
        let task = tokio::spawn({
            let store = self.store.clone();
            let registries = Arc::clone(&self.registries);
            let reference = reference.clone();
            let sender = sender.clone();
            let in_flight = Arc::clone(&self.in_flight);
            let key = key.clone();
            async move {
                let report = move |update| {
                    // Nobody listening is fine.
                    let _ = sender.send(update);
                };
                let outcome = pull(&store, &registries, &reference, credentials, report).await;
                let mut in_flight = locked(&in_flight);
                if in_flight.get(&key).is_some_and(|running| running.id == id) {
                    in_flight.remove(&key);
                }
                outcome.map_err(Arc::new)
            }
        });
        let result = async move {
            task.await.unwrap_or_else(|e| {
                Err(Arc::new(ImageError::Registry(format!(
                    "pull task failed: {e}"
                ))))
            })
        }
        .boxed()
        .shared();
        in_flight.insert(
            key,
            InFlight {
                id,
                result: result.clone(),
                progress: sender,
            },
        );
        (result, receiver)
    }
}

/// An error of a shared pull, for one of its callers.
fn unshare(error: Arc<ImageError>) -> ImageError {
    Arc::try_unwrap(error).unwrap_or_else(|shared| match &*shared {
        ImageError::NotFound(what) => ImageError::NotFound(what.clone()),
        ImageError::Registry(why) => ImageError::Registry(why.clone()),
        ImageError::Invalid(why) => ImageError::Invalid(why.clone()),
        ImageError::DigestMismatch { expected, actual } => ImageError::DigestMismatch {
            expected: expected.clone(),
            actual: actual.clone(),
        },
        ImageError::Io(e) => ImageError::Io(io::Error::new(e.kind(), e.to_string())),
        other => ImageError::Registry(other.to_string()),
    })
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Why one endpoint could not serve one request.
#[derive(Debug)]
struct Failure {
    /// `host: what happened`.
    reason: String,
    not_found: bool,
    /// The endpoint could not be reached at all: not worth asking again in this pull.
    unreachable: bool,
}

impl Failure {
    fn other(reason: String) -> Self {
        Failure {
            reason,
            not_found: false,
            unreachable: false,
        }
    }

    /// The failure an error response describes, with the registry's own message if it has one.
    async fn from_response(host: &str, response: Response<Incoming>) -> Self {
        let status = response.status();
        let body = read_body(response.into_body(), MAX_SMALL_BODY_BYTES)
            .await
            .unwrap_or_default();
        Failure {
            reason: format!(
                "{host}: {} ({})",
                error_message(&body, status),
                status.as_u16()
            ),
            not_found: status == StatusCode::NOT_FOUND,
            unreachable: false,
        }
    }
}

/// The state of one pull: the endpoints, their clients and tokens, which ones are down.
struct Session<'a> {
    registries: &'a Registries,
    reference: &'a Reference,
    credentials: Option<Credentials>,
    endpoints: Vec<Endpoint>,
    /// Endpoints (by index) that could not be reached, with the reason.
    unreachable: Mutex<HashMap<usize, String>>,
    /// Clients by TLS settings and whether they speak TLS at all.
    clients: Mutex<HashMap<(TlsConfig, bool), HttpClient>>,
    roots: OnceLock<Arc<RootCertStore>>,
    /// `Authorization` values by (host, repository).
    tokens: Mutex<HashMap<(String, String), HeaderValue>>,
}

impl<'a> Session<'a> {
    fn new(
        registries: &'a Registries,
        reference: &'a Reference,
        credentials: Option<Credentials>,
    ) -> Self {
        Session {
            registries,
            reference,
            credentials,
            endpoints: registries.endpoints(reference),
            unreachable: Mutex::default(),
            clients: Mutex::default(),
            roots: OnceLock::new(),
            tokens: Mutex::default(),
        }
    }

    /// The image's manifest (this platform's, if the reference names an index) and the digest
    /// of the document the reference names.
    async fn resolve(&self) -> Result<(Manifest, Digest), ImageError> {
        let object = self.reference.registry_reference();
        let (bytes, media_type, digest) = self
            .manifest(&object, self.reference.digest.as_ref())
            .await?;
        let document = self.document(&bytes, &object)?;
        let media_type = effective_media_type(&media_type, &document);
        if !oci::is_index(&media_type, &document) {
            return Ok((self.parse_manifest(document, &object)?, digest));
        }
        let index: Index = serde_json::from_value(document).map_err(|e| {
            ImageError::invalid(format!("{}: index is not valid: {e}", self.reference))
        })?;
        let Some(chosen) = oci::pick_platform(&index) else {
            return Err(ImageError::NotFound(format!(
                "{}: no manifest for linux/{}",
                self.reference,
                oci::host_architecture()
            )));
        };
        let object = chosen.digest.to_string();
        let (bytes, media_type, _) = self.manifest(&object, Some(&chosen.digest)).await?;
        let document = self.document(&bytes, &object)?;
        if oci::is_index(&effective_media_type(&media_type, &document), &document) {
            return Err(ImageError::invalid(format!(
                "{}: index {object} points to another index",
                self.reference
            )));
        }
        Ok((self.parse_manifest(document, &object)?, digest))
    }

    fn document(&self, bytes: &[u8], object: &str) -> Result<serde_json::Value, ImageError> {
        let document: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            ImageError::invalid(format!(
                "{}: manifest {object} is not JSON: {e}",
                self.reference
            ))
        })?;
        if document.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
            return Err(ImageError::invalid(format!(
                "{}: Docker schema 1 manifests are not supported",
                self.reference
            )));
        }
        Ok(document)
    }

    fn parse_manifest(
        &self,
        document: serde_json::Value,
        object: &str,
    ) -> Result<Manifest, ImageError> {
        serde_json::from_value(document).map_err(|e| {
            ImageError::invalid(format!(
                "{}: manifest {object} is not valid: {e}",
                self.reference
            ))
        })
    }

    /// Fetches a manifest by tag or digest: its bytes, media type and digest, checked against
    /// `expected` or else against the registry's `Docker-Content-Digest`.
    async fn manifest(
        &self,
        object: &str,
        expected: Option<&Digest>,
    ) -> Result<(Bytes, String, Digest), ImageError> {
        let accept = [
            oci::OCI_INDEX,
            oci::OCI_MANIFEST,
            oci::DOCKER_LIST,
            oci::DOCKER_MANIFEST,
        ]
        .join(", ");
        let (index, response) = self
            .fetch("manifests", object, Some(&accept))
            .await
            .map_err(|failures| self.give_up("", &failures, true))?;
        let headers = response.headers();
        let media_type = header_text(headers, header::CONTENT_TYPE)
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let announced = headers
            .get(DOCKER_CONTENT_DIGEST)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Digest::parse(v.trim()).ok());
        let bytes = read_body(response.into_body(), MAX_MANIFEST_BYTES)
            .await
            .map_err(|e| {
                ImageError::Registry(format!(
                    "pulling {}: manifest {object} from {}: {e}",
                    self.reference, self.endpoints[index].host
                ))
            })?;
        let actual = Digest::of(&bytes);
        if let Some(expected) = expected.or(announced.as_ref())
            && *expected != actual
        {
            return Err(ImageError::DigestMismatch {
                expected: expected.clone(),
                actual,
            });
        }
        Ok((bytes, media_type, actual))
    }

    /// Streams one blob into the store (unless it is there already).
    async fn download(
        &self,
        store: &ImageStore,
        blob: &Descriptor,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), ImageError> {
        let digest = &blob.digest;
        if store.has_blob(digest) {
            progress(PullProgress {
                digest: digest.clone(),
                downloaded: blob.size,
                total: blob.size,
            });
            return Ok(());
        }
        let (index, response) = self
            .fetch("blobs", digest.as_str(), None)
            .await
            .map_err(|failures| self.give_up(&format!("blob {digest}: "), &failures, false))?;
        let total = match blob.size {
            0 => header_text(response.headers(), header::CONTENT_LENGTH)
                .parse()
                .unwrap_or(0),
            size => size,
        };
        let (sender, receiver) = mpsc::channel(CHUNKS_IN_FLIGHT);
        let writer = {
            let store = store.clone();
            let digest = digest.clone();
            tokio::task::spawn_blocking(move || {
                store.write_blob(&digest, ChannelReader::new(receiver), |_| {})
            })
        };
        let streamed = stream_blob(response.into_body(), blob, total, &sender, progress).await;
        if let Err(reason) = &streamed {
            // The writer must not take a cut-off blob for a short one.
            let _ = sender.send(Err(io::Error::other(reason.clone()))).await;
        }
        drop(sender);
        let written = writer.await.map_err(|e| {
            ImageError::Registry(format!(
                "pulling {}: writing blob {digest}: {e}",
                self.reference
            ))
        })?;
        match streamed {
            Err(reason) => Err(ImageError::Registry(format!(
                "pulling {}: blob {digest} from {}: {reason}",
                self.reference, self.endpoints[index].host
            ))),
            Ok(()) => written.map(|_| ()),
        }
    }

    /// GETs `<kind>/<object>` from the first endpoint that has it; the failures otherwise.
    async fn fetch(
        &self,
        kind: &str,
        object: &str,
        accept: Option<&str>,
    ) -> Result<(usize, Response<Incoming>), Vec<Failure>> {
        let mut failures = Vec::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let down = locked(&self.unreachable).get(&index).cloned();
            if let Some(reason) = down {
                failures.push(Failure::other(reason));
                continue;
            }
            let url = endpoint.url(kind, object);
            match self.request(endpoint, &url, accept).await {
                Ok(response) => return Ok((index, response)),
                Err(failure) => {
                    tracing::debug!(%url, reason = %failure.reason, "endpoint failed");
                    if failure.unreachable {
                        locked(&self.unreachable).insert(index, failure.reason.clone());
                    }
                    failures.push(failure);
                }
            }
        }
        Err(failures)
    }

    /// The error for a request that no endpoint could serve. Only a manifest that every
    /// endpoint said it does not have means the image does not exist.
    fn give_up(&self, what: &str, failures: &[Failure], manifest: bool) -> ImageError {
        let reasons: Vec<&str> = failures.iter().map(|f| f.reason.as_str()).collect();
        let reasons = match reasons.is_empty() {
            true => "no endpoint to try".to_string(),
            false => reasons.join("; "),
        };
        if manifest && !failures.is_empty() && failures.iter().all(|f| f.not_found) {
            return ImageError::NotFound(format!(
                "pulling {}: not found: {reasons}",
                self.reference
            ));
        }
        ImageError::Registry(format!("pulling {}: {what}{reasons}", self.reference))
    }

    /// GETs `url` from `endpoint`, answering one authentication challenge.
    async fn request(
        &self,
        endpoint: &Endpoint,
        url: &str,
        accept: Option<&str>,
    ) -> Result<Response<Incoming>, Failure> {
        let key = (endpoint.host.clone(), endpoint.repository.clone());
        let mut authorization = locked(&self.tokens).get(&key).cloned();
        let mut challenge_answered = false;
        loop {
            let response = self
                .send(endpoint, url, accept, authorization.as_ref())
                .await?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status != StatusCode::UNAUTHORIZED || challenge_answered {
                return Err(Failure::from_response(&endpoint.host, response).await);
            }
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge);
            let Some(challenge) = challenge else {
                return Err(Failure::from_response(&endpoint.host, response).await);
            };
            let value = self.authorize(endpoint, &challenge).await?;
            locked(&self.tokens).insert(key.clone(), value.clone());
            authorization = Some(value);
            challenge_answered = true;
        }
    }

    /// GETs `url`, following redirects; `authorization` goes only to the endpoint's own host.
    async fn send(
        &self,
        endpoint: &Endpoint,
        url: &str,
        accept: Option<&str>,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response<Incoming>, Failure> {
        let host = &endpoint.host;
        let mut uri: Uri = url
            .parse()
            .map_err(|e| Failure::other(format!("{host}: bad URL {url:?}: {e}")))?;
        let origin = uri.authority().cloned();
        for _ in 0..=MAX_REDIRECTS {
            let at_origin = uri.authority() == origin.as_ref();
            let target = uri.authority().map(|a| a.to_string()).unwrap_or_default();
            let mut request = Request::get(uri.clone()).header(header::USER_AGENT, USER_AGENT);
            if let Some(accept) = accept {
                request = request.header(header::ACCEPT, accept);
            }
            if let Some(authorization) = authorization.filter(|_| at_origin) {
                request = request.header(header::AUTHORIZATION, authorization);
            }
            let request = request
                .body(Full::default())
                .map_err(|e| Failure::other(format!("{host}: {e}")))?;
            let tls = match at_origin {
                true => endpoint.tls.clone(),
                false => self.registries.tls_for(&target),
            };
            let response = match self.execute(&tls, request).await {
                Ok(response) => response,
                Err(reason) if at_origin => {
                    return Err(Failure {
                        reason: format!("{host}: {reason}"),
                        not_found: false,
                        unreachable: true,
                    });
                }
                Err(reason) => {
                    return Err(Failure::other(format!(
                        "{host}: redirected to {target}: {reason}"
                    )));
                }
            };
            let redirect = matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308);
            if !redirect {
                return Ok(response);
            }
            let location = header_text(response.headers(), header::LOCATION);
            uri = follow(&uri, location).map_err(|e| Failure::other(format!("{host}: {e}")))?;
        }
        Err(Failure::other(format!(
            "{host}: more than {MAX_REDIRECTS} redirects"
        )))
    }

    /// Sends one request and waits (a bounded time) for the response's head.
    async fn execute(
        &self,
        tls: &TlsConfig,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, String> {
        let secure = request.uri().scheme_str() == Some("https");
        let client = self.client(tls, secure)?;
        match tokio::time::timeout(RESPONSE_TIMEOUT, client.request(request)).await {
            Err(_) => Err(format!(
                "no response within {} s",
                RESPONSE_TIMEOUT.as_secs()
            )),
            // The client's own message is only its error kind ("client error (Connect)").
            Ok(Err(e)) => {
                Err(std::error::Error::source(&e).map_or_else(|| e.to_string(), describe))
            }
            Ok(Ok(response)) => Ok(response),
        }
    }

    fn client(&self, tls: &TlsConfig, secure: bool) -> Result<HttpClient, String> {
        let key = (tls.clone(), secure);
        if let Some(client) = locked(&self.clients).get(&key) {
            return Ok(client.clone());
        }
        // Plain HTTP never looks at certificates, so it needs no trust store.
        let roots = match secure {
            true => Arc::clone(self.roots.get_or_init(system_roots)),
            false => Arc::new(RootCertStore::empty()),
        };
        let client = build_client(tls, &roots)?;
        locked(&self.clients).insert(key, client.clone());
        Ok(client)
    }

    /// The `Authorization` value that answers `challenge`.
    async fn authorize(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
    ) -> Result<HeaderValue, Failure> {
        let host = &endpoint.host;
        let credentials = match endpoint.mirror {
            true => endpoint.credentials.as_ref(),
            false => self.credentials.as_ref().or(endpoint.credentials.as_ref()),
        };
        let value = match (challenge.scheme.as_str(), credentials) {
            ("basic", Some(Credentials::Basic { username, password })) => {
                basic_auth(username, password)
            }
            ("basic", _) => {
                return Err(Failure::other(format!(
                    "{host}: the registry wants a user name and password, and none is configured"
                )));
            }
            ("bearer", Some(Credentials::RegistryToken(token))) => format!("Bearer {token}"),
            ("bearer", credentials) => {
                let token = self.fetch_token(endpoint, challenge, credentials).await?;
                format!("Bearer {token}")
            }
            (other, _) => {
                return Err(Failure::other(format!(
                    "{host}: unsupported authentication scheme {other:?}"
                )));
            }
        };
        HeaderValue::from_str(&value).map_err(|_| {
            Failure::other(format!("{host}: the credentials are not valid header text"))
        })
    }

    /// Asks the challenge's token service for a pull token for the endpoint's repository.
    async fn fetch_token(
        &self,
        endpoint: &Endpoint,
        challenge: &Challenge,
        credentials: Option<&Credentials>,
    ) -> Result<String, Failure> {
        let fail = |reason: String| Failure::other(format!("{}: {reason}", endpoint.host));
        let Some(realm) = challenge.params.get("realm") else {
            return Err(fail("bearer challenge without a realm".to_string()));
        };
        let realm_uri: Uri = realm
            .parse()
            .map_err(|_| fail(format!("bad token realm {realm:?}")))?;
        let realm_host = match (realm_uri.scheme_str(), realm_uri.authority()) {
            (Some("http" | "https"), Some(authority)) => authority.to_string(),
            _ => return Err(fail(format!("bad token realm {realm:?}"))),
        };
        let scope = format!("repository:{}:pull", endpoint.repository);
        let mut params: Vec<(&str, &str)> = Vec::new();
        if let Some(service) = challenge.params.get("service") {
            params.push(("service", service));
        }
        params.push(("scope", &scope));
        let request = match credentials {
            Some(Credentials::IdentityToken(token)) => {
                params.extend([
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                    ("client_id", CLIENT_ID),
                ]);
                Request::post(realm_uri)
                    .header(header::USER_AGENT, USER_AGENT)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Full::from(form(&params)))
            }
            credentials => {
                let separator = if realm.contains('?') { '&' } else { '?' };
                let mut request = Request::get(format!("{realm}{separator}{}", form(&params)))
                    .header(header::USER_AGENT, USER_AGENT);
                if let Some(Credentials::Basic { username, password }) = credentials {
                    request = request.header(header::AUTHORIZATION, basic_auth(username, password));
                }
                request.body(Full::default())
            }
        }
        .map_err(|e| fail(format!("token request: {e}")))?;
        let tls = self.registries.tls_for(&realm_host);
        let response = self
            .execute(&tls, request)
            .await
            .map_err(|e| fail(format!("token service {realm_host}: {e}")))?;
        let status = response.status();
        let body = read_body(response.into_body(), MAX_SMALL_BODY_BYTES)
            .await
            .map_err(|e| fail(format!("token service {realm_host}: {e}")))?;
        if !status.is_success() {
            return Err(fail(format!(
                "token service {realm_host}: {} ({})",
                error_message(&body, status),
                status.as_u16()
            )));
        }
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<String>,
            #[serde(default)]
            access_token: Option<String>,
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| fail(format!("token service {realm_host}: bad answer: {e}")))?;
        parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| fail(format!("token service {realm_host} gave no token")))
    }
}

/// Copies a blob's body into the writer's channel, reporting progress; `Err` says why the
/// transfer broke off. Stops early, without error, if the writer has gone (its result says why).
async fn stream_blob(
    mut body: Incoming,
    blob: &Descriptor,
    total: u64,
    sender: &mpsc::Sender<io::Result<Bytes>>,
    progress: &(dyn Fn(PullProgress) + Send + Sync),
) -> Result<(), String> {
    let mut downloaded = 0u64;
    loop {
        let frame = match tokio::time::timeout(STALL_TIMEOUT, body.frame()).await {
            Err(_) => {
                return Err(format!(
                    "no data for {} s after {downloaded} bytes",
                    STALL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) => return Err(describe(&e)),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        downloaded += data.len() as u64;
        if blob.size > 0 && downloaded > blob.size {
            return Err(format!(
                "more bytes than the {} the manifest gives",
                blob.size
            ));
        }
        progress(PullProgress {
            digest: blob.digest.clone(),
            downloaded,
            total,
        });
        if sender.send(Ok(data)).await.is_err() {
            return Ok(());
        }
    }
}

/// A blocking reader over body chunks sent from the async side.
struct ChannelReader {
    receiver: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl ChannelReader {
    fn new(receiver: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            receiver,
            chunk: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.receiver.blocking_recv() {
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Ok(n)
    }
}

/// Reads a whole (small) body, refusing more than `limit` bytes or a stalled transfer.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, String> {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(STALL_TIMEOUT, body.frame()).await {
            Err(_) => return Err(format!("no data for {} s", STALL_TIMEOUT.as_secs())),
            Ok(None) => return Ok(bytes.into()),
            Ok(Some(Err(e))) => return Err(describe(&e)),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > limit {
                        return Err(format!("response larger than {limit} bytes"));
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
}

/// The registry's message in an error body (`{"errors":[{"code":..,"message":..}]}`), else
/// the status's reason.
fn error_message(body: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let from_body = serde_json::from_slice::<Errors>(body)
        .ok()
        .and_then(|parsed| {
            let first = parsed.errors.into_iter().next()?;
            match first.message.is_empty() {
                false => Some(first.message),
                true if !first.code.is_empty() => Some(first.code.to_lowercase().replace('_', " ")),
                true => None,
            }
        });
    from_body.unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_lowercase())
}

/// The media type to go by: the response's if it is one the registry protocol defines, else the
/// document's own `mediaType`.
fn effective_media_type(header: &str, document: &serde_json::Value) -> String {
    let known = [
        oci::OCI_INDEX,
        oci::OCI_MANIFEST,
        oci::DOCKER_LIST,
        oci::DOCKER_MANIFEST,
    ];
    if known.contains(&header) {
        return header.to_string();
    }
    document
        .get("mediaType")
        .and_then(|v| v.as_str())
        .unwrap_or(header)
        .to_string()
}

fn header_text(headers: &hyper::HeaderMap, name: header::HeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// Where a redirect's `Location` points, relative to the URL that answered it.
fn follow(base: &Uri, location: &str) -> Result<Uri, String> {
    let scheme = base.scheme_str().unwrap_or("https");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let absolute = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.is_empty() {
        return Err("redirect without a Location".to_string());
    } else {
        let path = base.path();
        let directory = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        format!("{scheme}://{authority}{directory}{location}")
    };
    absolute
        .parse()
        .map_err(|e| format!("bad redirect location {location:?}: {e}"))
}

/// An authentication challenge from `WWW-Authenticate`.
#[derive(Debug, PartialEq, Eq)]
struct Challenge {
    /// Lowercase: `bearer`, `basic`.
    scheme: String,
    /// Parameter names lowercase, values unquoted.
    params: BTreeMap<String, String>,
}

/// Parses the first challenge of a `WWW-Authenticate` value, e.g.
/// `Bearer realm="https://auth.example.com/token",service="registry",scope="repository:a:pull"`.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, mut rest) = match header.find(char::is_whitespace) {
        Some(i) => (&header[..i], header[i..].trim_start()),
        None => (header, ""),
    };
    if scheme.is_empty() || scheme.contains(['=', ',', '"']) {
        return None;
    }
    let mut params = BTreeMap::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(equals) = rest.find('=') else {
            break;
        };
        let name = rest[..equals].trim_end();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ',' || c == '"') {
            // The start of a second challenge (or a token68): the first one is complete.
            break;
        }
        rest = rest[equals + 1..].trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut end = quoted.len();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next().map(|(_, escaped)| escaped)),
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            value
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let value = rest[..end].trim().to_string();
            rest = &rest[end..];
            value
        };
        params.insert(name.to_ascii_lowercase(), value);
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

fn basic_auth(username: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

/// `application/x-www-form-urlencoded` (also right for a query string).
fn form(params: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    };
    params
        .iter()
        .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An error and its causes, outermost first.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The system's trusted roots; whatever cannot be read is left out (and TLS to a server that
/// needs it fails with an unknown-issuer error).
fn system_roots() -> Arc<RootCertStore> {
    let loaded = rustls_native_certs::load_native_certs();
    for error in &loaded.errors {
        tracing::warn!(%error, "reading the system's root certificates");
    }
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(loaded.certs);
    Arc::new(roots)
}

fn build_client(tls: &TlsConfig, roots: &RootCertStore) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(tls, roots)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// rustls (with ring) trusting `roots` plus the configured CA, or anything when verification
/// is off; with the client certificate if one is configured.
fn tls_config(tls: &TlsConfig, roots: &RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else {
        let mut roots = roots.clone();
        if let Some(path) = &tls.ca_file {
            let unreadable = |e: &dyn fmt::Display| format!("CA file {}: {e}", path.display());
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))? {
                roots
                    .add(cert.map_err(|e| unreadable(&e))?)
                    .map_err(|e| unreadable(&e))?;
            }
        }
        builder.with_root_certificates(roots)
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = CertificateDer::pem_file_iter(cert_file)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("certificate file {}: {e}", cert_file.display()))?;
            let key = PrivateKeyDer::from_pem_file(key_file)
                .map_err(|e| format!("key file {}: {e}", key_file.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("client certificate {}: {e}", cert_file.display()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `insecure_skip_verify`: takes any certificate, though handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_www_authenticate() {
        let cases = [
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
                "bearer",
                params(&[
                    ("realm", "https://auth.docker.io/token"),
                    ("service", "registry.docker.io"),
                    ("scope", "repository:library/busybox:pull"),
                ]),
            ),
            (
                // Commas and escaped quotes inside quoted values; spaces around separators.
                r#"bearer  Realm = "https://ghcr.io/token" , scope="repository:a/b:pull,push", error="say \"hi\"""#,
                "bearer",
                params(&[
                    ("realm", "https://ghcr.io/token"),
                    ("scope", "repository:a/b:pull,push"),
                    ("error", r#"say "hi""#),
                ]),
            ),
            (
                r#"Basic realm="Registry Realm""#,
                "basic",
                params(&[("realm", "Registry Realm")]),
            ),
            ("Basic", "basic", params(&[])),
            (
                "Bearer realm=http://127.0.0.1:1/t,service=local",
                "bearer",
                params(&[("realm", "http://127.0.0.1:1/t"), ("service", "local")]),
            ),
            (
                // Only the first of two challenges.
                r#"Bearer realm="r", Basic realm="b""#,
                "bearer",
                params(&[("realm", "r")]),
            ),
            (
                r#"Bearer realm="unterminated"#,
                "bearer",
                params(&[("realm", "unterminated")]),
            ),
        ];
        for (header, scheme, want) in cases {
            let challenge = parse_challenge(header).expect(header);
            assert_eq!(challenge.scheme, scheme, "{header}");
            assert_eq!(challenge.params, want, "{header}");
        }
        for bad in ["", "   ", "realm=\"x\"", "\"Bearer\""] {
            assert_eq!(parse_challenge(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_registry_error_bodies() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            error_message(body, StatusCode::NOT_FOUND),
            "manifest unknown"
        );
        let code_only = br#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#;
        assert_eq!(
            error_message(code_only, StatusCode::NOT_FOUND),
            "name unknown"
        );
        assert_eq!(
            error_message(b"<html>", StatusCode::BAD_GATEWAY),
            "bad gateway"
        );
    }

    #[test]
    fn follows_redirect_locations() {
        let base: Uri = "https://r.example.com:5000/v2/a/blobs/sha256:1"
            .parse()
            .expect("uri");
        let cases = [
            (
                "https://cdn.example.net/x?sig=%2F1",
                "https://cdn.example.net/x?sig=%2F1",
            ),
            ("//cdn.example.net/y", "https://cdn.example.net/y"),
            ("/v2/b/blobs/2", "https://r.example.com:5000/v2/b/blobs/2"),
            ("other", "https://r.example.com:5000/v2/a/blobs/other"),
        ];
        for (location, want) in cases {
            assert_eq!(follow(&base, location).expect(location).to_string(), want);
        }
        assert!(follow(&base, "").is_err());
    }

    #[test]
    fn encodes_forms() {
        assert_eq!(
            form(&[
                ("scope", "repository:library/busybox:pull"),
                ("service", "a b")
            ]),
            "scope=repository%3Alibrary%2Fbusybox%3Apull&service=a%20b"
        );
        assert_eq!(basic_auth("bob", "hunter2"), "Basic Ym9iOmh1bnRlcjI=");
    }

    #[test]
    fn picks_the_media_type_to_go_by() {
        let index = serde_json::json!({"mediaType": oci::OCI_INDEX, "manifests": []});
        assert_eq!(
            effective_media_type("application/json", &index),
            oci::OCI_INDEX
        );
        assert_eq!(
            effective_media_type(oci::DOCKER_MANIFEST, &index),
            oci::DOCKER_MANIFEST
        );
        assert_eq!(effective_media_type("", &serde_json::json!({})), "");
    }

    #[test]
    fn channel_reader_passes_bytes_errors_and_end() {
        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Ok(Bytes::from_static(b"hello ")))
            .expect("room");
        sender
            .try_send(Ok(Bytes::from_static(b"world")))
            .expect("room");
        drop(sender);
        let mut text = String::new();
        ChannelReader::new(receiver)
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "hello world");
        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Err(io::Error::other("cut off")))
            .expect("room");
        let error = ChannelReader::new(receiver)
            .read_to_end(&mut Vec::new())
            .expect_err("the sender's error");
        assert_eq!(error.to_string(), "cut off");
    }
}
