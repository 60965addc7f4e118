//! One registry repository over HTTP(S): login through `oci-client`'s auth handshake
//! (`/v2/` challenge → bearer token, or Basic), then skerry's own GETs with reqwest,
//! because each needs what oci-client does not do: a size cap on manifests read into
//! memory, Range requests answered 200 or 206, and one new login on 401 or 403 (an
//! expired ECR token answers 403). Every request has a connect and a read timeout.
//! Redirects (ECR blobs go to S3) are followed by reqwest, which drops the
//! `Authorization` header when the host changes. Plain HTTP only for registries the
//! config marks `insecure`. TLS: rustls with the ring provider.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::RegistryOperation;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, RANGE};
use reqwest::{Response, StatusCode};

use super::auth::Credentials;
use super::PullError;

/// The lowest time floor: a clock before it (2025-01-01) is not set. The agent raises it
/// to the fleet link's floor (build time, or the newest time a broker connection
/// proved: `sync::timefloor`), so pulls and the link agree on "clock not set".
pub const TIME_FLOOR_SECS: u64 = 1_735_689_600;

/// The manifest media types skerry asks for.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// How to reach one registry.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host[:port]` as in the reference (docker.io is reached as registry-1.docker.io).
    pub host: String,
    pub insecure: bool,
    /// Extra trusted CA, PEM.
    pub ca_pem: Option<Vec<u8>>,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// A TLS registry is not tried with the clock before this (seconds since the epoch).
    pub clock_floor_secs: u64,
}

/// The CAs a registry's certificate is checked against: the system's store (the
/// `SSL_CERT_FILE`/`SSL_CERT_DIR` or the distribution's bundle, as
/// rustls-native-certs finds it) plus the registry's `ca_file`. Loaded here rather than
/// by reqwest's platform verifier, which refuses to build at all on a gateway with no
/// CA bundle, even for a plain-HTTP registry.
struct TrustRoots {
    reqwest: Vec<reqwest::Certificate>,
    oci: Vec<Certificate>,
}

impl TrustRoots {
    fn load(endpoint: &Endpoint) -> Result<Self, String> {
        let mut roots = Self {
            reqwest: Vec::new(),
            oci: Vec::new(),
        };
        for der in rustls_native_certs::load_native_certs().certs {
            if let Ok(c) = reqwest::Certificate::from_der(der.as_ref()) {
                roots.reqwest.push(c);
                roots.oci.push(Certificate {
                    encoding: CertificateEncoding::Der,
                    data: der.as_ref().to_vec(),
                });
            }
        }
        if let Some(pem) = &endpoint.ca_pem {
            let certs =
                reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("ca_file: {e}"))?;
            if certs.is_empty() {
                return Err("ca_file holds no PEM certificate".to_owned());
            }
            roots.reqwest.extend(certs);
            roots.oci.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: pem.clone(),
            });
        }
        if roots.oci.is_empty() && !endpoint.insecure {
            return Err(format!(
                "no CA certificate to check it against: the system has none (install ca-certificates, or set SSL_CERT_FILE) and [registries.\"{}\"] has no ca_file",
                endpoint.host
            ));
        }
        Ok(roots)
    }
}

/// A logged-in view of one repository.
pub(crate) struct Registry {
    http: reqwest::Client,
    /// `None` on a system with no CA store (a plain-HTTP registry): no token handshake.
    oci: Option<oci_client::Client>,
    oci_ref: oci_client::Reference,
    creds: Credentials,
    /// What requests carry as `Authorization` (set by `login`).
    authorization: Mutex<Option<HeaderValue>>,
    pub(crate) host: String,
    pub(crate) repository: String,
    base: String,
    tls: bool,
    clock_floor_secs: u64,
}

