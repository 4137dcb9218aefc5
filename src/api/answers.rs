//! What each car said: every answer of a run, asked now or kept from an earlier run, decoded
//! once into its typed [`Answer`], with the newest upload time it carries and what this run
//! did about it. The planner decides from it, the mappers read it, and the state file keeps
//! its bodies; nothing parses a body twice.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::value::RawValue;

use super::{api_of, Answer, ApiError, Typed};
use crate::endpoints::{Endpoint, Origin};
use crate::state::{AnswerKey, CacheEntry};

/// Whether the last answer of `endpoint` stands in for this run's failure `e`: one that will
/// likely pass by the next run. The vehicle list has its own stand-in, which warns, but for
/// the quota's pause, which replays every answer silently.
fn stands_in_for(endpoint: Endpoint, e: &ApiError) -> bool {
    match e {
        ApiError::Quota { .. } => true,
        _ => e.is_temporary() && endpoint != Endpoint::Vehicles,
    }
}

/// One answer a car can give: an endpoint, and for Extended Vehicle's values the resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ask {
    pub endpoint: Endpoint,
    pub resource: Option<String>,
}

impl Ask {
    pub fn of(endpoint: Endpoint) -> Ask {
        Ask {
            endpoint,
            resource: None,
        }
    }
}

/// What this run did about one answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answered now.
    Fresh,
    Failed(ApiError),
    /// No place in Volvo's minute window: asked next run.
    Deferred,
    /// Asked; the answer has not come yet.
    InFlight,
    /// Has a place in the minute window, and waits for more important answers in flight
    /// before it goes (see `window::admit`).
    Waiting,
}

/// The last answer of one [`Ask`]: its body as it came (for the state file), when it was
/// fetched, and what it says.
#[derive(Debug)]
pub struct Kept {
    pub fetched_at: i64,
    pub body: Box<RawValue>,
    pub answer: Answer,
    /// The newest upload time in it (Unix seconds), never later than the run's clock: a time
    /// in the future (a car's clock ahead, a bad value) counts as now for every decision.
    pub newest: Option<i64>,
    /// The car stamped an upload later than the run's clock (by more than a minute).
    pub future: bool,
}

/// How far ahead of the clock an upload time may be before it is counted as in the future.
const FUTURE_SKEW_S: i64 = 60;

impl Kept {
    /// Decodes a body of `endpoint` once, for a run at `now`; the reason when it does not
    /// decode.
    pub fn decode(
        endpoint: Endpoint,
        fetched_at: i64,
        body: Box<RawValue>,
        now: i64,
    ) -> Result<Kept, ApiError> {
        let answer = api_of(endpoint).decode(endpoint, body.get())?;
        let newest = answer.newest_upload();
        Ok(Kept {
            fetched_at,
            body,
            answer,
            newest: newest.map(|t| t.min(now)),
            future: newest.is_some_and(|t| t > now.saturating_add(FUTURE_SKEW_S)),
        })
    }
}

/// One answer's place in a car's record.
#[derive(Debug, Default)]
pub struct Slot {
    pub kept: Option<Kept>,
    pub outcome: Option<Outcome>,
}

/// What the run has for an answer that is neither fresh nor failed: the quota's pause replays
/// silently, anything else not asked is deferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absent {
    Deferred,
    QuotaPaused,
}

/// Everything one car (or, with an empty VIN, the account's vehicle list) said.
#[derive(Debug)]
pub struct CarAnswers {
    pub vin: String,
    slots: BTreeMap<Ask, Slot>,
    /// Endpoints remembered as not supported by this car.
    unsupported: BTreeSet<Endpoint>,
    /// Those Volvo does not serve to the car or application in its region or market.
    blocked: BTreeSet<Endpoint>,
    /// What an answer never asked this run stands for.
    absent: Absent,
}

/// The message of an endpoint skipped because an earlier run found it unsupported.
pub const REMEMBERED: &str = "not supported by this car (remembered from an earlier run)";

impl CarAnswers {
    pub fn new(vin: &str, absent: Absent) -> CarAnswers {
        CarAnswers {
            vin: vin.to_string(),
            slots: BTreeMap::new(),
            unsupported: BTreeSet::new(),
            blocked: BTreeSet::new(),
            absent,
        }
    }

