//! The request plan of `check --plan`: per API key, how many requests a day the configured
//! endpoints and fleet need against Volvo's daily quota, and the minute window, so that a fleet
//! or an interval that would exhaust the quota is caught before it does.

use std::time::Duration;

use super::findings::{human, thousands, Finding, Level};
use crate::config::{Account, Settings};
use crate::endpoints::Endpoint;
use crate::schedule;

/// One account in the plan and how many cars it collects.
pub(super) struct PlannedAccount<'a> {
    account: &'a Account,
    cars: usize,
    /// Where the number of cars came from, for the reader.
    from: String,
}

impl<'a> PlannedAccount<'a> {
    /// `theirs`: cars of the account that an earlier account of the file reads, which it does
    /// not count.
    pub(super) fn new(
        account: &'a Account,
        listed: Option<usize>,
        flag: Option<usize>,
        theirs: usize,
    ) -> Self {
        // An explicit --cars that loses to what the config or the account says is named, so
        // that a "what if" plan is not silently about another fleet.
        let unused = |n: usize| match flag {
            Some(c) if c != n => format!("; --cars {c} not used"),
            _ => String::new(),
        };
        let (cars, from) = if !account.vins.is_empty() {
            let n = account.vins.len();
            (n, format!("volvo.vins{}", unused(n)))
        } else if let Some(n) = listed {
            (n, format!("the account's vehicle list{}", unused(n)))
        } else if let Some(n) = flag {
            // A "what if" number is taken as it is given.
            return PlannedAccount {
                account,
                cars: n,
                from: "--cars".to_string(),
            };
        } else if let Some(n) = cars_in_state(account) {
            (
                n,
                "the account's last vehicle list, in the state file".to_string(),
            )
        } else {
            (1, "assumed; pass --cars N".to_string())
        };
        let (cars, from) = match theirs {
            0 => (cars, from),
            n => (
                cars.saturating_sub(n),
                format!("{from}, less {n} read by an earlier account"),
            ),
        };
        PlannedAccount {
            account,
            cars,
            from,
        }
    }
}

/// How many cars the account's last vehicle list named, as the state file keeps it (`check
/// --offline`, or a vehicle list that did not answer now).
fn cars_in_state(account: &Account) -> Option<usize> {
    let state = crate::state::State::load(&account.state_file);
    crate::run::last_vehicle_list(&state)
        .map(|v| v.len())
        .filter(|n| *n > 0)
}

/// The plan as printed: per API key a table (endpoint, how often in the worst case, requests a
/// day), the worst case against the key's budget, the typical day beside it, the stretch when
/// the cars need more than the quota allows, and the minute window.
pub(super) fn plan_lines(
    settings: &Settings,
    fleet: &[PlannedAccount],
    interval: Duration,
) -> Vec<String> {
    let mut lines = Vec::new();
    let runs_a_day = 86_400u64.div_ceil(interval.as_secs().max(1));
    // Accounts of one application share its API key, and with it the daily quota.
    let mut groups: Vec<Vec<&PlannedAccount>> = Vec::new();
    for a in fleet {
        let same_key = groups.iter_mut().find(|g| {
            let k = &g[0].account.api_key;
            k.is_some() && *k == a.account.api_key
        });
        match same_key {
            Some(g) => g.push(a),
            None => groups.push(vec![a]),
        }
    }
    for group in groups {
        let names: Vec<String> = group
            .iter()
            .map(|a| {
                format!(
                    "{} ({} {}: {})",
                    a.account.name,
                    a.cars,
                    if a.cars == 1 { "car" } else { "cars" },
                    a.from
                )
            })
            .collect();
        lines.push(format!(
            "Request plan of the API key of account {}, a run every {} ({} a day):",
            names.join(" and account "),
            human(interval.as_secs() as i64),
            thousands(runs_a_day)
        ));
        let schedule = schedule::Schedule::with_overrides(&settings.schedule);
        let fleet = schedule::Fleet {
            schedule: &schedule,
            sources: &settings.sources,
            interval,
            cars: group.iter().map(|a| a.cars).sum(),
            accounts: group.len(),
        };
        let plan = fleet.plan(schedule::DAILY_BUDGET);
        lines.extend(plan_table(&plan));
        lines.push(budget_finding(&plan).line(""));
        let day = crate::run::key_day(settings, group[0].account, settings.clock.now());
        lines.push(today_finding(&fleet, &day).line(""));
        let multi = group.len() > 1;
        for a in &group {
            let who = if multi {
                format!("account {}: ", a.account.name)
            } else {
                String::new()
            };
            lines.push(rate_finding(settings).line(&who));
        }
    }
    lines
}

