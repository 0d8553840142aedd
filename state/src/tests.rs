use super::*;

fn names() -> Vec<String> {
    vec!["counts".to_string(), "names".to_string()]
}

fn exercise_buffer(mut s: TaskStores) {
    s.put(0, b"a", b"1").unwrap();
    s.put(0, b"b", b"2").unwrap();
    assert_eq!(s.get(0, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get(1, b"a").unwrap(), None, "stores are separate");
    s.commit(&[(0, 42)]).unwrap();
    assert_eq!(s.checkpoint(0).unwrap(), Some(42));
    assert_eq!(s.checkpoint(1).unwrap(), None);

    s.put(0, b"a", b"10").unwrap();
    s.delete(0, b"b").unwrap();
    assert_eq!(s.get(0, b"a").unwrap(), Some(b"10".to_vec()));
    assert_eq!(s.get(0, b"b").unwrap(), None);
    let dirty: Vec<_> = s.dirty().collect();
    assert_eq!(
        dirty,
        vec![(0, &b"a"[..], Some(&b"10"[..])), (0, &b"b"[..], None)]
    );
    s.discard();
    assert_eq!(s.get(0, b"a").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.get(0, b"b").unwrap(), Some(b"2".to_vec()));
    assert_eq!(s.checkpoint(0).unwrap(), Some(42));
}

#[test]
fn memory_buffer_commit_discard() {
    exercise_buffer(TaskStores::in_memory(&names()));
}

#[test]
fn rocks_buffer_commit_discard() {
    let dir = tempfile::tempdir().unwrap();
    exercise_buffer(TaskStores::open_rocksdb(dir.path(), &names()).unwrap());
}

fn exercise_scan(mut s: TaskStores) {
    for k in ["s/1", "s/2", "s/3", "t/1"] {
        s.put(0, k.as_bytes(), b"c").unwrap();
    }
    s.commit(&[]).unwrap();
    s.delete(0, b"s/2").unwrap();
    s.put(0, b"s/4", b"u").unwrap();
    s.put(0, b"s/1", b"u").unwrap();
    let got: Vec<(String, String)> = s
        .scan_prefix(0, b"s/")
        .unwrap()
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .collect();
    let want: Vec<(String, String)> = [("s/1", "u"), ("s/3", "c"), ("s/4", "u")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(s.scan_prefix(0, b"").unwrap().len(), 4);
}

#[test]
fn memory_scan_merges_buffer() {
    exercise_scan(TaskStores::in_memory(&names()));
}

#[test]
fn rocks_scan_merges_buffer() {
    let dir = tempfile::tempdir().unwrap();
    exercise_scan(TaskStores::open_rocksdb(dir.path(), &names()).unwrap());
}

#[test]
fn rocks_persists_committed_only_and_wipes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = TaskStores::open_rocksdb(dir.path(), &names()).unwrap();
        s.put(0, b"k", b"v").unwrap();
        s.commit(&[(0, 7)]).unwrap();
        s.restore_batch(1, vec![(b"n".to_vec(), Some(b"1".to_vec()))], 3)
            .unwrap();
        s.put(0, b"uncommitted", b"x").unwrap();
    }
    let mut s = TaskStores::open_rocksdb(dir.path(), &names()).unwrap();
    assert_eq!(s.get(0, b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(s.get(0, b"uncommitted").unwrap(), None);
    assert_eq!(s.get(1, b"n").unwrap(), Some(b"1".to_vec()));
    assert_eq!(s.checkpoint(0).unwrap(), Some(7));
    assert_eq!(s.checkpoint(1).unwrap(), Some(3));
    s.wipe().unwrap();
    assert_eq!(s.get(0, b"k").unwrap(), None);
    assert_eq!(s.checkpoint(0).unwrap(), None);
}

#[test]
fn unknown_store_is_an_error() {
    let s = TaskStores::in_memory(&names());
    assert!(matches!(s.index("nope"), Err(StoreError::UnknownStore(n)) if n == "nope"));
    assert_eq!(s.index("names").unwrap(), 1);
}

#[test]
fn lock_refuses_live_holder_and_recovers_dead_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = StateDirLock::acquire(dir.path()).unwrap();
    match StateDirLock::acquire(dir.path()) {
        Err(StoreError::Locked { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(first);
    // A lock file naming a process that no longer holds the lock is taken over.
    std::fs::write(dir.path().join(".lock"), "999999").unwrap();
    let _again = StateDirLock::acquire(dir.path()).unwrap();
    let content = std::fs::read_to_string(dir.path().join(".lock")).unwrap();
    assert_eq!(content, std::process::id().to_string());
}
