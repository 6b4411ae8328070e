//! Which claimed delivery a free worker takes next. Pure: the dispatcher tells it what was
//! claimed, started and finished, and what time it is; it answers what to claim, what to start
//! and what to hand back. No tenant may hold every worker: one whose receivers are slow or dead
//! keeps at most its share, and its surplus waits here ("parked") for one of its own workers,
//! or goes back to the queue after a poll interval so other tenants' jobs reach the free ones.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chimatic_domain::WorkspaceId;
use chimatic_store::ClaimedJob;
use tokio::time::Instant;

pub struct Schedule {
    concurrency: usize,
    per_workspace: usize,
    poll_interval: Duration,
    /// Claimed jobs in claim order, waiting for a free worker.
    buffer: VecDeque<ClaimedJob>,
    /// Jobs of workspaces at their share, with when they were parked.
    parked: VecDeque<(ClaimedJob, Instant)>,
    /// Workers busy per workspace; a workspace with none is absent.
    busy: HashMap<WorkspaceId, usize>,
    last_resume: Option<Instant>,
}

impl Schedule {
    pub fn new(concurrency: usize, poll_interval: Duration) -> Self {
        let concurrency = concurrency.max(1);
        Self {
            concurrency,
            // An eighth of the workers (at least one) always stays free for other workspaces.
            per_workspace: concurrency.saturating_sub((concurrency / 8).max(1)).max(1),
            poll_interval,
            buffer: VecDeque::with_capacity(2 * concurrency),
            parked: VecDeque::new(),
            busy: HashMap::new(),
            last_resume: None,
        }
    }

    /// How many jobs to claim now, if any. Claiming a worker pool's worth at a time keeps claim
    /// transactions (each a commit) rare; what is held here never exceeds 2 × concurrency.
    pub fn claim_size(&self) -> Option<u32> {
        let held = self.buffer.len() + self.parked.len();
        (held <= self.concurrency / 2).then(|| u32::try_from(2 * self.concurrency - held).unwrap_or(u32::MAX))
    }

    pub fn claimed(&mut self, jobs: impl IntoIterator<Item = ClaimedJob>) {
        self.buffer.extend(jobs);
    }

    /// Parked jobs that waited a poll interval or more: they go back to the queue.
    pub fn take_stale(&mut self, now: Instant) -> Vec<ClaimedJob> {
        let interval = self.poll_interval;
        let (stale, fresh): (Vec<_>, Vec<_>) =
            self.parked.drain(..).partition(|(_, since)| now.duration_since(*since) >= interval);
        self.parked.extend(fresh);
        stale.into_iter().map(|(job, _)| job).collect()
    }

    /// Whether it is time to release held deliveries of unfrozen workspaces (once per poll
    /// interval); answering `true` starts the next interval.
    pub fn resume_due(&mut self, now: Instant) -> bool {
        let due = self.last_resume.is_none_or(|t| now.duration_since(t) >= self.poll_interval);
        if due {
            self.last_resume = Some(now);
        }
        due
    }

    /// The job to start next: a parked job whose workspace has a free worker again goes first,
    /// then the buffer in claim order. Buffered jobs of a workspace at its share are parked on
    /// the way. `None` when nothing can start.
    pub fn next(&mut self, now: Instant) -> Option<ClaimedJob> {
        if let Some(i) = self.parked.iter().position(|(j, _)| self.has_room(j.workspace_id)) {
            return self.parked.remove(i).map(|(job, _)| job);
        }
        while let Some(job) = self.buffer.pop_front() {
            if self.has_room(job.workspace_id) {
                return Some(job);
            }
            self.parked.push_back((job, now));
        }
        None
    }

    /// A job taken with [`next`](Self::next) that could not start (shutdown): it goes first next time.
    pub fn put_back(&mut self, job: ClaimedJob) {
        self.buffer.push_front(job);
    }

    pub fn started(&mut self, ws: WorkspaceId) {
        *self.busy.entry(ws).or_default() += 1;
    }

    pub fn finished(&mut self, ws: WorkspaceId) {
        if let Some(n) = self.busy.get_mut(&ws) {
            *n -= 1;
            if *n == 0 {
                self.busy.remove(&ws);
            }
        }
    }

    /// Whether a job waits only for one of its workspace's workers to finish.
    pub fn waiting_for_a_slot(&self) -> bool {
        !self.parked.is_empty()
    }

    /// Every job claimed but not started, for handing back to the queue.
    pub fn unstarted(self) -> Vec<ClaimedJob> {
        self.buffer.into_iter().chain(self.parked.into_iter().map(|(job, _)| job)).collect()
    }

