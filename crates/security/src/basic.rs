//! Basic authentication (`AuthenticationProviderBasic`): users and password hashes from an
//! htpasswd file (`basicAuthConf`), credentials as `user:password` — the CONNECT's `auth_data`
//! with method `basic`, or an HTTP `Authorization: Basic base64(user:password)` header.
//!
//! Pulsar accepts the two formats its documentation tells operators to make: APR1-MD5
//! (`htpasswd -m`, `$apr1$…`) and DES crypt (`htpasswd -d`, 13 characters). tierlog also accepts
//! bcrypt (`htpasswd -B`, `$2y$…`) and SHA-256/512-crypt (`$5$…`, `$6$…`), which Pulsar's file
//! may not carry but an operator moving to stronger hashes will want. Every hash is checked by a
//! maintained crate (htauth for APR1/bcrypt/SHA-crypt, pw_hash for DES crypt); none is written
//! here. A line in another format (`{SHA}`, plain text, `$1$`) stops the broker at start-up,
//! naming the line and the user, instead of refusing that user's logins later without a word.
//!
//! Verification costs what the hash was made to cost: microseconds for DES and APR1, about a
//! millisecond for SHA-crypt, and for bcrypt 2^cost rounds (htpasswd's default cost 5 is ~2 ms).

use std::collections::HashMap;

use crate::Role;

/// The htpasswd formats tierlog verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// `$apr1$salt$hash` (Apache's MD5, `htpasswd -m`, the default).
    Apr1,
    /// 13 characters, two of salt (`htpasswd -d`).
    DesCrypt,
    /// `$2a$`, `$2b$`, `$2y$` (`htpasswd -B`).
    Bcrypt,
    /// `$5$` and `$6$` (`htpasswd -2`/`-5` in newer Apache).
    ShaCrypt,
}

impl HashFormat {
    fn of(hash: &str) -> Option<HashFormat> {
        const DES_ALPHABET: &[u8] =
            b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        if hash.starts_with("$apr1$") {
            Some(HashFormat::Apr1)
        } else if ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p)) {
            Some(HashFormat::Bcrypt)
        } else if hash.starts_with("$5$") || hash.starts_with("$6$") {
            Some(HashFormat::ShaCrypt)
        } else if hash.len() == 13 && hash.bytes().all(|b| DES_ALPHABET.contains(&b)) {
            Some(HashFormat::DesCrypt)
        } else {
            None
        }
    }
}

struct Entry {
    format: HashFormat,
    hash: String,
}

/// The users of a `basicAuthConf` file. `Debug` shows how many there are, never a hash.
pub struct BasicUsers {
    users: HashMap<String, Entry>,
}

impl std::fmt::Debug for BasicUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicUsers")
            .field("users", &self.users.len())
            .finish()
    }
}

/// Why a `basicAuthConf` file was refused. Names the line and user, never the hash.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BasicConfigError {
    #[error("line {line} is not `user:hash`")]
    Malformed { line: usize },
    #[error(
        "line {line} (user {user:?}): the password hash is in a format tierlog does not verify; \
         make it with `htpasswd -m` (APR1-MD5), `-B` (bcrypt) or `-d` (crypt)"
    )]
    UnsupportedHash { line: usize, user: String },
    #[error("line {line}: user {user:?} is listed twice")]
    Duplicate { line: usize, user: String },
    #[error("the file is not UTF-8")]
    NotUtf8,
    #[error("the file lists no user")]
    Empty,
}

/// Why credentials were refused. One message for an unknown user and a wrong password, as
/// Pulsar answers, so the answer does not tell which users exist.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BasicAuthError {
    #[error("Unknown user or invalid password")]
    Rejected,
    #[error("basic credentials must be `user:password`")]
    Malformed,
}

