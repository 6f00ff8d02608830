//! Recent callbacks, remembered in this pod: event ids already accepted (so a ZEGO retry is
//! answered 200 without a second publish), and which event each signature was used for (so a
//! captured signature cannot be replayed on a forged body: ZEGO's signature does not cover it).

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Duration;

use lru::LruCache;
use sha1::{Digest, Sha1};
use uuid::Uuid;

/// This pod's own used signatures held at most, whatever the window. Each costs about 230 bytes
/// of resident memory (a key, an id, an instant, the map's and the queue's own: 1 M of them took
/// a pod from 31 to 259 MiB, measured by an outside review), so 200,000 are about 45 MiB. At the
/// default skew of 300 s that is 333 callbacks a second for ten minutes, what one pod was
/// measured to take (docs/BENCHMARKS.md). Past it the soonest to expire are forgotten first,
/// and counted.
pub const MAX_USED_SIGNATURES: usize = 200_000;

/// The other replicas' used signatures (read from the shared topic) held at most, apart from
/// this pod's own: a flood of that topic can only push out other replicas' uses, never this
/// pod's, and takes at most about 90 MiB.
pub const MAX_USED_SIGNATURES_ELSEWHERE: usize = 400_000;

/// A signature presented again with another callback than the one it was first used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureReused {
    /// The event the signature was first accepted with (published, if it was taken).
    pub first_event_id: Uuid,
    /// Whether this is the first other callback seen under it (to log once, count always).
    pub first_conflict: bool,
    /// Whether `timestamp` and `nonce` were spelled otherwise than at its first use (digits
    /// moved between them): ZEGO never does that, so it is a forgery for certain. Spelled the
    /// same, it may also be ZEGO's own second callback whose random nonce happened to repeat
    /// in the same second.
    pub respelled: bool,
}

/// What remembering a signature did to the memory of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SignatureHeld {
    /// Signatures held now.
    pub held: usize,
    /// Whether one was forgotten before its window ended, to make room.
    pub forgot_one: bool,
    /// Its first use, when it is one: what the other replicas are told.
    pub first_use: Option<SignatureUse>,
}

/// One use of a signature as the memory holds it and the replicas share it: a hash of the
/// signature, never the signature itself, a hash of its spelling, and the event it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureUse {
    pub key: [u8; 20],
    pub spelling: u64,
    pub event_id: Uuid,
}

pub struct RecentCallbacks {
    accepted: Option<Mutex<LruCache<Uuid, ()>>>,
    signatures: Option<Mutex<UsedSignatures>>,
}

impl RecentCallbacks {
    /// Remembers up to `capacity` accepted ids (0: none). A signature is remembered for
    /// `window` after it is first seen (as long as any spelling of it can pass the clock-skew
    /// check), whatever `capacity` says: turning retries' deduplication off must not turn the
    /// replay defence off with it. With no window (the skew check is off), the last `capacity`
    /// signatures are, and none with 0.
    pub fn new(capacity: usize, window: Option<Duration>) -> Self {
        let capacity = NonZeroUsize::new(capacity);
        let signatures = match (window, capacity) {
            (Some(_), _) => Some((MAX_USED_SIGNATURES, MAX_USED_SIGNATURES_ELSEWHERE)),
            (None, Some(capacity)) => Some((capacity.get(), capacity.get())),
            (None, None) => None,
        };
        RecentCallbacks {
            accepted: capacity.map(|capacity| Mutex::new(LruCache::new(capacity))),
            signatures: signatures
                .map(|(own, elsewhere)| Mutex::new(UsedSignatures::new(window, own, elsewhere))),
        }
    }

