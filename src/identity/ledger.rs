//! The resolver's memory: which DIDs are queued or in flight, which failed recently, and which
//! accounts were forgotten recently. Pure bookkeeping: every method takes the time as `now`.
//!
//! Invariants: a DID has at most one live ticket, so at most one resolution whose result may be
//! written; a result is written only while its ticket is live, and [`Ledger::forget`] kills the
//! ticket; the negative cache and the forgotten set are bounded in size and time.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::Why;

/// Most DIDs held in the negative cache; beyond it the oldest failure is forgotten first.
pub(super) const NEGATIVE_CACHE_CAPACITY: usize = 100_000;

/// Most forgotten accounts remembered for [`Why::Reactivated`].
pub(super) const FORGOTTEN_CAPACITY: usize = 100_000;

/// How long a forgotten account is remembered: as long as a tombstone, so a replay that repeats
/// the departure and the return still finds it.
pub(super) const FORGOTTEN_TTL: Duration = Duration::from_secs(172_800);

/// What [`Ledger::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admission {
    /// Queue the DID under this ticket.
    Queue(u64),
    /// Do not queue it, for this bounded reason.
    Skip(&'static str),
}

/// A DID that is queued or being resolved.
#[derive(Debug)]
struct Active {
    ticket: u64,
    running: bool,
    again: bool,
}

/// Queued and in-flight DIDs, the negative cache, and the forgotten accounts.
#[derive(Debug)]
pub(super) struct Ledger {
    active: HashMap<String, Active>,
    next_ticket: u64,
    failed: ExpiringSet,
    forgotten: ExpiringSet,
}

impl Ledger {
    /// An empty ledger whose failures are remembered for `negative_cache`.
    pub(super) fn new(negative_cache: Duration) -> Ledger {
        Ledger {
            active: HashMap::new(),
            next_ticket: 0,
            failed: ExpiringSet::new(negative_cache, NEGATIVE_CACHE_CAPACITY),
            forgotten: ExpiringSet::new(FORGOTTEN_TTL, FORGOTTEN_CAPACITY),
        }
    }

    /// Decides whether a request is queued. `Identity` and `Reactivated` announce a change, so
    /// they pass the negative cache, and one arriving mid-resolution asks for a second run.
    pub(super) fn admit(&mut self, did: &str, why: Why, now: Instant) -> Admission {
        if why == Why::Reactivated && !self.forgotten.remove(did, now) {
            return Admission::Skip("not_forgotten");
        }
        let announces_change = matches!(why, Why::Identity | Why::Reactivated);
        if let Some(active) = self.active.get_mut(did) {
            active.again |= announces_change && active.running;
            return Admission::Skip("in_flight");
        }
        if announces_change {
            self.failed.remove(did, now);
        } else if self.failed.contains(did, now) {
            return Admission::Skip("negative_cache");
        }
        Admission::Queue(self.issue(did))
    }

    /// Undoes an admission whose job could not be queued.
    pub(super) fn withdraw(&mut self, did: &str, ticket: u64) {
        if self.is_current(did, ticket) {
            self.active.remove(did);
        }
    }

    /// Marks the job running; `false` when it was forgotten while queued.
    pub(super) fn begin(&mut self, did: &str, ticket: u64) -> bool {
        match self.active.get_mut(did) {
            Some(active) if active.ticket == ticket => {
                active.running = true;
                true
            }
            _ => false,
        }
    }

    /// Whether the job's result may still be written.
    pub(super) fn is_current(&self, did: &str, ticket: u64) -> bool {
        self.active
            .get(did)
            .is_some_and(|active| active.ticket == ticket)
    }