    /// Takes a kept answer from the state file, decoding it once. One that no longer decodes
    /// is dropped with a warning, so that it is asked again rather than failing every run. A
    /// fetch time after `now` (the clock stepped back) is taken as now: time only moves
    /// forward for the planner.
    pub fn keep(&mut self, ask: Ask, entry: CacheEntry, now: i64) {
        let fetched_at = entry.fetched_at.min(now);
        match Kept::decode(ask.endpoint, fetched_at, entry.body, now) {
            Ok(kept) => self.slot(ask).kept = Some(kept),
            Err(e) => {
                tracing::warn!(vin = self.vin, endpoint = %ask.endpoint, error = %e, "cached answer no longer decodes; asking it again");
            }
        }
    }

    /// Remembers that the car does not support `endpoint`.
    pub fn mark_unsupported(&mut self, endpoint: Endpoint) {
        self.unsupported.insert(endpoint);
    }

    /// Remembers that Volvo does not serve `endpoint` to the car (a region or market block).
    pub fn mark_blocked(&mut self, endpoint: Endpoint) {
        self.unsupported.insert(endpoint);
        self.blocked.insert(endpoint);
    }

    /// Whether the endpoint is not asked of this car: not supported, or blocked.
    pub fn is_unsupported(&self, endpoint: Endpoint) -> bool {
        self.unsupported.contains(&endpoint)
    }

    fn slot(&mut self, ask: Ask) -> &mut Slot {
        self.slots.entry(ask).or_default()
    }

    /// Records what came for `ask` at `now`: a body is decoded once and kept; one that does
    /// not decode is this run's failure, and the earlier answer is dropped so that the next
    /// run asks again.
    pub fn record(&mut self, ask: Ask, now: i64, result: Result<Vec<u8>, ApiError>) {
        let endpoint = ask.endpoint;
        let slot = self.slot(ask);
        let decoded = result.and_then(|body| {
            let not_json = || ApiError::Decode("the answer is not JSON".into());
            let text = String::from_utf8(body).map_err(|_| not_json())?;
            let raw = RawValue::from_string(text).map_err(|_| not_json())?;
            Kept::decode(endpoint, now, raw, now)
        });
        slot.outcome = Some(match decoded {
            Ok(kept) => {
                slot.kept = Some(kept);
                Outcome::Fresh
            }
            Err(e) => {
                // An answer gone wrong is asked again next run; the account's vehicle list
                // keeps its last good answer, which stands in until a good one comes.
                if matches!(e, ApiError::Decode(_)) && endpoint != Endpoint::Vehicles {
                    slot.kept = None;
                }
                Outcome::Failed(e)
            }
        });
    }

    /// Makes the kept answer of `ask` as old as `at` at most, so that its tier comes round
    /// (the account's vehicle list after a failure: asked again next run, kept meanwhile).
    pub fn age_to(&mut self, ask: &Ask, at: i64) {
        if let Some(k) = self.slots.get_mut(ask).and_then(|s| s.kept.as_mut()) {
            k.fetched_at = k.fetched_at.min(at);
        }
    }

    /// This run's fresh answers of each API whose upload time lay in the future.
    pub fn future_uploads(&self) -> BTreeMap<Origin, u64> {
        let mut out = BTreeMap::new();
        for (ask, slot) in &self.slots {
            if slot.outcome == Some(Outcome::Fresh) && slot.kept.as_ref().is_some_and(|k| k.future)
            {
                *out.entry(ask.endpoint.api()).or_default() += 1;
            }
        }
        out
    }

    /// Marks `ask` as sent, or as deferred by the minute window.
    pub fn mark(&mut self, ask: Ask, outcome: Outcome) {
        self.slot(ask).outcome = Some(outcome);
    }

    /// Whether an ask of this run is in flight or waits to go.
    pub fn pending(&self) -> bool {
        self.slots
            .values()
            .any(|s| matches!(s.outcome, Some(Outcome::InFlight | Outcome::Waiting)))
    }

    pub fn outcome(&self, ask: &Ask) -> Option<&Outcome> {
        self.slots.get(ask).and_then(|s| s.outcome.as_ref())
    }

    pub fn kept(&self, ask: &Ask) -> Option<&Kept> {
        self.slots.get(ask).and_then(|s| s.kept.as_ref())
    }

    /// Whether `ask` answered this run.
    pub fn is_fresh(&self, ask: &Ask) -> bool {
        self.outcome(ask) == Some(&Outcome::Fresh)
    }