/// Installs ring as rustls' process-wide provider (once; the MQTT link does the same).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Registry {
    pub(crate) fn new(
        endpoint: &Endpoint,
        repository: &str,
        creds: Credentials,
    ) -> Result<Self, PullError> {
        install_crypto_provider();
        let api_host = if endpoint.host == "docker.io" {
            "registry-1.docker.io".to_owned()
        } else {
            endpoint.host.clone()
        };
        let scheme = if endpoint.insecure { "http" } else { "https" };
        let client_err = |reason: String| PullError::Client {
            registry: endpoint.host.clone(),
            reason,
        };
        let roots = TrustRoots::load(endpoint).map_err(client_err)?;
        let http = reqwest::Client::builder()
            .connect_timeout(endpoint.connect_timeout)
            .read_timeout(endpoint.read_timeout)
            .user_agent(concat!("skerry/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .tls_certs_only(roots.reqwest)
            .build()
            .map_err(|e| client_err(e.to_string()))?;
        let protocol = if endpoint.insecure {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        // oci-client builds a default reqwest client besides the configured one, and
        // that one panics on a system with no CA store. There (only a plain-HTTP
        // registry gets this far) the handshake is skipped: anonymous or Basic.
        let oci = if roots.oci.is_empty() {
            None
        } else {
            Some(
                oci_client::Client::try_from(ClientConfig {
                    protocol,
                    tls_certs_only: roots.oci,
                    connect_timeout: Some(endpoint.connect_timeout),
                    read_timeout: Some(endpoint.read_timeout),
                    ..ClientConfig::default()
                })
                .map_err(|e| client_err(e.to_string()))?,
            )
        };
        Ok(Self {
            http,
            oci,
            oci_ref: oci_client::Reference::with_tag(
                api_host.clone(),
                repository.to_owned(),
                "latest".to_owned(),
            ),
            creds,
            authorization: Mutex::new(None),
            host: endpoint.host.clone(),
            repository: repository.to_owned(),
            base: format!("{scheme}://{api_host}/v2/{repository}"),
            tls: !endpoint.insecure,
            clock_floor_secs: endpoint.clock_floor_secs.max(TIME_FLOOR_SECS),
        })
    }

    /// Runs the auth handshake and keeps the `Authorization` value it yields.
    pub(crate) async fn login(&self) -> Result<(), PullError> {
        self.check_clock()?;
        let token = match &self.oci {
            Some(oci) => oci
                .auth(&self.oci_ref, &self.creds.to_oci(), RegistryOperation::Pull)
                .await
                .map_err(|e| self.login_error(e))?,
            None => None,
        };
        let value = match (token, &self.creds) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Credentials::Basic { username, password }) => {
                use base64::Engine as _;
                let raw = format!("{username}:{password}");
                Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                ))
            }
            (None, _) => None,
        };
        let header = value
            .map(|v| HeaderValue::from_str(&v))
            .transpose()
            .map_err(|_| PullError::Credentials {
                path: format!("registry {}", self.host).into(),
                reason: "credentials contain characters not allowed in an HTTP header".to_owned(),
            })?;
        *self
            .authorization
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = header;
        Ok(())
    }

    fn login_error(&self, e: oci_client::errors::OciDistributionError) -> PullError {
        use oci_client::errors::OciDistributionError as E;
        match e {
            E::AuthenticationFailure(reason) => PullError::Denied {
                registry: self.host.clone(),
                repository: self.repository.clone(),
                status: 401,
                hint: one_line(&reason),
            },
            E::RequestError(e) => self.network(&format!("{}/", self.base), &e),
            other => PullError::BadAnswer {
                url: format!("{}/", self.base),
                reason: format!("login: {}", one_line(&other.to_string())),
            },
        }
    }

    /// `manifests/<tag or digest>`.
    pub(crate) fn manifest_url(&self, reference: &str) -> String {
        format!("{}/manifests/{reference}", self.base)
    }

    /// `blobs/<digest>`.
    pub(crate) fn blob_url(&self, digest: &str) -> String {
        format!("{}/blobs/{digest}", self.base)
    }

    /// GETs `url`; on 401 or 403 logs in again and retries once. Any other status is
    /// the caller's to judge.
    pub(crate) async fn get(
        &self,
        url: &str,
        accept: Option<&str>,
        range_from: Option<u64>,
    ) -> Result<Response, PullError> {
        let first = self.send(url, accept, range_from).await?;
        if !matches!(
            first.status(),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            return Ok(first);
        }
        tracing::debug!(registry = %self.host, status = first.status().as_u16(), "logging in again");
        self.login().await?;
        let second = self.send(url, accept, range_from).await?;
        match second.status() {
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => Err(PullError::Denied {
                registry: self.host.clone(),
                repository: self.repository.clone(),
                status: s.as_u16(),
                hint: match self.creds {
                    Credentials::Anonymous => {
                        "no credentials configured for this registry".to_owned()
                    }
                    _ => "the registry refused the configured credentials".to_owned(),
                },
            }),
            _ => Ok(second),
        }
    }

    async fn send(
        &self,
        url: &str,
        accept: Option<&str>,
        range_from: Option<u64>,
    ) -> Result<Response, PullError> {
        self.check_clock()?;
        let mut req = self.http.get(url);
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        if let Some(from) = range_from.filter(|f| *f > 0) {
            req = req.header(RANGE, format!("bytes={from}-"));
        }
        let auth = self
            .authorization
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(auth) = auth {
            req = req.header(AUTHORIZATION, auth);
        }
        req.send().await.map_err(|e| self.network(url, &e))
    }

    /// Reads a whole answer of at most `limit` bytes.
    pub(crate) async fn read_limited(
        &self,
        mut resp: Response,
        url: &str,
        limit: u64,
    ) -> Result<Vec<u8>, PullError> {
        let too_large = || PullError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.network(url, &e))? {
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// A `Status` error for an unexpected answer, with the start of its body.
    pub(crate) async fn status_error(&self, resp: Response, url: &str) -> PullError {
        let status = resp.status().as_u16();
        let body = self
            .read_limited(resp, url, 64 * 1024)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        PullError::Status {
            url: url.to_owned(),
            status,
            body: one_line(&text.chars().take(200).collect::<String>()),
        }
    }

    /// A network error, or `ClockNotSet` when TLS is in use and the clock is unset.
    pub(crate) fn network(&self, url: &str, e: &reqwest::Error) -> PullError {
        if let Err(clock) = self.check_clock() {
            return clock;
        }
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        PullError::Network {
            url: url.to_owned(),
            reason,
        }
    }

    fn check_clock(&self) -> Result<(), PullError> {
        if !self.tls {
            return Ok(());
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        clock_check(&self.host, now, self.clock_floor_secs)
    }
}

/// `ClockNotSet` if `now_secs` is before the time floor.
fn clock_check(registry: &str, now_secs: u64, floor_secs: u64) -> Result<(), PullError> {
    if now_secs < floor_secs {
        return Err(PullError::ClockNotSet {
            registry: registry.to_owned(),
            now_secs,
            floor_secs,
        });
    }
    Ok(())
}

/// Collapses whitespace and newlines (registry bodies are often HTML or JSON).
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_clock_at_1970_is_reported_once_not_retried() {
        let err = clock_check("r.example", 3600, TIME_FLOOR_SECS).expect_err("1970");
        assert!(err.to_string().starts_with("system clock not set"), "{err}");
        assert!(!err.is_transient(), "a clock error must not be retried");
        assert!(clock_check("r.example", TIME_FLOOR_SECS + 1, TIME_FLOOR_SECS).is_ok());
        // The fleet link's floor counts: a clock behind it is not set either.
        let link_floor = TIME_FLOOR_SECS + 86_400 * 365;
        assert!(clock_check("r.example", TIME_FLOOR_SECS + 1, link_floor).is_err());
    }
}
