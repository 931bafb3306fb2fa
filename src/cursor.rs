//! The resume position: where to start at boot, and which position may be stored.
//!
//! Invariant (rule 5 of `docs/keys.md`): the position offered for saving is the newest
//! `time_us` among events whose batch Valkey acknowledged, and every event before it on the
//! stream was acknowledged too, because batches are applied in stream order. After a replay from
//! the oldest event (Valkey lost its data) positions from before the replay no longer count.

use std::time::Duration;

use url::Url;

use crate::config::NoCursor;
use crate::jetstream::{Item, Start};
use crate::valkey::StoredCursor;

/// Where to begin, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// The start position.
    pub start: Start,
    /// Index of the host to connect to first.
    pub host: usize,
    /// Whether this is a replay because Valkey has no `P:meta` but had a cursor.
    pub data_lost: bool,
}

/// Chooses the start position from what Valkey holds.
pub fn boot(
    stored: Option<&StoredCursor>,
    has_meta: bool,
    urls: &[Url],
    (rewind, failover_rewind): (Duration, Duration),
    no_cursor: NoCursor,
) -> Boot {
    let Some(stored) = stored else {
        let start = match no_cursor {
            NoCursor::Oldest => Start::At(0),
            NoCursor::Live => Start::Live,
        };
        return Boot {
            start,
            host: 0,
            data_lost: false,
        };
    };
    if !has_meta {
        return Boot {
            start: Start::At(0),
            host: 0,
            data_lost: true,
        };
    }
    let same_host = urls.iter().position(|url| url.as_str() == stored.host);
    let rewind = if same_host.is_some() {
        rewind
    } else {
        failover_rewind
    };
    Boot {
        start: rewound(stored.time_us, rewind),
        host: same_host.unwrap_or(0),
        data_lost: false,
    }
}

/// `time_us` minus the rewind, never below 0 (0 stays "from the oldest").
pub fn rewound(time_us: i64, rewind: Duration) -> Start {
    let rewind_us = i64::try_from(rewind.as_micros()).unwrap_or(i64::MAX);
    Start::At(time_us.saturating_sub(rewind_us).max(0))
}

/// Acknowledged progress of the writer.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    epoch: u64,
    acknowledged: Option<(i64, usize)>,
}

impl Progress {
    /// Records a batch that Valkey acknowledged.
    pub fn acknowledge(&mut self, items: &[Item]) {
        for item in items.iter().filter(|item| item.epoch == self.epoch) {
            let newer = self
                .acknowledged
                .is_none_or(|(time_us, _)| item.plan.time_us >= time_us);
            if newer {
                self.acknowledged = Some((item.plan.time_us, item.host));
            }
        }
    }

    /// The position to store: `time_us` and host index.
    pub fn position(&self) -> Option<(i64, usize)> {
        self.acknowledged
    }

    /// Forgets everything before a replay that starts generation `epoch`.
    pub fn restart(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.acknowledged = None;
    }

    /// The current replay generation.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Vec<Url> {
        ["wss://a.example/subscribe", "wss://b.example/subscribe"]
            .iter()
            .map(|url| Url::parse(url).expect("valid"))
            .collect()
    }

    const REWINDS: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(60));

    fn stored(time_us: i64, host: &str) -> StoredCursor {
        StoredCursor {
            time_us,
            host: host.to_owned(),
        }
    }

    #[test]
    fn no_cursor_follows_the_setting() {
        let boot = boot(None, true, &urls(), REWINDS, NoCursor::Oldest);
        assert_eq!(boot.start, Start::At(0));
        assert_eq!(
            super::boot(None, false, &urls(), REWINDS, NoCursor::Live).start,
            Start::Live
        );
    }

    #[test]
    fn same_host_rewinds_a_little() {
        let cursor = stored(100_000_000, "wss://b.example/subscribe");
        let boot = boot(Some(&cursor), true, &urls(), REWINDS, NoCursor::Oldest);
        assert_eq!((boot.start, boot.host), (Start::At(95_000_000), 1));
    }

    #[test]
    fn another_host_rewinds_wider() {
        let cursor = stored(100_000_000, "wss://gone.example/subscribe");
        let boot = boot(Some(&cursor), true, &urls(), REWINDS, NoCursor::Oldest);
        assert_eq!((boot.start, boot.host), (Start::At(40_000_000), 0));
    }

    #[test]
    fn a_cursor_without_meta_means_data_loss() {
        let cursor = stored(100_000_000, "wss://a.example/subscribe");
        let boot = boot(Some(&cursor), false, &urls(), REWINDS, NoCursor::Live);
        assert_eq!((boot.start, boot.data_lost), (Start::At(0), true));
    }

    #[test]
    fn a_zero_cursor_stays_at_the_oldest_event() {
        assert_eq!(rewound(0, Duration::from_secs(5)), Start::At(0));
        assert_eq!(rewound(3, Duration::from_secs(5)), Start::At(0));
    }
}
