//! Recent callbacks, remembered in this pod: event ids already accepted (so a ZEGO retry is
//! answered 200 without a second publish), and which event each signature was used for (so a
//! captured signature cannot be replayed on a forged body: ZEGO's signature does not cover it).

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;
use sha1::{Digest, Sha1};
use uuid::Uuid;

use crate::zego::SignatureRefusal;

pub struct RecentCallbacks {
    accepted: Option<Mutex<LruCache<Uuid, ()>>>,
    signatures: Option<Mutex<LruCache<[u8; 20], Uuid>>>,
}

impl RecentCallbacks {
    /// Remembers up to `capacity` ids and as many signatures; 0 remembers nothing.
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity);
        RecentCallbacks {
            accepted: capacity.map(|capacity| Mutex::new(LruCache::new(capacity))),
            signatures: capacity.map(|capacity| Mutex::new(LruCache::new(capacity))),
        }
    }

    /// Refuses a `(timestamp, nonce, signature)` already seen with another event; otherwise
    /// remembers it for this one. The signature is keyed in the form verification reads it (hex
    /// ignoring case and surrounding space), so a captured signature re-cased or padded is the
    /// same signature, not a new one.
    pub fn check_signature(
        &self,
        timestamp: &str,
        nonce: &str,
        signature: &str,
        event_id: Uuid,
    ) -> Result<(), SignatureRefusal> {
        let Some(signatures) = &self.signatures else {
            return Ok(());
        };
        let mut hasher = Sha1::new();
        for part in [timestamp, nonce] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        for byte in signature.trim().bytes() {
            hasher.update([byte.to_ascii_lowercase()]);
        }
        let key: [u8; 20] = hasher.finalize().into();
        let mut signatures = signatures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match signatures.get(&key) {
            Some(seen) if *seen != event_id => Err(SignatureRefusal::Replayed),
            Some(_) => Ok(()),
            None => {
                signatures.put(key, event_id);
                Ok(())
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_belongs_to_one_event() {
        let recent = RecentCallbacks::new(10);
        let (first, second) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(recent.check_signature("1", "n", "abc", first), Ok(()));
        assert_eq!(
            recent.check_signature("1", "n", "abc", first),
            Ok(()),
            "a retry"
        );
        assert_eq!(
            recent.check_signature("1", "n", "abc", second),
            Err(SignatureRefusal::Replayed)
        );
        assert_eq!(recent.check_signature("1", "m", "abc", second), Ok(()));
    }

    #[test]
    fn a_recased_or_padded_signature_is_the_same_signature() {
        let recent = RecentCallbacks::new(10);
        let (first, forged) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(recent.check_signature("1", "n", "ab12cd", first), Ok(()));
        for variant in ["AB12CD", "Ab12cD", " ab12cd ", "\tAB12cd\n"] {
            assert_eq!(
                recent.check_signature("1", "n", variant, forged),
                Err(SignatureRefusal::Replayed),
                "{variant:?}"
            );
        }
    }

    #[test]
    fn accepted_ids_are_remembered_up_to_capacity() {
        let recent = RecentCallbacks::new(2);
        for n in 0..3 {
            assert!(!recent.is_duplicate(Uuid::from_u128(n)));
            recent.remember_accepted(Uuid::from_u128(n));
        }
        assert!(recent.is_duplicate(Uuid::from_u128(2)));
        assert!(
            !recent.is_duplicate(Uuid::from_u128(0)),
            "the oldest was forgotten"
        );
        let off = RecentCallbacks::new(0);
        off.remember_accepted(Uuid::from_u128(1));
        assert!(!off.is_duplicate(Uuid::from_u128(1)));
    }
}
