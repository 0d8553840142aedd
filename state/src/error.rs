use std::path::PathBuf;

/// Failures of the state layer. Every variant names the store or directory
/// involved so an operator can act on the message alone.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {dir} is locked by another live process (pid {pid}); stop it or use another state directory")]
    Locked { dir: PathBuf, pid: String },
    #[error("state directory {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("RocksDB at {dir}: {source}")]
    Rocks {
        dir: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("unknown store `{0}`")]
    UnknownStore(String),
    #[error("corrupt checkpoint for store `{store}`: expected 8 bytes, got {len}")]
    CorruptCheckpoint { store: String, len: usize },
}
