//! The stores of one task: committed state in a backend plus the write buffer
//! of the open transaction.
//!
//! Reads see the buffer first, so a processor observes its own uncommitted
//! writes. Nothing reaches the backend until the runtime has committed the
//! Kafka transaction that carried the matching changelog records; then the
//! buffer and the new checkpoints are applied in one atomic batch. Aborting
//! simply drops the buffer.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use crate::backend::{Backend, CommittedBatch, MemoryBackend, StoreStats};
use crate::rocks::RocksBackend;
use crate::StoreError;

/// A store write of the open transaction: `None` deletes.
pub type Pending = Option<Vec<u8>>;

/// Key-value pairs in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub struct TaskStores {
    names: Vec<String>,
    backend: Box<dyn Backend>,
    buffer: Vec<BTreeMap<Vec<u8>, Pending>>,
}

impl std::fmt::Debug for TaskStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskStores")
            .field("names", &self.names)
            .field("buffered", &self.buffered_len())
            .finish()
    }
}

impl TaskStores {
    /// Opens the task's RocksDB database in `dir` (one column family per store).
    pub fn open_rocksdb(dir: &Path, names: &[String]) -> Result<Self, StoreError> {
        Ok(Self::with_backend(
            names,
            Box::new(RocksBackend::open(dir, names)?),
        ))
    }

    /// In-memory stores, for unit tests of processors.
    pub fn in_memory(names: &[String]) -> Self {
        Self::with_backend(names, Box::new(MemoryBackend::new(names.len())))
    }

    pub fn with_backend(names: &[String], backend: Box<dyn Backend>) -> Self {
        Self {
            names: names.to_vec(),
            backend,
            buffer: vec![BTreeMap::new(); names.len()],
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of a store by name; lookups by index avoid string compares
    /// on the hot path.
    pub fn index(&self, name: &str) -> Result<usize, StoreError> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| StoreError::UnknownStore(name.to_string()))
    }

    pub fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(b) = self.buffer.get(store) {
            if let Some(p) = b.get(key) {
                return Ok(p.clone());
            }
        }
        self.backend.get(store, key)
    }

    pub fn put(&mut self, store: usize, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.buf(store)?.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    pub fn delete(&mut self, store: usize, key: &[u8]) -> Result<(), StoreError> {
        self.buf(store)?.insert(key.to_vec(), None);
        Ok(())
    }

    fn buf(&mut self, store: usize) -> Result<&mut BTreeMap<Vec<u8>, Pending>, StoreError> {
        self.buffer
            .get_mut(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))
    }

    /// All entries whose key starts with `prefix`, in key order, including
    /// uncommitted writes (an empty prefix iterates the whole store).
    pub fn scan_prefix(&self, store: usize, prefix: &[u8]) -> Result<Entries, StoreError> {
        let mut committed: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        self.backend.scan_from(store, prefix, &mut |k, v| {
            if k.starts_with(prefix) {
                committed.insert(k.to_vec(), v.to_vec());
                true
            } else {
                false
            }
        })?;
        if let Some(b) = self.buffer.get(store) {
            let range = b.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded));
            for (k, p) in range {
                if !k.starts_with(prefix) {
                    break;
                }
                match p {
                    Some(v) => committed.insert(k.clone(), v.clone()),
                    None => committed.remove(k),
                };
            }
        }
        Ok(committed.into_iter().collect())
    }

    /// Uncommitted writes per store, in key order: the runtime turns these into
    /// changelog records (one per key, the last value wins, as compaction would).
    pub fn dirty(&self) -> impl Iterator<Item = (usize, &[u8], Option<&[u8]>)> {
        self.buffer.iter().enumerate().flat_map(|(s, m)| {
            m.iter()
                .map(move |(k, v)| (s, k.as_slice(), v.as_ref().map(Vec::as_slice)))
        })
    }

    pub fn buffered_len(&self) -> usize {
        self.buffer.iter().map(BTreeMap::len).sum()
    }

    /// Applies the buffer and the new checkpoints atomically. Call only after
    /// the transaction holding the changelog records committed.
    pub fn commit(&mut self, checkpoints: &[(usize, i64)]) -> Result<(), StoreError> {
        let mut batch = CommittedBatch {
            writes: Vec::with_capacity(self.buffered_len()),
            checkpoints: checkpoints.to_vec(),
        };
        for (s, m) in self.buffer.iter_mut().enumerate() {
            for (k, v) in std::mem::take(m) {
                batch.writes.push((s, k, v));
            }
        }
        if batch.writes.is_empty() && batch.checkpoints.is_empty() {
            return Ok(());
        }
        self.backend.write(batch)
    }

    /// Drops uncommitted writes (transaction aborted).
    pub fn discard(&mut self) {
        for m in &mut self.buffer {
            m.clear();
        }
    }

    /// Writes restored changelog records straight to the backend together
    /// with the offset to resume from (bypassing the WAL: see `finish_restore`).
    pub fn restore_batch(
        &mut self,
        store: usize,
        records: Vec<(Vec<u8>, Pending)>,
        next_offset: i64,
    ) -> Result<(), StoreError> {
        let batch = CommittedBatch {
            writes: records.into_iter().map(|(k, v)| (store, k, v)).collect(),
            checkpoints: vec![(store, next_offset)],
        };
        self.backend.write_bulk(batch)
    }

    /// Makes restored data durable; call once a restore is complete and
    /// before the task commits anything.
    pub fn finish_restore(&self) -> Result<(), StoreError> {
        self.backend.persist_bulk()
    }

    /// Next changelog offset to restore from; `None` means restore from the start.
    pub fn checkpoint(&self, store: usize) -> Result<Option<i64>, StoreError> {
        self.backend.checkpoint(store)
    }

    pub fn stats(&self, store: usize) -> StoreStats {
        self.backend.stats(store)
    }

    pub fn wipe(&mut self) -> Result<(), StoreError> {
        self.discard();
        self.backend.wipe()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.backend.flush()
    }
}