    fn has_room(&self, ws: WorkspaceId) -> bool {
        self.busy.get(&ws).copied().unwrap_or(0) < self.per_workspace
    }
}

#[cfg(test)]
mod tests {
    use chimatic_domain::NotificationId;

    use super::*;

    const POLL: Duration = Duration::from_millis(250);

    fn job(ws: WorkspaceId) -> ClaimedJob {
        ClaimedJob {
            notification_id: NotificationId::generate(),
            workspace_id: ws,
            round_attempts: 0,
            lease_token: String::new(),
            prefetched: Default::default(),
        }
    }

    /// Starts whatever can start now, returning the workspaces in start order.
    fn start_all(s: &mut Schedule, now: Instant) -> Vec<WorkspaceId> {
        let mut started = Vec::new();
        while let Some(j) = s.next(now) {
            s.started(j.workspace_id);
            started.push(j.workspace_id);
        }
        started
    }

    #[test]
    fn claims_two_pools_worth_and_again_only_when_half_a_pool_is_left() {
        let mut s = Schedule::new(8, POLL);
        assert_eq!(s.claim_size(), Some(16));
        let ws = WorkspaceId::generate();
        s.claimed((0..5).map(|_| job(ws)));
        assert_eq!(s.claim_size(), None, "5 held is more than half of 8");
        s.next(Instant::now());
        assert_eq!(s.claim_size(), Some(12), "4 held: top up to 16");
    }

    #[test]
    fn one_workspace_never_holds_every_worker() {
        let now = Instant::now();
        let mut s = Schedule::new(8, POLL);
        let (slow, other) = (WorkspaceId::generate(), WorkspaceId::generate());
        s.claimed((0..10).map(|_| job(slow)));
        s.claimed([job(other)]);
        let started = start_all(&mut s, now);
        assert_eq!(started.iter().filter(|w| **w == slow).count(), 7, "an eighth of 8 stays free");
        assert_eq!(started.last(), Some(&other), "the other tenant's job passes the parked ones");
        assert!(s.waiting_for_a_slot());

        // One of the slow tenant's workers finishes: its parked job goes before anything buffered.
        s.claimed([job(other)]);
        s.finished(slow);
        assert_eq!(s.next(now).map(|j| j.workspace_id), Some(slow));
    }

    #[test]
    fn parked_jobs_go_back_to_the_queue_after_a_poll_interval() {
        let start = Instant::now();
        let mut s = Schedule::new(1, POLL);
        let ws = WorkspaceId::generate();
        s.claimed([job(ws), job(ws)]);
        assert_eq!(start_all(&mut s, start), vec![ws]);
        assert!(s.take_stale(start + POLL / 2).is_empty(), "not stale yet");
        assert_eq!(s.take_stale(start + POLL).len(), 1);
        assert!(!s.waiting_for_a_slot());
        assert!(s.unstarted().is_empty());
    }

    #[test]
    fn a_job_put_back_goes_first_and_unstarted_jobs_are_all_handed_back() {
        let now = Instant::now();
        let mut s = Schedule::new(1, POLL);
        let (a, b) = (WorkspaceId::generate(), WorkspaceId::generate());
        s.claimed([job(a), job(b), job(a)]);
        let first = s.next(now).expect("a job");
        let id = first.notification_id;
        s.put_back(first);
        assert_eq!(s.next(now).map(|j| j.notification_id), Some(id));
        s.started(a);
        assert_eq!(s.next(now).map(|j| j.workspace_id), Some(b));
        assert_eq!(s.next(now).map(|j| j.workspace_id), None, "a's second job is parked");
        assert_eq!(s.unstarted().len(), 1);
    }

    #[test]
    fn finishing_frees_the_workspace_share_and_unknown_finishes_are_ignored() {
        let now = Instant::now();
        let mut s = Schedule::new(1, POLL);
        let ws = WorkspaceId::generate();
        s.finished(ws);
        s.claimed([job(ws), job(ws)]);
        assert_eq!(start_all(&mut s, now).len(), 1);
        s.finished(ws);
        assert_eq!(start_all(&mut s, now).len(), 1);
    }

    #[test]
    fn held_deliveries_are_resumed_once_per_poll_interval() {
        let start = Instant::now();
        let mut s = Schedule::new(4, POLL);
        assert!(s.resume_due(start));
        assert!(!s.resume_due(start + POLL / 2));
        assert!(s.resume_due(start + POLL));
        assert!(!s.resume_due(start + POLL));
    }
}
