//! RocksDB backend: one database per task, one column family per store, plus
//! a `__checkpoints` column family holding each store's next changelog offset.
//! Values and checkpoints are written in one `WriteBatch`, so a crash at any
//! moment leaves data and checkpoints consistent with each other.

use std::path::{Path, PathBuf};

use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, WriteBatch, DB};

use crate::backend::{Backend, CommittedBatch, StoreStats};
use crate::StoreError;

const CHECKPOINT_CF: &str = "__checkpoints";

pub struct RocksBackend {
    dir: PathBuf,
    stores: Vec<String>,
    db: Option<DB>,
}

impl RocksBackend {
    /// Opens (creating if needed) the task database at `dir` with the given stores.
    pub fn open(dir: &Path, stores: &[String]) -> Result<Self, StoreError> {
        let db = Self::open_db(dir, stores)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            stores: stores.to_vec(),
            db: Some(db),
        })
    }

    fn open_db(dir: &Path, stores: &[String]) -> Result<DB, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        let cfs = stores
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(CHECKPOINT_CF))
            .map(|n| ColumnFamilyDescriptor::new(n, Self::cf_options()));
        DB::open_cf_descriptors(&opts, dir, cfs).map_err(|source| StoreError::Rocks {
            dir: dir.to_path_buf(),
            source,
        })
    }

    /// Memtables per column family, and there is one per store per task:
    /// Kafka Streams' 16 MB x 3 bounds memory (stores x tasks x 48 MB at
    /// worst) while a third memtable keeps bulk restores from stalling on
    /// flushes.
    fn cf_options() -> Options {
        let mut o = Options::default();
        o.set_write_buffer_size(16 << 20);
        o.set_max_write_buffer_number(3);
        o.set_level_zero_file_num_compaction_trigger(8);
        o
    }

    fn rocks_err(&self, source: rocksdb::Error) -> StoreError {
        StoreError::Rocks {
            dir: self.dir.clone(),
            source,
        }
    }

    fn db(&self) -> Result<&DB, StoreError> {
        self.db.as_ref().ok_or_else(|| StoreError::Io {
            dir: self.dir.clone(),
            source: std::io::Error::other("database closed"),
        })
    }

    fn batch(&self, batch: CommittedBatch) -> Result<WriteBatch, StoreError> {
        let mut wb = WriteBatch::default();
        for (s, k, v) in &batch.writes {
            let cf = self.cf(*s)?;
            match v {
                Some(v) => wb.put_cf(cf, k, v),
                None => wb.delete_cf(cf, k),
            }
        }
        if !batch.checkpoints.is_empty() {
            let ccf = self
                .db()?
                .cf_handle(CHECKPOINT_CF)
                .ok_or_else(|| StoreError::UnknownStore(CHECKPOINT_CF.into()))?;
            for (s, off) in &batch.checkpoints {
                let name = self
                    .stores
                    .get(*s)
                    .ok_or_else(|| StoreError::UnknownStore(format!("#{s}")))?;
                wb.put_cf(ccf, name.as_bytes(), off.to_be_bytes());
            }
        }
        Ok(wb)
    }

    fn cf(&self, store: usize) -> Result<&ColumnFamily, StoreError> {
        let name = self
            .stores
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))?;
        self.db()?
            .cf_handle(name)
            .ok_or_else(|| StoreError::UnknownStore(name.clone()))
    }
}

impl Backend for RocksBackend {
    fn get(&self, store: usize, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.cf(store)?;
        self.db()?.get_cf(cf, key).map_err(|e| self.rocks_err(e))
    }

    fn scan_from(
        &self,
        store: usize,
        from: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let cf = self.cf(store)?;
        let iter = self
            .db()?
            .iterator_cf(cf, IteratorMode::From(from, rocksdb::Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| self.rocks_err(e))?;
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn write(&mut self, batch: CommittedBatch) -> Result<(), StoreError> {
        let wb = self.batch(batch)?;
        // The WAL lives in the page cache after write(): it survives kill -9.
        self.db()?.write(wb).map_err(|e| self.rocks_err(e))
    }

    fn write_bulk(&mut self, batch: CommittedBatch) -> Result<(), StoreError> {
        let wb = self.batch(batch)?;
        self.db()?
            .write_without_wal(wb)
            .map_err(|e| self.rocks_err(e))
    }

    fn persist_bulk(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        // Data first: if we die between the two, the older checkpoint only
        // replays changelog records that are already applied (idempotent).
        for name in &self.stores {
            if let Some(cf) = db.cf_handle(name) {
                db.flush_cf(cf).map_err(|e| self.rocks_err(e))?;
            }
        }
        if let Some(cf) = db.cf_handle(CHECKPOINT_CF) {
            db.flush_cf(cf).map_err(|e| self.rocks_err(e))?;
        }
        Ok(())
    }

    fn checkpoint(&self, store: usize) -> Result<Option<i64>, StoreError> {
        let name = self
            .stores
            .get(store)
            .ok_or_else(|| StoreError::UnknownStore(format!("#{store}")))?;
        let db = self.db()?;
        let ccf = db
            .cf_handle(CHECKPOINT_CF)
            .ok_or_else(|| StoreError::UnknownStore(CHECKPOINT_CF.into()))?;
        match db
            .get_cf(ccf, name.as_bytes())
            .map_err(|e| self.rocks_err(e))?
        {
            None => Ok(None),
            Some(b) => {
                let arr: [u8; 8] =
                    b.as_slice()
                        .try_into()
                        .map_err(|_| StoreError::CorruptCheckpoint {
                            store: name.clone(),
                            len: b.len(),
                        })?;
                Ok(Some(i64::from_be_bytes(arr)))
            }
        }
    }

    fn stats(&self, store: usize) -> StoreStats {
        let (Ok(db), Ok(cf)) = (self.db(), self.cf(store)) else {
            return StoreStats::default();
        };
        let prop = |p: &str| {
            db.property_int_value_cf(cf, p)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        StoreStats {
            live_bytes: prop("rocksdb.estimate-live-data-size")
                + prop("rocksdb.cur-size-all-mem-tables"),
            estimated_keys: prop("rocksdb.estimate-num-keys"),
        }
    }

    fn wipe(&mut self) -> Result<(), StoreError> {
        self.db = None;
        DB::destroy(&Options::default(), &self.dir).map_err(|e| self.rocks_err(e))?;
        self.db = Some(Self::open_db(&self.dir, &self.stores)?);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        let db = self.db()?;
        db.flush_wal(true).map_err(|e| self.rocks_err(e))
    }
}
