//! Key material as Pulsar's configuration names it: a `data:` URL (`data:;base64,…`), a
//! `file:` URL, a path, or the key itself in base64 (`tokenSecretKey`, `tokenPublicKey`,
//! `basicAuthConf` all accept these forms).

use base64::Engine;

/// Why key material could not be read. Never carries the key's bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeySourceError {
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the data: URL is malformed (expected data:[<type>][;base64],<data>)")]
    BadDataUrl,
    #[error("the value is neither a data: or file: URL, an existing file, nor base64")]
    Unrecognised,
}

/// The bytes `value` names.
pub fn read_key_source(value: &str) -> Result<Vec<u8>, KeySourceError> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or(KeySourceError::BadDataUrl)?;
        return if meta.ends_with(";base64") {
            base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|_| KeySourceError::BadDataUrl)
        } else {
            Ok(percent_encoding::percent_decode_str(data).collect())
        };
    }
    if let Some(rest) = value.strip_prefix("file:") {
        // file:///abs, file:/abs and file:relative all name a path.
        let path = rest.strip_prefix("//").unwrap_or(rest);
        return read_file(path);
    }
    if std::path::Path::new(value).is_file() {
        return read_file(value);
    }
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|_| KeySourceError::Unrecognised)
}

fn read_file(path: &str) -> Result<Vec<u8>, KeySourceError> {
    std::fs::read(path).map_err(|source| KeySourceError::Unreadable {
        path: path.to_string(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_pulsar_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k");
        std::fs::write(&file, b"secret-bytes").unwrap();
        let path = file.display().to_string();
        assert_eq!(read_key_source(&path).unwrap(), b"secret-bytes");
        assert_eq!(
            read_key_source(&format!("file://{path}")).unwrap(),
            b"secret-bytes"
        );
        assert_eq!(
            read_key_source(&format!("file:{path}")).unwrap(),
            b"secret-bytes"
        );
        assert_eq!(
            read_key_source("data:;base64,c2VjcmV0LWJ5dGVz").unwrap(),
            b"secret-bytes"
        );
        assert_eq!(
            read_key_source("data:application/octet-stream;base64,c2VjcmV0LWJ5dGVz").unwrap(),
            b"secret-bytes"
        );
        assert_eq!(
            read_key_source("c2VjcmV0LWJ5dGVz").unwrap(),
            b"secret-bytes"
        );
        assert!(matches!(
            read_key_source("file:///no/such/key"),
            Err(KeySourceError::Unreadable { .. })
        ));
        assert!(matches!(
            read_key_source("data:no-comma"),
            Err(KeySourceError::BadDataUrl)
        ));
        assert!(matches!(
            read_key_source("not base64 and not a file!"),
            Err(KeySourceError::Unrecognised)
        ));
    }
}
