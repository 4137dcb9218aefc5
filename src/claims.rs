//! Which account of a run reads a car that several accounts list (a car shared between two
//! Volvo IDs): the first one, in the configuration file's order. Each account tells the cars
//! it reads as soon as it knows them, or that it reads none when it cannot get that far; a
//! later account waits for the earlier ones' word before it plans its own cars, and leaves
//! theirs out. The wait is short and bounded: an account that has not told in time is read
//! past, and its cars are read twice that run rather than not at all.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::Account;

/// The longest a later account waits for an earlier one's word: its token and its vehicle
/// list usually take a request or two.
pub const WAIT: Duration = Duration::from_secs(5);

/// The word of every account of a run, in the configuration file's order.
pub struct Claims {
    told: Vec<watch::Sender<Option<Vec<String>>>>,
}

impl Claims {
    pub fn new(accounts: usize) -> Claims {
        Claims {
            told: (0..accounts).map(|_| watch::Sender::new(None)).collect(),
        }
    }

    /// Account `i`'s handle: what it tells, and what it must leave to the accounts before it.
    pub fn of(&self, i: usize) -> Claim<'_> {
        Claim { claims: self, i }
    }
}

/// One account's part in the [`Claims`]. Dropped without having told, it tells "none", so
/// that no later account waits for an account that ended early.
pub struct Claim<'a> {
    claims: &'a Claims,
    i: usize,
}

impl Claim<'_> {
    /// The cars this account reads; only the first word counts.
    pub fn tell(&self, vins: &[String]) {
        self.claims.told[self.i].send_if_modified(|said| {
            let first = said.is_none();
            if first {
                *said = Some(vins.to_vec());
            }
            first
        });
    }

    /// The cars the earlier accounts read, as far as they told by `until`.
    pub async fn taken_before(&self, until: Instant) -> BTreeSet<String> {
        let mut taken = BTreeSet::new();
        for told in &self.claims.told[..self.i] {
            let mut word = told.subscribe();
            let said = async { word.wait_for(Option::is_some).await.map(|s| s.clone()) };
            if let Ok(Ok(Some(vins))) = tokio::time::timeout_at(until, said).await {
                taken.extend(vins);
            }
        }
        taken
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.tell(&[]);
    }
}

/// An account's cars as far as they are known before a run asks: its own, and those an
/// earlier account of the file reads.
#[derive(Debug, PartialEq)]
pub struct Share {
    pub own: Vec<String>,
    pub theirs: Vec<String>,
}

/// Each account's [`Share`] of the cars `known` gives it (`None` where nothing is known), a
/// car on several accounts given to the first, as a run's claims give it. For what is worked
/// out without asking: the API key's share of cars, and `check --plan`.
pub fn share(
    accounts: &[Account],
    known: impl Fn(&Account) -> Option<Vec<String>>,
) -> Vec<Option<Share>> {
    let mut taken = BTreeSet::new();
    accounts
        .iter()
        .map(|a| {
            let (theirs, own): (Vec<String>, Vec<String>) =
                known(a)?.into_iter().partition(|v| taken.contains(v));
            taken.extend(own.iter().cloned());
            Some(Share { own, theirs })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vins(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A later account learns the earlier ones' cars; the first account waits for no one; an
    /// account that ends without telling frees the others at once.
    #[tokio::test]
    async fn later_accounts_leave_out_what_earlier_ones_read() {
        let claims = Claims::new(3);
        let (first, second, third) = (claims.of(0), claims.of(1), claims.of(2));
        let soon = Instant::now() + Duration::from_secs(5);
        assert!(first.taken_before(soon).await.is_empty());
        first.tell(&vins(&["A", "B"]));
        first.tell(&vins(&["C"]));
        drop(second);
        let taken = third.taken_before(soon).await;
        assert_eq!(taken, ["A", "B"].map(String::from).into());
    }

    /// Worked out without asking, a car on two accounts is the first one's; an account whose
    /// cars are not known has no share.
    #[test]
    fn a_known_car_on_two_accounts_is_the_first_ones() {
        let s = crate::config::parse(
            std::path::Path::new("/etc/vc/collector.toml"),
            "[[account]]\nname = \"a\"\nclient_id = \"x\"\n[[account]]\nname = \"b\"\nclient_id = \"x\"\n[[account]]\nname = \"c\"\nclient_id = \"x\"\n",
            &|_| None,
        )
        .unwrap();
        let shares = share(&s.accounts, |a| match a.name.as_str() {
            "a" => Some(vins(&["A", "B"])),
            "b" => None,
            _ => Some(vins(&["B", "C"])),
        });
        assert_eq!(
            shares,
            [
                Some(Share {
                    own: vins(&["A", "B"]),
                    theirs: vec![]
                }),
                None,
                Some(Share {
                    own: vins(&["C"]),
                    theirs: vins(&["B"])
                }),
            ]
        );
    }

    /// An earlier account that has not told by the deadline is read past.
    #[tokio::test]
    async fn the_wait_is_bounded() {
        let claims = Claims::new(2);
        let (_first, second) = (claims.of(0), claims.of(1));
        let until = Instant::now() + Duration::from_millis(50);
        assert!(second.taken_before(until).await.is_empty());
        assert!(Instant::now() >= until);
    }
}
