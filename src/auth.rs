//! Authentication and roles: HS256 JWTs (claims `sub`, `role`, `iat`, `exp`), API keys stored
//! as SHA-256 hashes, and the secret file created on first use.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Roles, ordered: viewer < operator < admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read-only access.
    Viewer,
    /// Viewer plus snapshots, recordings and deletes.
    Operator,
    /// Everything, including storage and server administration.
    Admin,
}

impl Role {
    /// The lowercase name used on the wire and in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// The permission names reported by `authenticate`.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::Viewer => &["view"],
            Role::Operator => &["view", "control"],
            Role::Admin => &["view", "control", "admin"],
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}` (expected viewer, operator or admin)"
            )),
        }
    }
}

/// The latest `exp` the service accepts: 9999-12-31T23:59:59Z, the last second every time
/// library it uses (and RFC 3339 with a four-digit year) can represent.
pub const MAX_EXP: u64 = 253_402_300_799;

/// JWT claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject (user name).
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expiry (Unix seconds), at most [`MAX_EXP`]. A token may also carry `nbf` (not before,
    /// Unix seconds); it is refused until then.
    pub exp: u64,
}

/// An authenticated identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Token subject or API key name.
    pub subject: String,
    /// Role.
    pub role: Role,
    /// Expiry (Unix seconds) for tokens; `None` for API keys.
    pub expires_at: Option<u64>,
}

impl Caller {
    /// Whether the credential has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: u64) -> bool {
        self.expires_at.is_some_and(|exp| now >= exp)
    }
}

/// Why a credential was refused, or the auth material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token's `exp` has passed.
    #[error("token expired")]
    Expired,
    /// The token's `nbf` (not before) is still in the future.
    #[error("token not valid yet: its `nbf` (not before) is in the future")]
    NotYetValid,
    /// Neither a valid JWT nor a known API key; the text says what was wrong in the service's
    /// own words (never a parser's internals).
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The secret file could not be read or created.
    #[error("cannot use JWT secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file exists but is too short to be a secret.
    #[error("JWT secret file {} holds fewer than 32 characters", path.display())]
    SecretTooShort {
        /// The file.
        path: PathBuf,
    },
    /// The API key file could not be read or parsed.
    #[error("cannot use API key file {}: {reason}", path.display())]
    ApiKeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Reads the secret at `path`, creating it (mode 0600, 32 random bytes as hex) when missing.
/// Returns the secret and whether it was created.
pub fn load_or_create_secret(path: &Path) -> Result<(String, bool), AuthError> {
    let secret_error = |source| AuthError::SecretFile {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let secret = text.trim().to_owned();
            if secret.len() < 32 {
                return Err(AuthError::SecretTooShort {
                    path: path.to_owned(),
                });
            }
            Ok((secret, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(secret_error)?;
            }
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let secret = hex::encode(bytes);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(secret_error)?;
            file.write_all(secret.as_bytes()).map_err(secret_error)?;
            Ok((secret, true))
        }
        Err(e) => Err(secret_error(e)),
    }
}

/// The current time in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One API key entry in the key file (`[[key]]` tables).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyEntry {
    name: String,
    role: Role,
    /// Lowercase hex SHA-256 of the key.
    sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiKeyFile {
    #[serde(default)]
    key: Vec<ApiKeyEntry>,
}

/// Verifies JWTs and API keys.
#[derive(Clone)]
pub struct Authenticator {
    encoding: EncodingKey,
    decoding: DecodingKey,
    api_keys: Vec<ApiKeyEntry>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.api_keys.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator for `secret` with no API keys.
    pub fn new(secret: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            api_keys: Vec::new(),
        }
    }

    /// Loads API keys from a TOML file of `[[key]] name = "…" role = "…" sha256 = "<hex>"`.
    pub fn with_api_key_file(mut self, path: &Path) -> Result<Self, AuthError> {
        let fail = |reason: String| AuthError::ApiKeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let file: ApiKeyFile = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for entry in &file.key {
            if entry.sha256.len() != 64 || hex::decode(&entry.sha256).is_err() {
                return Err(fail(format!(
                    "key `{}`: sha256 must be 64 hex digits",
                    entry.name
                )));
            }
        }
        self.api_keys = file.key;
        Ok(self)
    }

    /// Mints a token for `subject` with `role`, valid for `ttl` from now.
    pub fn mint(&self, subject: &str, role: Role, ttl: Duration) -> String {
        let iat = unix_now();
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            iat,
            exp: iat.saturating_add(ttl.as_secs()),
        };
        self.encode(&claims)
    }

    /// Signs arbitrary claims (used for tokens with a chosen `iat`/`exp`).
    pub fn encode(&self, claims: &Claims) -> String {
        self.encode_claims(claims)
    }

    /// Signs any serialisable claims object, e.g. JSON with `nbf` or out-of-range values (tests
    /// of what `verify` refuses).
    pub fn encode_claims<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks a JWT or an API key.
    pub fn verify(&self, credential: &str) -> Result<Caller, AuthError> {
        if let Some(caller) = self.verify_api_key(credential) {
            return Ok(caller);
        }
        if let Err(e) = jsonwebtoken::decode_header(credential) {
            return Err(refusal(&e, TokenPart::Header));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(credential, &self.decoding, &validation)
            .map_err(|e| refusal(&e, TokenPart::Claims))?
            .claims;
        if claims.exp > MAX_EXP {
            return Err(AuthError::Invalid(format!(
                "`exp` {} is later than {MAX_EXP} (9999-12-31T23:59:59Z), the latest expiry accepted",
                claims.exp
            )));
        }
        Ok(Caller {
            subject: claims.sub,
            role: claims.role,
            expires_at: Some(claims.exp),
        })
    }

    fn verify_api_key(&self, credential: &str) -> Option<Caller> {
        if self.api_keys.is_empty() {
            return None;
        }
        let digest = hex::encode(Sha256::digest(credential.as_bytes()));
        self.api_keys
            .iter()
            .find(|entry| entry.sha256.eq_ignore_ascii_case(&digest))
            .map(|entry| Caller {
                subject: entry.name.clone(),
                role: entry.role,
                expires_at: None,
            })
    }
}

/// Which part of a JWT was being read when it was refused.
#[derive(Debug, Clone, Copy)]
enum TokenPart {
    Header,
    Claims,
}

/// Why a JWT was refused, in the service's words: the JWT library's own messages name its
/// internal types ("unknown variant `none`, expected one of `HS256`, …").
fn refusal(error: &jsonwebtoken::errors::Error, part: TokenPart) -> AuthError {
    use jsonwebtoken::errors::ErrorKind as Kind;
    let reason = match (error.kind(), part) {
        (Kind::ExpiredSignature, _) => return AuthError::Expired,
        (Kind::ImmatureSignature, _) => return AuthError::NotYetValid,
        (Kind::InvalidToken, _) => "not a JWT (three base64url parts joined by `.`)".to_owned(),
        (Kind::Base64(_), _) => "a part is not base64url".to_owned(),
        (Kind::Utf8(_), _) => "a part is not UTF-8".to_owned(),
        (Kind::InvalidSignature, _) => {
            "signature does not match (another secret, or the token was altered)".to_owned()
        }
        (Kind::InvalidAlgorithm | Kind::InvalidAlgorithmName | Kind::MissingAlgorithm, _)
        | (Kind::Json(_), TokenPart::Header) => {
            "header must be a JWT header with `alg` HS256 (the only algorithm accepted)".to_owned()
        }
        (Kind::Json(_), TokenPart::Claims) => "claims must be `sub` (string), `role` \
            (viewer, operator or admin), `iat` and `exp` (Unix seconds, whole numbers)"
            .to_owned(),
        (Kind::MissingRequiredClaim(claim), _) => format!("claim `{claim}` is missing"),
        _ => "refused".to_owned(),
    };
    AuthError::Invalid(reason)
}

/// The hex SHA-256 of an API key, as stored in the key file.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}
