//! Thread counts are checked against what the OS leaves before anything is spawned: a pool of
//! a million workers is refused with one line (it used to abort the process after ~16k threads).

use scheduler::{thread_limit, Pool, RunError};

#[test]
fn a_pool_over_the_thread_limit_is_refused_before_any_thread_starts() {
    let limit = thread_limit();
    for workers in [1_000_000usize, 1_000_000_000, usize::MAX] {
        let err = Pool::builder(workers).build().unwrap_err();
        assert!(matches!(err, RunError::Invalid(_)), "{err:?}");
        let m = err.to_string();
        assert!(
            m.starts_with(&format!(
                "workers = {workers}: this process may start at most "
            )),
            "{m}"
        );
        assert!(!m.contains('\n'), "{m}");
    }
    // nothing was spawned: the limit is where it was (give or take other tests' threads)
    assert!(thread_limit() + 64 >= limit);
}

#[test]
fn a_modest_pool_still_starts() {
    let pool = Pool::builder(8).build().unwrap();
    assert_eq!(pool.threads_spawned(), 8);
}