impl BasicUsers {
    /// Parses an htpasswd file: one `user:hash` per line; blank lines and `#` comments skipped.
    pub fn parse(bytes: &[u8]) -> Result<BasicUsers, BasicConfigError> {
        let text = std::str::from_utf8(bytes).map_err(|_| BasicConfigError::NotUtf8)?;
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line
                .split_once(':')
                .filter(|(u, h)| !u.is_empty() && !h.is_empty() && !h.contains(':'))
                .ok_or(BasicConfigError::Malformed { line: line_no })?;
            let format = HashFormat::of(hash).ok_or_else(|| BasicConfigError::UnsupportedHash {
                line: line_no,
                user: user.to_string(),
            })?;
            let entry = Entry {
                format,
                hash: hash.to_string(),
            };
            if users.insert(user.to_string(), entry).is_some() {
                return Err(BasicConfigError::Duplicate {
                    line: line_no,
                    user: user.to_string(),
                });
            }
        }
        if users.is_empty() {
            return Err(BasicConfigError::Empty);
        }
        Ok(BasicUsers { users })
    }

    /// The role of `user:password` credentials (the user's name), if the password matches.
    pub fn authenticate(&self, credentials: &[u8]) -> Result<Role, BasicAuthError> {
        let text = std::str::from_utf8(credentials).map_err(|_| BasicAuthError::Malformed)?;
        let (user, password) = text.split_once(':').ok_or(BasicAuthError::Malformed)?;
        let entry = self.users.get(user).ok_or(BasicAuthError::Rejected)?;
        let matches = match entry.format {
            HashFormat::DesCrypt => pw_hash::unix_crypt::verify(password, &entry.hash),
            // A hash htauth cannot parse was not going to match; it was classified at load.
            HashFormat::Apr1 | HashFormat::Bcrypt | HashFormat::ShaCrypt => {
                htauth::verify_password(password, &entry.hash).unwrap_or(false)
            }
        };
        if matches {
            Ok(Role::new(user))
        } else {
            Err(BasicAuthError::Rejected)
        }
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hashes made and checked outside the crates under test: `openssl passwd -apr1 / -5 / -6`
    // and glibc's crypt(3) (DES, bcrypt). The first is Pulsar's documentation example.
    const FILE: &str = "\
# made by htpasswd
superuser:$apr1$GBIYZYFZ$MzLcPrvoUky16mLcK6UtX/
apr:$apr1$xlWep/gn$6UNiHq3WE714EKfeH2X5c.
des:aZGJuE6EXrjEE

bcrypt:$2y$05$nC6nErr9XZJuMJ57WyCob.EuZEjylDt2KaHfbfOtyb.EgL1I2jCVa
sha256:$5$saltsalt$SfY4.S9vkCGTfc/PV7AVQfsx8QdycC0tkKCLdz/URW4
sha512:$6$saltsalt$Hzv5ovWvSBoMtjL.BVx3OnzaiWN6reeO7wGZBqDE2UMEmiXqZGJLfHEqg4mT.HPMkeY9IgUKPBNDluiObR0oo/
";

    #[test]
    fn every_format_pulsar_documents_and_bcrypt_verify() {
        let users = BasicUsers::parse(FILE.as_bytes()).unwrap();
        assert_eq!(users.len(), 6);
        // Pulsar's documentation example: superuser / admin.
        assert_eq!(
            users.authenticate(b"superuser:admin").unwrap(),
            Role::new("superuser")
        );
        assert_eq!(users.authenticate(b"apr:hello").unwrap(), Role::new("apr"));
        assert_eq!(users.authenticate(b"des:test").unwrap(), Role::new("des"));
        assert_eq!(
            users.authenticate(b"bcrypt:password").unwrap(),
            Role::new("bcrypt")
        );
        assert!(users.authenticate(b"sha256:sha-pass").is_ok());
        assert!(users.authenticate(b"sha512:sha-pass").is_ok());
    }

    #[test]
    fn wrong_password_unknown_user_and_malformed_credentials_are_refused() {
        let users = BasicUsers::parse(FILE.as_bytes()).unwrap();
        for bad in [
            &b"superuser:Admin"[..],
            b"superuser:",
            b"des:tesT",
            b"bcrypt:passwor",
            b"apr:hello ",
            b"sha256:sha-pasS",
            b"sha512:",
            b"nobody:admin",
        ] {
            assert_eq!(users.authenticate(bad), Err(BasicAuthError::Rejected));
        }
        assert_eq!(
            users.authenticate(b"superuser"),
            Err(BasicAuthError::Malformed)
        );
        assert_eq!(
            users.authenticate(&[0xff, b':', b'x']),
            Err(BasicAuthError::Malformed)
        );
    }

    #[test]
    fn a_bad_file_names_the_line_and_never_the_hash() {
        let err = BasicUsers::parse(
            b"a:$apr1$GBIYZYFZ$MzLcPrvoUky16mLcK6UtX/\nb:{SHA}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n",
        )
        .unwrap_err();
        assert_eq!(
            err,
            BasicConfigError::UnsupportedHash {
                line: 2,
                user: "b".into()
            }
        );
        assert!(!err.to_string().contains("fEqN"));
        assert_eq!(
            BasicUsers::parse(b"plain:secret\n").unwrap_err(),
            BasicConfigError::UnsupportedHash {
                line: 1,
                user: "plain".into()
            }
        );
        assert_eq!(
            BasicUsers::parse(b"no-colon\n").unwrap_err(),
            BasicConfigError::Malformed { line: 1 }
        );
        assert_eq!(
            BasicUsers::parse(b"x:aZGJuE6EXrjEE\nx:aZGJuE6EXrjEE\n").unwrap_err(),
            BasicConfigError::Duplicate {
                line: 2,
                user: "x".into()
            }
        );
        assert_eq!(
            BasicUsers::parse(b"\n# only a comment\n").unwrap_err(),
            BasicConfigError::Empty
        );
        let users = BasicUsers::parse(FILE.as_bytes()).unwrap();
        let debug = format!("{users:?}");
        assert!(!debug.contains("apr1"), "{debug}");
    }

    proptest::proptest! {
        /// Whatever a file or a client sends, parsing and checking answer; they never panic.
        #[test]
        fn arbitrary_files_and_credentials_never_panic(
            file in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            hash in "(\\$apr1\\$|\\$2y\\$|\\$5\\$|\\$6\\$|)[./0-9A-Za-z$]{0,60}",
            credentials in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let _ = BasicUsers::parse(&file);
            if let Ok(users) = BasicUsers::parse(format!("u:{hash}\n").as_bytes()) {
                let _ = users.authenticate(&credentials);
                let mut presented = b"u:".to_vec();
                presented.extend_from_slice(&credentials);
                let _ = users.authenticate(&presented);
            }
        }
    }
}