    /// Records the end of a job; returns a new ticket when a change arrived meanwhile and the
    /// DID must be resolved again.
    pub(super) fn finish(
        &mut self,
        did: &str,
        ticket: u64,
        failed: bool,
        now: Instant,
    ) -> Option<u64> {
        if !self.is_current(did, ticket) {
            return None;
        }
        let again = self.active.remove(did).is_some_and(|active| active.again);
        if failed {
            self.failed.insert(did, now);
        } else {
            self.failed.remove(did, now);
        }
        again.then(|| self.issue(did))
    }

    /// The account is gone: kill its ticket, drop its failure, remember it for `Reactivated`.
    pub(super) fn forget(&mut self, did: &str, now: Instant) {
        self.active.remove(did);
        self.failed.remove(did, now);
        self.forgotten.insert(did, now);
    }

    /// DIDs queued or in flight.
    pub(super) fn active_len(&self) -> usize {
        self.active.len()
    }

    fn issue(&mut self, did: &str) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let active = Active {
            ticket,
            running: false,
            again: false,
        };
        self.active.insert(did.to_owned(), active);
        ticket
    }
}

/// A set whose members expire `ttl` after insertion, holding at most `capacity` entries.
///
/// Members expire in insertion order (one `ttl` for all), so a queue of insertions is the expiry
/// order; a queue entry whose member was removed or inserted again is stale and skipped.
#[derive(Debug)]
struct ExpiringSet {
    ttl: Duration,
    capacity: usize,
    expiries: HashMap<String, Instant>,
    order: VecDeque<(String, Instant)>,
}

impl ExpiringSet {
    fn new(ttl: Duration, capacity: usize) -> ExpiringSet {
        ExpiringSet {
            ttl,
            capacity,
            expiries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn insert(&mut self, key: &str, now: Instant) {
        self.prune(now);
        while self.order.len() >= self.capacity {
            self.pop_oldest();
        }
        let expiry = now + self.ttl;
        self.expiries.insert(key.to_owned(), expiry);
        self.order.push_back((key.to_owned(), expiry));
    }

    fn contains(&self, key: &str, now: Instant) -> bool {
        self.expiries.get(key).is_some_and(|expiry| *expiry > now)
    }

    /// Removes `key`; `true` when it was a live member.
    fn remove(&mut self, key: &str, now: Instant) -> bool {
        self.expiries.remove(key).is_some_and(|expiry| expiry > now)
    }

    fn prune(&mut self, now: Instant) {
        while self.order.front().is_some_and(|(_, expiry)| *expiry <= now) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        let Some((key, expiry)) = self.order.pop_front() else {
            return;
        };
        if self.expiries.get(&key) == Some(&expiry) {
            self.expiries.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:plc:ewvi7nxzyoun6zhxrhs64oiz";
    const NEGATIVE: Duration = Duration::from_secs(600);

    fn queued(admission: Admission) -> u64 {
        match admission {
            Admission::Queue(ticket) => ticket,
            Admission::Skip(reason) => panic!("expected the DID queued, skipped for {reason}"),
        }
    }

    #[test]
    fn one_resolution_per_did_at_a_time() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        assert_eq!(
            ledger.admit(DID, Why::Missing, now),
            Admission::Skip("in_flight")
        );
        assert!(ledger.begin(DID, ticket));
        assert_eq!(
            ledger.admit(DID, Why::Refresh, now),
            Admission::Skip("in_flight")
        );
        assert_eq!(ledger.finish(DID, ticket, false, now), None);
        queued(ledger.admit(DID, Why::Refresh, now));
    }

    #[test]
    fn other_dids_are_independent() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        queued(ledger.admit(DID, Why::Missing, now));
        queued(ledger.admit("did:web:example.com", Why::Missing, now));
        assert_eq!(ledger.active_len(), 2);
    }

    #[test]
    fn failures_are_negatively_cached_until_they_expire() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        ledger.begin(DID, ticket);
        ledger.finish(DID, ticket, true, now);
        let later = now + NEGATIVE - Duration::from_secs(1);
        assert_eq!(
            ledger.admit(DID, Why::Missing, later),
            Admission::Skip("negative_cache")
        );
        assert_eq!(
            ledger.admit(DID, Why::Refresh, later),
            Admission::Skip("negative_cache")
        );
        queued(ledger.admit(DID, Why::Missing, now + NEGATIVE));
    }

    #[test]
    fn identity_change_passes_the_negative_cache() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        ledger.finish(DID, ticket, true, now);
        let ticket = queued(ledger.admit(DID, Why::Identity, now));
        ledger.finish(DID, ticket, false, now);
        queued(ledger.admit(DID, Why::Missing, now));
    }

