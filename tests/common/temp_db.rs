//! A test's SQLite file in the temp directory: made fresh (what an earlier run left is
//! removed) and removed with its `-wal` and `-shm` files when dropped, so test runs leave
//! nothing behind.

use std::ffi::OsStr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `workflow-test-<name>-<process>-<n>.db` in the temp directory; derefs to its path.
pub struct TempDb(PathBuf);

impl TempDb {
    /// A path no other test of any process uses, with no file at it.
    pub fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let file = format!(
            "workflow-test-{name}-{}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let db = TempDb(std::env::temp_dir().join(file));
        db.remove();
        db
    }

    /// The file next to the database with `suffix` appended to its name (`-wal`, `-shm`).
    pub fn sidecar(&self, suffix: &str) -> PathBuf {
        let mut path = self.0.clone().into_os_string();
        path.push(suffix);
        path.into()
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(self.sidecar(suffix));
        }
    }
}

impl Deref for TempDb {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDb {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<OsStr> for TempDb {
    fn as_ref(&self) -> &OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}