/// The plan's rows and totals.
fn plan_table(plan: &schedule::DayPlan) -> Vec<String> {
    let mut lines = vec![format!(
        "  {:<24} {:>10} {:>13}",
        "endpoint", "every", "requests/day"
    )];
    for r in &plan.rows {
        let every = if r.period == 0 {
            "every run".to_string()
        } else {
            human(r.period as i64)
        };
        let note = if r.endpoint == Endpoint::ExtendedValues {
            format!(
                "  ({} values a car, estimated)",
                schedule::EXTENDED_RESOURCES_PER_CAR
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "  {:<24} {every:>10} {:>13}{note}",
            r.endpoint.name(),
            thousands(r.per_day)
        ));
    }
    lines.push(format!(
        "  {:<24} {:>10} {:>13}  (worst case at these intervals: every car awake all day)",
        "total",
        "",
        thousands(plan.total)
    ));
    // The intervals above are the floor: a day that needs less than the worst case is asked
    // more often, so a typical day may spend more than that total.
    let more = if plan.estimate > plan.total {
        ", asked more often than above while the day's budget lasts"
    } else {
        ""
    };
    lines.push(format!(
        "  {:<24} {:>10} {:>13}  (a typical day: asleep but for two 40-minute trips and a charge{more})",
        "estimate",
        "",
        thousands(plan.estimate)
    ));
    lines
}

/// The worst case against the key's budget, and what was stretched to fit it.
fn budget_finding(plan: &schedule::DayPlan) -> Finding {
    let quota = thousands(schedule::DAILY_QUOTA);
    let budget = thousands(schedule::DAILY_BUDGET);
    let total = thousands(plan.total);
    if plan.total > schedule::DAILY_BUDGET {
        return Finding {
            level: Level::Warn,
            text: format!(
                "budget: {total} requests a day even with every interval stretched, above the {budget} a day spends of Volvo's {quota} per API key: collect fewer cars per key, or give some of them an API key of their own ([[account]] with another application)"
            ),
        };
    }
    let text = if plan.stretch.is_stretched() {
        format!(
            "budget: the worst case (every car awake all day) is {total} requests a day within {budget} of Volvo's {quota} per API key with the intervals stretched: {}; that is the floor of service, and a day that needs less than the worst case is served in full (see today); an API key of its own for some cars ([[account]]) raises the floor",
            plan.stretch
        )
    } else {
        format!(
            "budget: {total} requests a day at most, {}% of Volvo's {quota} per API key (a day spends at most {budget})",
            (plan.total * 100).div_ceil(schedule::DAILY_QUOTA)
        )
    };
    Finding {
        level: Level::Ok,
        text,
    }
}

/// Today's spending of the key, where it is heading, and the service a run gets now.
fn today_finding(fleet: &schedule::Fleet, day: &schedule::Day) -> Finding {
    let budget = fleet.budget(day);
    let quota = thousands(schedule::DAILY_QUOTA);
    let projected = day.projection(fleet.interval.as_secs());
    let floor = &budget.floor;
    let service = if floor.is_stretched() {
        format!("the rest of the day is sure of at least: {floor}")
    } else {
        "the rest of the day is sure of full service, every car awake all day".to_string()
    };
    Finding {
        level: if projected > schedule::DAILY_BUDGET {
            Level::Warn
        } else {
            Level::Ok
        },
        text: format!(
            "today: the key spent {} of Volvo's {quota} since its reset ({} ago; counted by every run, hand run and check of its accounts), {} at this pace by the next reset at {}; a run now may spend {} (the rest stays for the floor); {service}",
            thousands(budget.spent),
            human(86_400 - (day.reset_at - day.now)),
            thousands(projected),
            super::findings::at(day.reset_at),
            thousands(budget.allowance),
        ),
    }
}

/// The minute window: what pacing does with a run that needs more than a minute allows.
fn rate_finding(s: &Settings) -> Finding {
    let rpm = s.requests_per_minute as u64;
    let limit = schedule::PER_MINUTE_LIMIT;
    let (level, text) = if rpm == 0 {
        (Level::Warn, format!(
            "rate: the minute window is off (collect.requests_per_minute = 0): a large run can exceed Volvo's {limit} a minute and get HTTP 429; set collect.requests_per_minute = 90"
        ))
    } else if rpm > limit {
        (Level::Warn, format!(
            "rate: collect.requests_per_minute = {rpm} is above Volvo's {limit} a minute: set it to 90"
        ))
    } else {
        (Level::Ok, format!(
            "rate: every run of this account (timer, hand runs, check) shares a window of {rpm} requests a minute (collect.requests_per_minute) below Volvo's {limit}; what does not fit is deferred to the next run, never refused"
        ))
    };
    Finding { level, text }
}