    /// Seconds since the kept answer of `ask` was fetched.
    pub fn age(&self, ask: &Ask, now: i64) -> Option<i64> {
        self.kept(ask).map(|k| now - k.fetched_at)
    }

    /// What the run has for `ask`: this run's answer, or the last one replayed. Behind a
    /// failure that will likely pass (a timeout, a 5xx, a 429, the daily quota) the last
    /// answer stands in, with its own upload times, so that the car's series do not vanish
    /// for a run while [`CarAnswers::stood_in`] reports the failure. Any other failure
    /// stands. The vehicle list has its own stand-in, which warns (`Planner::listed`).
    pub fn get(&self, ask: &Ask) -> Result<&Answer, ApiError> {
        let kept = || self.kept(ask).map(|k| &k.answer);
        match self.outcome(ask) {
            Some(Outcome::Fresh) => kept().ok_or(ApiError::Decode("no answer kept".into())),
            Some(Outcome::Failed(e)) if stands_in_for(ask.endpoint, e) => {
                kept().ok_or_else(|| e.clone())
            }
            Some(Outcome::Failed(e)) => Err(e.clone()),
            Some(Outcome::Deferred | Outcome::Waiting) => kept().ok_or(ApiError::Deferred),
            Some(Outcome::InFlight) => kept().ok_or(ApiError::Timeout),
            None if self.is_unsupported(ask.endpoint) => {
                Err(ApiError::remembered(self.blocked.contains(&ask.endpoint)))
            }
            None => kept().ok_or(match self.absent {
                Absent::QuotaPaused => ApiError::Quota { reset_after: None },
                Absent::Deferred => ApiError::Deferred,
            }),
        }
    }

    /// The failure of this run that the kept answer of `ask` stands in for in [`Self::get`].
    pub fn stands_in(&self, ask: &Ask) -> Option<ApiError> {
        let slot = self.slots.get(ask).filter(|s| s.kept.is_some())?;
        match &slot.outcome {
            Some(Outcome::Failed(e)) if stands_in_for(ask.endpoint, e) => Some(e.clone()),
            Some(Outcome::InFlight) => Some(ApiError::Timeout),
            _ => None,
        }
    }

    /// The failures of `api`'s endpoints that a kept answer stood in for: the mappers saw the
    /// answer, the self-metrics report the failure. The quota's are left out: the planner
    /// says those once for the account.
    pub fn stood_in(&self, api: Origin) -> impl Iterator<Item = (Endpoint, ApiError)> + '_ {
        self.slots
            .keys()
            .filter(move |a| a.endpoint.api() == api)
            .filter_map(|a| Some((a.endpoint, self.stands_in(a)?)))
            .filter(|(_, e)| !matches!(e, ApiError::Quota { .. }))
    }

    /// The typed answer of an endpoint (without a resource).
    pub fn typed<T: Typed>(&self, endpoint: Endpoint) -> Result<&T, ApiError> {
        self.typed_at(&Ask::of(endpoint))
    }

    pub fn typed_at<T: Typed>(&self, ask: &Ask) -> Result<&T, ApiError> {
        let answer = self.get(ask)?;
        T::from_answer(answer).ok_or_else(|| {
            ApiError::Decode(format!(
                "{} kept an answer of another endpoint",
                ask.endpoint
            ))
        })
    }

    /// The newest upload among this run's fresh answers, but for `except`'s.
    pub fn newest_fresh(&self, except: Option<Endpoint>) -> Option<i64> {
        self.slots
            .iter()
            .filter(|(a, s)| Some(a.endpoint) != except && s.outcome == Some(Outcome::Fresh))
            .filter_map(|(_, s)| s.kept.as_ref().and_then(|k| k.newest))
            .max()
    }

    /// Every answer kept, for the state file.
    pub fn into_entries(self) -> impl Iterator<Item = (AnswerKey, CacheEntry)> {
        let vin = self.vin;
        self.slots.into_iter().filter_map(move |(ask, slot)| {
            let k = slot.kept?;
            let key = AnswerKey {
                vin: vin.clone(),
                endpoint: ask.endpoint,
                resource: ask.resource,
            };
            Some((
                key,
                CacheEntry {
                    fetched_at: k.fetched_at,
                    body: k.body,
                },
            ))
        })
    }

    /// Every ask that has a slot, with its slot.
    pub fn slots(&self) -> impl Iterator<Item = (&Ask, &Slot)> {
        self.slots.iter()
    }
}