    /// Refuses a signature already used with another event; otherwise remembers it for this
    /// one. The key is the signature alone, as verification reads it (hex, ignoring case and
    /// surrounding space): ZEGO signs `timestamp` and `nonce` joined with no separator, so
    /// digits moved from one to the other give the same signature, and must count as the same
    /// use of it.
    pub fn check_signature(
        &self,
        timestamp: &str,
        nonce: &str,
        signature: &str,
        event_id: Uuid,
    ) -> Result<SignatureHeld, SignatureReused> {
        let Some(signatures) = &self.signatures else {
            return Ok(SignatureHeld::default());
        };
        let mut hasher = Sha1::new();
        for byte in signature.trim().bytes() {
            hasher.update([byte.to_ascii_lowercase()]);
        }
        let key: [u8; 20] = hasher.finalize().into();
        let spelling: [u8; 20] = Sha1::new()
            .chain_update(timestamp.as_bytes())
            .chain_update([0])
            .chain_update(nonce.as_bytes())
            .finalize()
            .into();
        let spelling = u64::from_le_bytes(spelling[..8].try_into().expect("8 bytes"));
        signatures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .check(key, spelling, event_id, wall_clock_ms())
    }

    /// Takes in a use of a signature another replica (or this one before a restart) made:
    /// remembered from now for the window, so that a replay here is refused. `Err` when this
    /// replica took the same signature with another callback already: both were taken, and one
    /// of them may be a forgery.
    pub fn remember_elsewhere(&self, used: SignatureUse) -> Result<SignatureHeld, SignatureReused> {
        let Some(signatures) = &self.signatures else {
            return Ok(SignatureHeld::default());
        };
        signatures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remember_elsewhere(used, wall_clock_ms())
    }

    /// This pod's own uses still in their window: what it shares once it can.
    pub fn own_uses(&self) -> Vec<SignatureUse> {
        let Some(signatures) = &self.signatures else {
            return Vec::new();
        };
        let signatures = signatures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        signatures
            .own
            .order
            .iter()
            .filter_map(|(key, _)| {
                let first = signatures.own.by_key.get(key)?;
                Some(SignatureUse {
                    key: *key,
                    spelling: first.spelling,
                    event_id: first.event_id,
                })
            })
            .collect()
    }

    /// True when this event was accepted already.
    pub fn is_duplicate(&self, event_id: Uuid) -> bool {
        self.accepted.as_ref().is_some_and(|accepted| {
            accepted
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .get(&event_id)
                .is_some()
        })
    }

    pub fn remember_accepted(&self, event_id: Uuid) {
        if let Some(accepted) = &self.accepted {
            accepted
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .put(event_id, ());
        }
    }
}

/// The first use of a signature.
struct FirstUse {
    event_id: Uuid,
    /// A hash of how `timestamp` and `nonce` were spelled.
    spelling: u64,
    /// How many other callbacks came under it since.
    conflicts: u32,
}

/// The wall clock in Unix milliseconds. Signatures expire by it, not by a monotonic clock: the
/// skew check they guard reads the wall clock, so a clock stepped back (which keeps an old
/// capture inside the skew window longer) keeps them longer too.
fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() as i64)
}

/// Signatures and the event each was used for, in the order first seen (which, with one window
/// for all, is the order they expire in): this pod's own uses and the other replicas' apart,
/// each with its own bound.
struct UsedSignatures {
    window: Option<Duration>,
    own: Uses,
    elsewhere: Uses,
}

/// One bounded, time-ordered memory of uses.
struct Uses {
    limit: usize,
    by_key: HashMap<[u8; 20], FirstUse>,
    /// Each signature with when it was first seen (wall clock, Unix ms).
    order: VecDeque<([u8; 20], i64)>,
    evicted: u64,
}

impl Uses {
    fn new(limit: usize) -> Self {
        Uses {
            limit,
            by_key: HashMap::new(),
            order: VecDeque::new(),
            evicted: 0,
        }
    }

    fn expire(&mut self, window_ms: i64, now_ms: i64) {
        while let Some(&(oldest, seen)) = self.order.front() {
            if now_ms.saturating_sub(seen) <= window_ms {
                break;
            }
            self.order.pop_front();
            self.by_key.remove(&oldest);
        }
    }