    #[test]
    fn identity_change_mid_resolution_runs_it_again() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        assert_eq!(
            ledger.admit(DID, Why::Identity, now),
            Admission::Skip("in_flight")
        );
        ledger.begin(DID, ticket);
        assert_eq!(
            ledger.admit(DID, Why::Missing, now),
            Admission::Skip("in_flight")
        );
        assert_eq!(
            ledger.finish(DID, ticket, false, now),
            None,
            "queued, not running"
        );
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        ledger.begin(DID, ticket);
        ledger.admit(DID, Why::Identity, now);
        let again = ledger
            .finish(DID, ticket, false, now)
            .expect("a second run");
        assert!(ledger.is_current(DID, again) && again != ticket);
    }

    #[test]
    fn forget_kills_queued_and_running_work() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        ledger.forget(DID, now);
        assert!(!ledger.begin(DID, ticket), "queued work is dropped");
        let ticket = queued(ledger.admit(DID, Why::Missing, now));
        ledger.begin(DID, ticket);
        ledger.forget(DID, now);
        assert!(
            !ledger.is_current(DID, ticket),
            "a running result is never written"
        );
        assert_eq!(ledger.finish(DID, ticket, true, now), None);
        queued(ledger.admit(DID, Why::Missing, now));
    }

    #[test]
    fn reactivated_is_honoured_only_after_forget() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        assert_eq!(
            ledger.admit(DID, Why::Reactivated, now),
            Admission::Skip("not_forgotten")
        );
        ledger.forget(DID, now);
        let ticket = queued(ledger.admit(DID, Why::Reactivated, now));
        ledger.finish(DID, ticket, false, now);
        let again = ledger.admit(DID, Why::Reactivated, now);
        assert_eq!(
            again,
            Admission::Skip("not_forgotten"),
            "the memory is used once"
        );
    }

    #[test]
    fn forgotten_accounts_are_remembered_for_a_bounded_time() {
        let now = Instant::now();
        let mut ledger = Ledger::new(NEGATIVE);
        ledger.forget(DID, now);
        let late = now + FORGOTTEN_TTL;
        assert_eq!(
            ledger.admit(DID, Why::Reactivated, late),
            Admission::Skip("not_forgotten")
        );
    }

    #[test]
    fn expiring_set_is_bounded_in_size() {
        let now = Instant::now();
        let mut set = ExpiringSet::new(NEGATIVE, 3);
        for key in ["a", "b", "c", "d"] {
            set.insert(key, now);
        }
        assert!(!set.contains("a", now), "the oldest is evicted");
        assert!(set.contains("b", now) && set.contains("d", now));
        set.insert("b", now);
        set.insert("e", now);
        assert!(set.contains("b", now), "re-insertion refreshed b");
        assert!(set.order.len() <= 3 && set.expiries.len() <= 3);
    }

    #[test]
    fn expiring_set_drops_expired_members() {
        let now = Instant::now();
        let mut set = ExpiringSet::new(NEGATIVE, 10);
        set.insert("a", now);
        set.insert("b", now + Duration::from_secs(1));
        set.insert("c", now + NEGATIVE);
        assert_eq!(set.expiries.len(), 2, "a expired when c arrived");
        assert!(!set.remove("a", now + NEGATIVE));
        assert!(set.remove("c", now + NEGATIVE));
    }
}
