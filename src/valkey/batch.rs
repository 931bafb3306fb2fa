//! Applies a batch of plans in rounds, pipelined, keeping each slot's writes in event order.
//!
//! Round one runs the first step of every plan in one pipeline, round two the next steps, and
//! so on. That is correct only while no slot sees a later event's step before an earlier
//! event's step; [`groups`] cuts the batch wherever that could happen, so a replay costs a few
//! round trips per group instead of one per event.

use std::collections::HashMap;
use std::ops::Range;

use crate::index::{Main, Plan, Slot};

/// Splits plans into groups that can run round by round without reordering any slot.
///
/// A plan's steps run in rounds: its resolve step (if any) first, then its main step, then its
/// follow-ups. A slot touched by an earlier plan in round `r` must not be touched by a later
/// plan in a round before `r`. A plan whose follow-ups may go to a slot known only at run time
/// ends its group.
pub fn groups(plans: &[Plan]) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut latest: HashMap<&Slot, usize> = HashMap::new();
    for (index, plan) in plans.iter().enumerate() {
        let touches = schedule(plan);
        let conflict = touches
            .iter()
            .any(|(slot, round)| latest.get(slot) > Some(round));
        if conflict {
            groups.push(start..index);
            start = index;
            latest.clear();
        }
        for (slot, round) in touches {
            let entry = latest.entry(slot).or_insert(round);
            *entry = (*entry).max(round);
        }
        if plan.follows_unknown_slot {
            groups.push(start..index + 1);
            start = index + 1;
            latest.clear();
        }
    }
    if start < plans.len() {
        groups.push(start..plans.len());
    }
    groups
}

/// The slots a plan touches and the round in which it touches each.
fn schedule(plan: &Plan) -> Vec<(&Slot, usize)> {
    let mut touches = Vec::new();
    let mut round = 1;
    if let Some(resolve) = &plan.resolve {
        touches.push((&resolve.slot, round));
        round += 1;
    }
    match &plan.main {
        Main::Ready(step) => touches.push((&step.slot, round)),
        Main::Star(_) | Main::Scan(_) => touches.extend(main_slot(plan).map(|slot| (slot, round))),
        Main::Nothing => return touches,
    }
    touches.extend(plan.follow_slots.iter().map(|slot| (slot, round + 1)));
    touches
}

/// The event's own slot, which pending main steps run in.
fn main_slot(plan: &Plan) -> Option<&Slot> {
    plan.main_slot.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::program::{Program, TtlSecs};
    use crate::index::{Outcome, Step};

    fn step(did: &str) -> Step {
        let ttl = TtlSecs {
            record: 1,
            index: 1,
            aggregate: 0,
            tombstone: 2,
        };
        let program = Program {
            base: String::new(),
            did: did.into(),
            guard: None,
            ops: vec![],
            ttl,
        };
        Step {
            slot: Slot::Account(did.into()),
            program,
        }
    }

    fn plan(did: &str, follow: &[Slot], unknown: bool) -> Plan {
        Plan {
            time_us: 1,
            did: did.into(),
            user_check: None,
            collection: "io.atcr.tag",
            outcome: Outcome::Put,
            notes: vec![],
            resolve: None,
            main: Main::Ready(step(did)),
            main_slot: Some(Slot::Account(did.into())),
            follow_slots: follow.to_vec(),
            follows_unknown_slot: unknown,
        }
    }

    #[test]
    fn independent_plans_share_one_group() {
        let plans = vec![
            plan("a", &[Slot::Global], false),
            plan("a", &[], false),
            plan("b", &[], false),
        ];
        assert_eq!(groups(&plans), vec![0..3]);
    }

    #[test]
    fn a_later_first_round_write_to_a_follow_up_slot_cuts_the_group() {
        let owner = Slot::Account("owner".into());
        let plans = vec![plan("starrer", &[owner], false), plan("owner", &[], false)];
        assert_eq!(groups(&plans), vec![0..1, 1..2]);
    }

    #[test]
    fn an_unknown_follow_up_slot_ends_the_group() {
        let plans = vec![
            plan("a", &[], true),
            plan("b", &[], false),
            plan("c", &[], false),
        ];
        assert_eq!(groups(&plans), vec![0..1, 1..3]);
    }

    #[test]
    fn a_follow_up_after_an_earlier_first_round_write_keeps_the_group() {
        let owner = Slot::Account("owner".into());
        let plans = vec![plan("owner", &[], false), plan("starrer", &[owner], false)];
        assert_eq!(groups(&plans), vec![0..2]);
    }
}
