//! API bearer tokens: `spindle token create` makes a random one, shows it once and keeps only its SHA-256 and an id.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The file in the state directory that holds the token hashes (mode 0600).
pub const TOKENS_FILE: &str = "api-tokens.json";
/// The lock file that serializes `spindle token create` runs (their read-modify-write of the list).
pub const TOKENS_LOCK: &str = "api-tokens.lock";
/// Every token starts with this, so that scanners and people can tell what it is.
pub const TOKEN_PREFIX: &str = "spd_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a token list; fix its JSON or delete it and create the tokens again")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a token named {0:?} already exists; pick another --name")]
    Duplicate(String),
}

/// One token as stored: never the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// Shown in logs and evidence records instead of the token.
    pub id: String,
    pub name: String,
    /// Hex SHA-256 of the token (it is 256 random bits, so a plain hash is enough).
    pub sha256: String,
    pub created: String,
}

/// `<state-dir>/api-tokens.json`.
pub fn tokens_path(state_dir: &Path) -> PathBuf {
    state_dir.join(TOKENS_FILE)
}

/// The stored tokens (none when the file does not exist).
pub fn load(state_dir: &Path) -> Result<Vec<StoredToken>, TokenError> {
    let path = tokens_path(state_dir);
    match crate::statefile::read(&path) {
        Ok(Some(bytes)) => {
            serde_json::from_slice(&bytes).map_err(|source| TokenError::Parse { path, source })
        }
        Ok(None) => Ok(Vec::new()),
        Err(source) => Err(TokenError::Read { path, source }),
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token named `name` (empty: named by its id), stores its hash and returns it with
/// the secret (to show once).
pub fn create(state_dir: &Path, name: &str) -> Result<(StoredToken, String), TokenError> {
    // Concurrent runs take turns: each reads the list, adds its token and writes it back under
    // an exclusive lock, so none loses another's token.
    let lock_path = state_dir.join(TOKENS_LOCK);
    let locked = |source| TokenError::Write {
        path: lock_path.clone(),
        source,
    };
    let lock = crate::statedir::StateDir::open(state_dir)
        .and_then(|d| d.open_file(TOKENS_LOCK, crate::statedir::Access::Lock))
        .map_err(|e| locked(e.into()))?;
    lock.lock().map_err(locked)?;
    let mut tokens = load(state_dir)?;
    if !name.is_empty() && tokens.iter().any(|t| t.name == name) {
        return Err(TokenError::Duplicate(name.to_string()));
    }
    let secret = format!("{TOKEN_PREFIX}{}", hex::encode(rand::random::<[u8; 32]>()));
    let id = format!("tok-{}", hex::encode(rand::random::<[u8; 4]>()));
    let stored = StoredToken {
        name: if name.is_empty() {
            id.clone()
        } else {
            name.to_string()
        },
        id,
        sha256: hash(&secret),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    };
    tokens.push(stored.clone());
    save(state_dir, &tokens)?;
    Ok((stored, secret))
}

/// Writes the list with mode 0600: a temporary file, fsynced, renamed over the old one.
fn save(state_dir: &Path, tokens: &[StoredToken]) -> Result<(), TokenError> {
    let path = tokens_path(state_dir);
    let err = |source| TokenError::Write {
        path: path.clone(),
        source,
    };
    let text = serde_json::to_vec_pretty(tokens).unwrap_or_default();
    crate::statefile::write_atomic(&path, &text).map_err(err)
}

/// The stored token matching `presented`, compared in constant time against every stored hash.
pub fn verify<'a>(tokens: &'a [StoredToken], presented: &str) -> Option<&'a StoredToken> {
    let h = hash(presented);
    let mut found = None;
    for t in tokens {
        if bool::from(t.sha256.as_bytes().ct_eq(h.as_bytes())) {
            found = Some(t);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_created_token_verifies_and_only_its_hash_is_stored_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let (stored, secret) = create(dir.path(), "ci").unwrap();
        assert!(secret.starts_with(TOKEN_PREFIX));
        let text = std::fs::read_to_string(tokens_path(dir.path())).unwrap();
        assert!(!text.contains(&secret));
        let mode = std::fs::metadata(tokens_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let tokens = load(dir.path()).unwrap();
        assert_eq!(verify(&tokens, &secret), Some(&stored));
        assert_eq!(verify(&tokens, "spd_wrong"), None);
        assert_eq!(verify(&tokens, ""), None);
        assert!(matches!(
            create(dir.path(), "ci"),
            Err(TokenError::Duplicate(_))
        ));
    }

    #[test]
    fn twenty_concurrent_creates_keep_all_twenty_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..20)
            .map(|i| {
                let d = dir.path().to_path_buf();
                std::thread::spawn(move || create(&d, &format!("t{i}")).unwrap())
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(load(dir.path()).unwrap().len(), 20);
    }
}
