//! A bounded pool of worker threads for check runs. Jobs wait in a queue; each worker runs one
//! at a time. The scheduler can give up on a job: a job still queued is dropped, a job already
//! running is abandoned — its worker no longer counts towards the pool size, so a replacement is
//! started (up to `max_threads` threads in all). An abandoned worker that comes back retires if
//! the pool is full. So a check that hangs costs one thread, never the progress of the others.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Instant;

/// A unit of work.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

struct State {
    queue: VecDeque<(u64, Job)>,
    /// Running jobs and when they started.
    running: HashMap<u64, Instant>,
    /// Queued jobs given up on: skipped when dequeued.
    cancelled: HashSet<u64>,
    /// Running jobs given up on: their workers do not count towards `workers`.
    abandoned: HashSet<u64>,
    alive: usize,
    stopping: bool,
}

struct Inner {
    state: Mutex<State>,
    wake: Condvar,
    workers: usize,
    max_threads: usize,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool. Dropping it stops idle workers; running jobs finish first.
pub(crate) struct Pool {
    inner: Arc<Inner>,
}

impl Pool {
    /// A pool of `workers` threads, growing to at most `max_threads` to replace hung ones.
    pub(crate) fn new(workers: usize, max_threads: usize) -> Pool {
        let workers = workers.max(1);
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                running: HashMap::new(),
                cancelled: HashSet::new(),
                abandoned: HashSet::new(),
                alive: 0,
                stopping: false,
            }),
            wake: Condvar::new(),
            workers,
            max_threads: max_threads.max(workers),
        });
        let pool = Pool { inner };
        let mut st = pool.inner.lock();
        Self::fill(&pool.inner, &mut st);
        drop(st);
        pool
    }

    /// Starts workers until `workers` of them are not abandoned, within `max_threads`.
    fn fill(inner: &Arc<Inner>, st: &mut State) {
        while st.alive.saturating_sub(st.abandoned.len()) < inner.workers && st.alive < inner.max_threads {
            let me = Arc::clone(inner);
            let spawned = thread::Builder::new().name("rvs-health-worker".into()).spawn(move || worker(&me));
            if spawned.is_err() {
                break;
            }
            st.alive += 1;
        }
    }

    /// Queues a job.
    pub(crate) fn submit(&self, id: u64, job: Job) {
        let mut st = self.inner.lock();
        st.queue.push_back((id, job));
        drop(st);
        self.inner.wake.notify_one();
    }

    /// When job `id` started, if it is running.
    pub(crate) fn started_at(&self, id: u64) -> Option<Instant> {
        self.inner.lock().running.get(&id).copied()
    }

    /// Gives up on job `id`: drops it if queued, abandons its worker if running.
    pub(crate) fn give_up(&self, id: u64) {
        let mut st = self.inner.lock();
        if st.running.contains_key(&id) {
            st.abandoned.insert(id);
            Self::fill(&self.inner, &mut st);
        } else if st.queue.iter().any(|(q, _)| *q == id) {
            st.cancelled.insert(id);
        }
    }

    /// Threads alive (including abandoned ones still running).
    #[cfg(test)]
    pub(crate) fn threads(&self) -> usize {
        self.inner.lock().alive
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.stopping = true;
        st.queue.clear();
        drop(st);
        self.inner.wake.notify_all();
    }
}

fn worker(inner: &Inner) {
    let mut st = inner.lock();
    loop {
        if st.stopping {
            st.alive = st.alive.saturating_sub(1);
            return;
        }
        let Some((id, job)) = st.queue.pop_front() else {
            st = inner.wake.wait(st).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        if st.cancelled.remove(&id) {
            continue;
        }
        st.running.insert(id, Instant::now());
        drop(st);
        job();
        st = inner.lock();
        st.running.remove(&id);
        st.abandoned.remove(&id);
        // A replacement took this worker's place while it hung: retire if the pool is full.
        if st.alive > inner.workers + st.abandoned.len() {
            st.alive = st.alive.saturating_sub(1);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn abandoned_job_is_replaced_and_others_run() {
        let pool = Pool::new(1, 4);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<u64>();
        // Job 1 blocks until released: it stands for a check that ignores its deadline.
        pool.submit(
            1,
            Box::new(move || {
                let _ = release_rx.recv();
            }),
        );
        // Wait (bounded) until it runs, then queue job 2 behind it on the only worker.
        let t0 = Instant::now();
        while pool.started_at(1).is_none() && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(1));
        }
        assert!(pool.started_at(1).is_some());
        let tx = done_tx.clone();
        pool.submit(
            2,
            Box::new(move || {
                let _ = tx.send(2);
            }),
        );
        // Job 2 cannot run while the only worker hangs...
        assert!(done_rx.recv_timeout(Duration::from_millis(100)).is_err());
        // ...giving up on job 1 starts a replacement, which runs job 2.
        pool.give_up(1);
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)), Ok(2));
        assert_eq!(pool.threads(), 2);
        // When the hung job returns, its worker retires: back to one thread.
        release_tx.send(()).unwrap();
        let t0 = Instant::now();
        while pool.threads() != 1 && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(pool.threads(), 1);
    }

    #[test]
    fn queued_job_given_up_is_skipped() {
        let pool = Pool::new(1, 1);
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel::<u64>();
        pool.submit(
            1,
            Box::new(move || {
                let _ = release_rx.recv();
            }),
        );
        for id in [2, 3] {
            let tx = done_tx.clone();
            pool.submit(
                id,
                Box::new(move || {
                    let _ = tx.send(id);
                }),
            );
        }
        pool.give_up(2);
        release_tx.send(()).unwrap();
        assert_eq!(done_rx.recv_timeout(Duration::from_secs(10)), Ok(3), "2 was skipped");
    }

    #[test]
    fn pool_never_exceeds_max_threads() {
        let pool = Pool::new(1, 2);
        let (_hold, rx) = mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        for id in 0..3 {
            let rx = Arc::clone(&rx);
            pool.submit(id, Box::new(move || drop(rx.lock().map(|r| r.recv_timeout(Duration::from_secs(2))))));
        }
        let t0 = Instant::now();
        while pool.started_at(0).is_none() && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(1));
        }
        for id in 0..3 {
            pool.give_up(id);
        }
        assert!(pool.threads() <= 2);
    }
}
