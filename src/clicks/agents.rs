//! What the redirect path needs to know of a `User-Agent`, judged once per agent.

use super::bots::{Visitor, classify};
use crate::domain::analytics::Os;
use std::cell::RefCell;
use std::collections::HashMap;

/// Who asked for a redirect and from which system: the system picks a device link's
/// destination (bots' too, so that a preview goes where its device would) and counts a
/// human click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    pub visitor: Visitor,
    pub os: Os,
}

/// Agents remembered per thread: a campaign's clicks come from a few hundred distinct
/// agents, so most redirects judge theirs with one hash lookup instead of three regex
/// scans and the system's substring searches.
const REMEMBERED_AGENTS: usize = 4096;

thread_local! {
    /// aHash, keyed randomly per map: a third of SipHash's cost on a 100-byte agent, and
    /// agents (attacker-chosen) still cannot be crafted to collide.
    static SEEN: RefCell<HashMap<Box<str>, Agent, ahash::RandomState>> = RefCell::default();
}

impl Agent {
    pub fn of(user_agent: Option<&str>) -> Agent {
        let Some(text) = user_agent else {
            return Agent::judge(None);
        };
        if let Some(known) = SEEN.with_borrow(|seen| seen.get(text).copied()) {
            return known;
        }
        let agent = Agent::judge(user_agent);
        SEEN.with_borrow_mut(|seen| {
            if seen.len() >= REMEMBERED_AGENTS {
                seen.clear();
            }
            seen.insert(text.into(), agent);
        });
        agent
    }

    fn judge(user_agent: Option<&str>) -> Agent {
        Agent {
            visitor: classify(user_agent),
            os: Os::of(user_agent),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_agent_is_judged_as_it_was_the_first_time() {
        let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 \
                      (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
        let preview = "Mozilla/5.0 (Linux; Android 11) WhatsApp/2.23.20.0";
        for _ in 0..2 {
            let human = Agent::of(Some(iphone));
            assert_eq!((human.visitor, human.os), (Visitor::Human, Os::Ios));
            // A preview is a bot but keeps its system, for device destinations.
            let bot = Agent::of(Some(preview));
            assert_eq!((bot.visitor, bot.os), (Visitor::Bot, Os::Android));
        }
        assert_eq!(Agent::of(None).visitor, Visitor::Bot);
        assert_eq!(Agent::of(Some(" ")).visitor, Visitor::Bot);
    }

    #[test]
    fn the_memory_of_agents_stays_bounded() {
        for i in 0..REMEMBERED_AGENTS * 2 {
            Agent::of(Some(&format!("Mozilla/5.0 (Windows NT 10.0) Agent/{i}")));
        }
        assert!(SEEN.with_borrow(HashMap::len) <= REMEMBERED_AGENTS);
    }
}
