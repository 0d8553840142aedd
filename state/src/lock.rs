//! Exclusive ownership of a state directory.
//!
//! `flock` is released by the kernel when the holder dies, so a lock file
//! left behind by a crashed process never blocks a restart: we only refuse
//! when a live process still holds the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::StoreError;

#[derive(Debug)]
pub struct StateDirLock {
    _file: File,
    dir: PathBuf,
}

impl StateDirLock {
    pub fn acquire(dir: &Path) -> Result<Self, StoreError> {
        let io = |source| StoreError::Io {
            dir: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut previous = String::new();
        // A lock file that is not UTF-8 is just an unknown previous owner.
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().to_string();
        // SAFETY: flock on a valid, owned descriptor; no memory is shared.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StoreError::Locked {
                    dir: dir.to_path_buf(),
                    pid: if previous.is_empty() {
                        "unknown".into()
                    } else {
                        previous
                    },
                });
            }
            return Err(io(err));
        }
        let me = std::process::id().to_string();
        if !previous.is_empty() && previous != me {
            tracing::warn!(
                dir = %dir.display(),
                previous_pid = %previous,
                "state directory lock was left by a process that is no longer running; taking it over"
            );
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(me.as_bytes()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(Self {
            _file: file,
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
