//! A copy of each probe batch's results kept in the pod, so the harness can
//! read them again when the exec transport loses stdout.
//!
//! Why: the API server's exec stream translator reports `Success` when the
//! kubelet side closes the error stream without a status (client-go
//! `remotecommand` decodes an empty error stream as no error), and its stdout
//! copy only logs a failure. The process ran and printed; the transport lost
//! it. Reading the kept copy re-reads the same observations: no probe runs twice.

use std::io;
use std::path::PathBuf;

/// Under the pod's writable /tmp (the root filesystem is read-only).
const DIR: &str = "/tmp/netconform-results";

/// A batch id is chosen by the harness; only these characters, so it stays a
/// file name and never a path.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn path(id: &str) -> io::Result<PathBuf> {
    if !valid_id(id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("batch id {id:?} is not [a-z0-9-]{{1,64}}"),
        ));
    }
    Ok(PathBuf::from(DIR).join(format!("{id}.json")))
}

/// Kept copies older than this are never asked for: the harness reads one
/// right after its exec returns. /tmp is small (memory-backed, a few MiB).
const STALE: std::time::Duration = std::time::Duration::from_secs(120);

/// Stores `json` for `id`, written whole or not at all (rename), and drops
/// stale copies so a long-lived fixture pod does not collect them.
pub fn keep(id: &str, json: &str) -> io::Result<()> {
    let path = path(id)?;
    std::fs::create_dir_all(DIR)?;
    prune_stale();
    let partial = path.with_extension("partial");
    std::fs::write(&partial, json)?;
    std::fs::rename(&partial, &path)
}

fn prune_stale() {
    let Ok(entries) = std::fs::read_dir(DIR) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The stored results of `id`, removed once read.
pub fn take(id: &str) -> io::Result<String> {
    let path = path(id)?;
    let json = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    Ok(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_file_names_never_paths() {
        assert!(valid_id("b-1f3a9c"));
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            "A",
            "x".repeat(65).as_str(),
            "a.json",
        ] {
            assert!(!valid_id(bad), "{bad:?} must be refused");
            assert!(path(bad).is_err());
        }
    }
}
