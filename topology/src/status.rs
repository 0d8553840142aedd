//! Cheap shared handles the application reads or triggers from other threads.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Readiness for `/readyz`: true once the first assignment's tasks are restored.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStatus {
    inner: Arc<StatusInner>,
}

#[derive(Debug, Default)]
struct StatusInner {
    ready: AtomicBool,
    tasks: AtomicUsize,
    running: AtomicBool,
}

impl RuntimeStatus {
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::Acquire)
    }

    pub fn task_count(&self) -> usize {
        self.inner.tasks.load(Ordering::Acquire)
    }

    /// False once the stream thread has stopped (shutdown or fatal error).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self, v: bool) {
        self.inner.ready.store(v, Ordering::Release);
    }

    pub(crate) fn set_tasks(&self, n: usize) {
        self.inner.tasks.store(n, Ordering::Release);
    }

    pub(crate) fn set_running(&self, v: bool) {
        self.inner.running.store(v, Ordering::Release);
    }
}

/// Triggers a graceful shutdown (wire SIGTERM / SIGINT to it).
#[derive(Debug, Clone, Default)]
pub struct ShutdownHandle {
    flag: Arc<AtomicBool>,
}

impl ShutdownHandle {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn shutdown(&self) {
        self.flag.store(true, Ordering::Release);
    }

    pub fn is_shutdown(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}
