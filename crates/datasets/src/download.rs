//! Verified downloads: fetched into a temporary file beside the target, checked, then
//! renamed into place, so a failed or corrupt download leaves nothing behind.

use std::io;
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};
use crate::idx;

/// The most bytes accepted for one file; the largest MNIST file is under 10 MB.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// Fetches files over HTTP(S) and keeps them only when their contents check out.
#[derive(Debug, Clone)]
pub(crate) struct Downloader {
    agent: ureq::Agent,
}

impl Downloader {
    /// A downloader with bounded waits: 30 s to connect, 10 min per file in all.
    pub(crate) fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_global(Some(Duration::from_secs(600)))
            .build();
        Self {
            agent: config.new_agent(),
        }
    }

    /// Downloads `url` to `destination` when the SHA-256 of its contents (after gunzip,
    /// when the body is gzipped) is `content_sha256` (lower-case hex). On any failure
    /// `destination` is left as it was and no temporary file remains.
    pub(crate) fn fetch_verified(
        &self,
        url: &str,
        destination: &Path,
        content_sha256: &str,
    ) -> Result<()> {
        let directory = destination.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(directory).map_err(|source| Error::io(directory, source))?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".download-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Readable like any file the user creates (0o666 less the umask), not 0o600.
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let mut partial = builder
            .tempfile_in(directory)
            .map_err(|source| Error::io(directory, source))?;

        self.fetch_into(url, &mut partial)?;

        let found = contents_sha256(partial.path())?;
        if found != content_sha256 {
            return Err(Error::Checksum {
                url: url.to_owned(),
                expected: content_sha256.to_owned(),
                found,
            });
        }
        partial
            .persist(destination)
            .map_err(|error| Error::io(destination, error.error))?;
        Ok(())
    }

    /// Streams the body of `url` into `file`.
    fn fetch_into(&self, url: &str, file: &mut NamedTempFile) -> Result<()> {
        let failure = |reason: String| Error::Download {
            url: url.to_owned(),
            reason,
        };
        let response = self.agent.get(url).call().map_err(|error| match error {
            ureq::Error::StatusCode(status) => failure(format!("HTTP status {status}")),
            other => failure(other.to_string()),
        })?;
        let mut body = response
            .into_body()
            .into_with_config()
            .limit(MAX_DOWNLOAD_BYTES)
            .reader();
        io::copy(&mut body, file).map_err(|error| failure(error.to_string()))?;
        file.as_file()
            .sync_all()
            .map_err(|source| Error::io(file.path(), source))
    }
}

/// The lower-case hex SHA-256 of a file's contents, gunzipped when it is gzipped.
pub(crate) fn contents_sha256(path: &Path) -> Result<String> {
    let mut reader = idx::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut reader, &mut hasher).map_err(|source| idx::read_error(path, source))?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::idx::tests::gzip;
    use crate::test_server::TestServer;

    /// SHA-256("abc"), the FIPS 180-2 test vector.
    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn contents_hash_is_that_of_the_gunzipped_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("abc");
        let zipped = dir.path().join("abc.gz");
        std::fs::write(&raw, b"abc").unwrap();
        std::fs::write(&zipped, gzip(b"abc")).unwrap();
        assert_eq!(contents_sha256(&raw).unwrap(), ABC_SHA256);
        assert_eq!(contents_sha256(&zipped).unwrap(), ABC_SHA256);
    }

    #[test]
    fn good_download_lands_at_the_destination_only() {
        let body = gzip(b"abc");
        let server =
            TestServer::start(HashMap::from([("/abc.gz".to_owned(), (200, body.clone()))]));
        let cache = tempfile::tempdir().unwrap();
        let destination = cache.path().join("nested").join("abc.gz");
        let url = format!("{}abc.gz", server.base_url());
        Downloader::new()
            .fetch_verified(&url, &destination, ABC_SHA256)
            .unwrap();
        assert_eq!(std::fs::read(&destination).unwrap(), body);
        assert_eq!(entries(destination.parent().unwrap()), ["abc.gz"]);
        assert_eq!(server.requested(), ["/abc.gz"]);
    }

    #[test]
    fn wrong_checksum_is_an_error_and_leaves_nothing() {
        let server =
            TestServer::start(HashMap::from([("/abc.gz".to_owned(), (200, gzip(b"abd")))]));
        let cache = tempfile::tempdir().unwrap();
        let destination = cache.path().join("abc.gz");
        let url = format!("{}abc.gz", server.base_url());
        match Downloader::new().fetch_verified(&url, &destination, ABC_SHA256) {
            Err(Error::Checksum {
                url: error_url,
                expected,
                found,
            }) => {
                assert_eq!(error_url, url);
                assert_eq!(expected, ABC_SHA256);
                assert_ne!(found, ABC_SHA256);
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        assert!(entries(cache.path()).is_empty());
    }

    #[test]
    fn server_errors_are_errors_and_leave_nothing() {
        let server = TestServer::start(HashMap::from([(
            "/broken.gz".to_owned(),
            (500, b"oops".to_vec()),
        )]));
        let cache = tempfile::tempdir().unwrap();
        for (name, status) in [("missing.gz", 404), ("broken.gz", 500)] {
            let url = format!("{}{name}", server.base_url());
            let result =
                Downloader::new().fetch_verified(&url, &cache.path().join(name), ABC_SHA256);
            match result {
                Err(Error::Download {
                    url: error_url,
                    reason,
                }) => {
                    assert_eq!(error_url, url);
                    assert_eq!(reason, format!("HTTP status {status}"));
                }
                other => panic!("expected a download error, got {other:?}"),
            }
        }
        assert!(entries(cache.path()).is_empty());
    }

    #[test]
    fn unreachable_server_is_an_error() {
        let closed_port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let cache = tempfile::tempdir().unwrap();
        let url = format!("http://127.0.0.1:{closed_port}/abc.gz");
        let result =
            Downloader::new().fetch_verified(&url, &cache.path().join("abc.gz"), ABC_SHA256);
        assert!(matches!(result, Err(Error::Download { .. })), "{result:?}");
        assert!(entries(cache.path()).is_empty());
    }
}