    /// Remembers a first use; true when another was forgotten inside its window to make room.
    fn insert(&mut self, key: [u8; 20], first: FirstUse, now_ms: i64, windowed: bool) -> bool {
        let mut forgot_one = false;
        if self.by_key.len() >= self.limit {
            if let Some((oldest, _)) = self.order.pop_front() {
                self.by_key.remove(&oldest);
                // Only an eviction inside the window weakens the defence: with no window,
                // forgetting the oldest is the documented behaviour.
                if windowed {
                    self.evicted += 1;
                    forgot_one = true;
                }
            }
        }
        self.by_key.insert(key, first);
        self.order.push_back((key, now_ms));
        forgot_one
    }
}

impl UsedSignatures {
    fn new(window: Option<Duration>, own_limit: usize, elsewhere_limit: usize) -> Self {
        UsedSignatures {
            window,
            own: Uses::new(own_limit),
            elsewhere: Uses::new(elsewhere_limit),
        }
    }

    fn held(&self) -> usize {
        self.own.by_key.len() + self.elsewhere.by_key.len()
    }

    fn expire(&mut self, now_ms: i64) {
        if let Some(window) = self.window {
            let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            self.own.expire(window_ms, now_ms);
            self.elsewhere.expire(window_ms, now_ms);
        }
    }

    /// The use already held for `key`, here or elsewhere, compared with this one: `Some` with
    /// the outcome when there is one.
    fn compare(
        &mut self,
        key: [u8; 20],
        spelling: u64,
        event_id: Uuid,
    ) -> Option<Result<SignatureHeld, SignatureReused>> {
        let held = self.held();
        let first = match self.own.by_key.get_mut(&key) {
            Some(first) => first,
            None => self.elsewhere.by_key.get_mut(&key)?,
        };
        if first.event_id == event_id {
            return Some(Ok(SignatureHeld {
                held,
                forgot_one: false,
                first_use: None,
            }));
        }
        first.conflicts = first.conflicts.saturating_add(1);
        Some(Err(SignatureReused {
            first_event_id: first.event_id,
            first_conflict: first.conflicts == 1,
            respelled: first.spelling != spelling,
        }))
    }

    /// A use here: refused if the signature came with another callback, here or elsewhere.
    fn check(
        &mut self,
        key: [u8; 20],
        spelling: u64,
        event_id: Uuid,
        now_ms: i64,
    ) -> Result<SignatureHeld, SignatureReused> {
        self.expire(now_ms);
        if let Some(outcome) = self.compare(key, spelling, event_id) {
            return outcome;
        }
        let first = FirstUse {
            event_id,
            spelling,
            conflicts: 0,
        };
        let forgot_one = self.own.insert(key, first, now_ms, self.window.is_some());
        Ok(SignatureHeld {
            held: self.held(),
            forgot_one,
            first_use: Some(SignatureUse {
                key,
                spelling,
                event_id,
            }),
        })
    }

