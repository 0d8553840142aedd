//! Where committed state lives. The runtime only ever writes committed data
//! here (see `TaskStores`), so whatever a backend holds after a crash is a
//! consistent snapshot matching its checkpoints.

use std::collections::BTreeMap;

use crate::StoreError;

/// One atomic unit of committed writes: the values and the changelog
/// offsets they correspond to. Backends must apply it all-or-nothing, which
/// is what makes an unclean crash restore only the changelog tail.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommittedBatch {
    /// `(store index, key, Some(value) | None for delete)`.
    pub writes: Vec<(usize, Vec<u8>, Option<Vec<u8>>)>,
    /// `(store index, next changelog offset to read on restore)`.
    pub checkpoints: Vec<(usize, i64)>,
}

/// Size estimates exported as metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub live_bytes: u64,
    pub estimated_keys: u64,
}

/// Storage of committed state for one task. Stores are addressed by their
/// index in the list given when the backend was opened.
pub trait Backend: Send {
    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits entries with key >= `from` in key order until `visit` returns false.
    fn scan_from(
        &self,
        store: usize,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;
    fn write(&mut self, batch: CommittedBatch) -> Result<(), StoreError>;
    /// A restore batch: may skip the write-ahead log, because restore can
    /// always be redone from the checkpoint written in the same batch. Must be
    /// followed by `persist_bulk` before any `write`.
    fn write_bulk(&mut self, batch: CommittedBatch) -> Result<(), StoreError> {
        self.write(batch)
    }
    /// Makes every `write_bulk` durable (data before checkpoints).
    fn persist_bulk(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn checkpoint(&self, store: usize) -> Result<Option<i64>, StoreError>;
    fn stats(&self, store: usize) -> StoreStats;
    /// Deletes all data and checkpoints (used when the local state is ahead of
    /// or unrelated to its changelog, e.g. after the topic was recreated).
    fn wipe(&mut self) -> Result<(), StoreError>;
    /// Makes written data durable beyond the process (called on close).
    fn flush(&self) -> Result<(), StoreError>;
}

/// In-memory backend for unit tests and the in-memory store variant.
#[derive(Debug, Clone, Default)]
pub struct MemoryBackend {
    maps: Vec<BTreeMap<Vec<u8>, Vec<u8>>>,
    checkpoints: Vec<Option<i64>>,
}

impl MemoryBackend {
    pub fn new(stores: usize) -> Self {
        Self {
            maps: vec![BTreeMap::new(); stores],
            checkpoints: vec![None; stores],
        }
    }

    fn map(&self, store: usize) -> Result<&BTreeMap<Vec<u8>, Vec<u8>>, StoreError> {
        self.maps
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))
    }
}

impl Backend for MemoryBackend {
    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map(store)?.get(key).cloned())
    }

    fn scan_from(
        &self,
        store: usize,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        for (k, v) in self.map(store)?.range(from.to_vec()..) {
            if !visit(k, v) {
                break;
            }
        }
        Ok(())
    }

    fn write(&mut self, batch: CommittedBatch) -> Result<(), StoreError> {
        if let Some((s, _, _)) = batch.writes.iter().find(|(s, _, _)| *s >= self.maps.len()) {
            return Err(StoreError::UnknownStore(format!("#{s}")));
        }
        for (s, k, v) in batch.writes {
            match v {
                Some(v) => self.maps[s].insert(k, v),
                None => self.maps[s].remove(&k),
            };
        }
        for (s, off) in batch.checkpoints {
            if let Some(c) = self.checkpoints.get_mut(s) {
                *c = Some(off);
            }
        }
        Ok(())
    }

    fn checkpoint(&self, store: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.checkpoints.get(store).copied().flatten())
    }

    fn stats(&self, store: usize) -> StoreStats {
        let Some(m) = self.maps.get(store) else {
            return StoreStats::default();
        };
        StoreStats {
            live_bytes: m.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum(),
            estimated_keys: m.len() as u64,
        }
    }

    fn wipe(&mut self) -> Result<(), StoreError> {
        let n = self.maps.len();
        *self = Self::new(n);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