    /// A use another replica made: held apart from this pod's own.
    fn remember_elsewhere(
        &mut self,
        used: SignatureUse,
        now_ms: i64,
    ) -> Result<SignatureHeld, SignatureReused> {
        self.expire(now_ms);
        if let Some(outcome) = self.compare(used.key, used.spelling, used.event_id) {
            return outcome.map(|held| SignatureHeld {
                first_use: None,
                ..held
            });
        }
        let first = FirstUse {
            event_id: used.event_id,
            spelling: used.spelling,
            conflicts: 0,
        };
        let forgot_one = self
            .elsewhere
            .insert(used.key, first, now_ms, self.window.is_some());
        Ok(SignatureHeld {
            held: self.held(),
            forgot_one,
            first_use: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Option<Duration> = Some(Duration::from_secs(601));

    #[test]
    fn a_signature_belongs_to_one_event() {
        let recent = RecentCallbacks::new(10, WINDOW);
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(recent.check_signature("1", "n", "abc", first).is_ok());
        assert!(
            recent.check_signature("1", "n", "abc", first).is_ok(),
            "a retry"
        );
        assert_eq!(
            recent.check_signature("1", "n", "abc", second),
            Err(SignatureReused {
                first_event_id: first,
                first_conflict: true,
                respelled: false
            })
        );
        assert_eq!(
            recent.check_signature("1", "n", "abc", Uuid::from_u128(3)),
            Err(SignatureReused {
                first_event_id: first,
                first_conflict: false,
                respelled: false
            })
        );
        assert!(recent.check_signature("1", "n", "abd", second).is_ok());
        // The same signature spelled with digits moved is certainly not ZEGO's.
        assert_eq!(
            recent
                .check_signature("1700000000912", "3", "abc", Uuid::from_u128(4))
                .map_err(|reused| reused.respelled),
            Err(true)
        );
    }

    #[test]
    fn a_recased_or_padded_signature_is_the_same_signature() {
        let recent = RecentCallbacks::new(10, WINDOW);
        let (first, forged) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(recent.check_signature("1", "n", "ab12cd", first).is_ok());
        for variant in ["AB12CD", "Ab12cD", " ab12cd ", "\tAB12cd\n"] {
            assert!(
                recent.check_signature("1", "n", variant, forged).is_err(),
                "{variant:?}"
            );
        }
    }

    /// Not count-bound: thousands of other callbacks in between do not make a captured
    /// signature usable again within its window (round one's LRU forgot it after
    /// ZEGO_BRIDGE_DEDUP_CAPACITY of them).
    #[test]
    fn a_signature_is_remembered_for_its_window_whatever_comes_between() {
        let recent = RecentCallbacks::new(10, WINDOW);
        let first = Uuid::from_u128(1);
        assert!(recent.check_signature("1", "n", "captured", first).is_ok());
        let mut last = SignatureHeld::default();
        for n in 0..10_000u128 {
            last = recent
                .check_signature("1", "n", &format!("{n:040x}"), Uuid::from_u128(n + 10))
                .unwrap();
        }
        assert_eq!((last.held, last.forgot_one), (10_001, false));
        assert!(last.first_use.is_some());
        assert!(recent
            .check_signature("1", "n", "captured", Uuid::from_u128(2))
            .is_err());
    }

    #[test]
    fn a_signature_is_forgotten_once_its_window_has_passed() {
        let mut used = UsedSignatures::new(Some(Duration::from_secs(10)), 100, 100);
        let start = 1_700_000_000_000_i64;
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert!(used.check([1; 20], 0, first, start).is_ok());
        // The clock stepped back a quarter of an hour: still remembered (the skew check, on the
        // same clock, would take the capture longer too).
        assert!(used.check([1; 20], 0, second, start - 900_000).is_err());
        assert!(used.check([1; 20], 0, second, start + 10_000).is_err());
        assert!(used.check([2; 20], 0, second, start + 11_000).is_ok());
        assert_eq!(used.own.by_key.len(), 1, "the first was purged");
        assert!(used.check([1; 20], 0, second, start + 11_000).is_ok());
    }

    #[test]
    fn past_the_limit_the_soonest_to_expire_go_first_and_are_counted() {
        let mut used = UsedSignatures::new(Some(Duration::from_secs(10)), 2, 2);
        let now = 1_700_000_000_000_i64;
        let held: Vec<SignatureHeld> = (1..=3u8)
            .map(|key| {
                used.check([key; 20], 0, Uuid::from_u128(key.into()), now)
                    .unwrap()
            })
            .collect();
        assert_eq!((held[2].held, held[2].forgot_one), (2, true));
        assert!(!held[1].forgot_one);
        assert_eq!(used.own.evicted, 1);
        assert!(!used.own.by_key.contains_key(&[1; 20]));
        assert!(used.own.by_key.contains_key(&[3; 20]));
    }

    #[test]
    fn accepted_ids_are_remembered_up_to_capacity() {
        let recent = RecentCallbacks::new(2, WINDOW);
        for n in 0..3 {
            assert!(!recent.is_duplicate(Uuid::from_u128(n)));
            recent.remember_accepted(Uuid::from_u128(n));
        }
        assert!(recent.is_duplicate(Uuid::from_u128(2)));
        assert!(
            !recent.is_duplicate(Uuid::from_u128(0)),
            "the oldest was forgotten"
        );
        let off = RecentCallbacks::new(0, WINDOW);
        off.remember_accepted(Uuid::from_u128(1));
        assert!(!off.is_duplicate(Uuid::from_u128(1)));
        // Deduplication off, the replay defence still on.
        assert!(off
            .check_signature("1", "n", "x", Uuid::from_u128(1))
            .is_ok());
        assert!(off
            .check_signature("1", "n", "x", Uuid::from_u128(2))
            .is_err());
    }

    /// A use made on another replica (or before a restart) refuses a replay here; one already
    /// made here with another callback is a conflict, found after both were taken; the same
    /// callback (ZEGO's retry landing on two replicas) is none.
    #[test]
    fn a_use_made_elsewhere_is_remembered_and_a_conflict_with_one_here_is_told() {
        let here = RecentCallbacks::new(10, WINDOW);
        let elsewhere = RecentCallbacks::new(10, WINDOW);
        let (genuine, forged) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let used = elsewhere
            .check_signature("1", "n", "abc", genuine)
            .unwrap()
            .first_use
            .expect("a first use");
        assert!(here.remember_elsewhere(used).is_ok());
        assert!(here.check_signature("1", "n", "ABC", forged).is_err());
        assert!(here.check_signature("1", "n", "abc", genuine).is_ok());

        let raced = RecentCallbacks::new(10, WINDOW);
        assert!(raced.check_signature("1", "n", "abc", forged).is_ok());
        let conflict = raced.remember_elsewhere(used).unwrap_err();
        assert_eq!(conflict.first_event_id, forged);
        assert!(!conflict.respelled);
        assert_eq!(
            raced.remember_elsewhere(used).map_err(|c| c.first_conflict),
            Err(false)
        );
        let retried = RecentCallbacks::new(10, WINDOW);
        assert!(retried.check_signature("1", "n", "abc", genuine).is_ok());
        assert!(retried.remember_elsewhere(used).is_ok());
    }

    /// A flood of the shared topic (whoever may write to it) pushes out other replicas' uses
    /// only, each counted; this pod's own are never forgotten for it (an outside review evicted
    /// a genuine use that way and replayed it).
    #[test]
    fn a_flood_of_uses_from_elsewhere_never_pushes_out_this_pods_own() {
        let mut used = UsedSignatures::new(Some(Duration::from_secs(10)), 3, 2);
        let now = 1_700_000_000_000_i64;
        let own = used.check([1; 20], 0, Uuid::from_u128(1), now).unwrap();
        assert!(own.first_use.is_some());
        let mut forgotten = 0;
        for n in 0..1000u16 {
            let mut key = [9; 20];
            key[..2].copy_from_slice(&n.to_le_bytes());
            let held = used
                .remember_elsewhere(
                    SignatureUse {
                        key,
                        spelling: 0,
                        event_id: Uuid::from_u128(1000 + u128::from(n)),
                    },
                    now,
                )
                .unwrap();
            forgotten += usize::from(held.forgot_one);
            assert!(held.held <= 3, "bounded: {}", held.held);
        }
        assert_eq!(forgotten, 998, "each eviction counted");
        assert!(
            used.check([1; 20], 0, Uuid::from_u128(2), now).is_err(),
            "this pod's own use survives the flood"
        );
    }
}
