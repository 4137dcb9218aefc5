//! Volvo's per-minute request limit, shared by every process of one account. Volvo counts
//! requests per user over a sliding minute, whoever sends them (a timer run, a hand run,
//! `check`), so the window is kept in a small file beside the account's state
//! (`<state_file>.window`), changed only under the state's lock, which is waited for no
//! longer than the run's deadline. A run reserves its places before it asks; what finds no
//! place is deferred to the next run, never sent into a 429. A place used later than it was
//! reserved is stamped when used (Volvo counts a request from when it is sent), and the places
//! a run did not use are given back when it ends.
//!
//! A window file that cannot be read (damaged, deleted, not a regular file) is not taken for
//! an empty minute: every reservation also notes its time in the state's lock file, and a
//! damaged window file still has the time it was written. When either says the account asked
//! Volvo within the last minute, the minute is taken as full from then on, with a warning;
//! only when neither does (a first run, or an account quiet for a minute) does the window
//! start empty.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::endpoints::Fact;
use crate::fsutil::{self, LockFile, ReadError};

/// The sliding window's length.
const MINUTE_MS: i64 = 60_000;
/// How long a reserved place stays usable: it must be used, and stamped anew, well before the
/// window forgets it.
const PLACE_MS: i64 = 50_000;
/// The most a window file may hold: one number for each place of the minute.
const WINDOW_MAX: u64 = 1 << 20;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Sent {
    /// Unix milliseconds of each request reserved in the last minute.
    #[serde(default)]
    sent: Vec<i64>,
}

/// One account's window.
#[derive(Debug, Clone)]
pub struct Window {
    file: PathBuf,
    lock: PathBuf,
    per_minute: usize,
    /// The run's deadline: no wait for the lock goes past it.
    deadline: Instant,
    clock: crate::clock::Clock,
    /// The times of this run's reserved places not used yet, oldest first: a place used
    /// later is stamped anew ([`Window::take`]), one never used is given back
    /// ([`Window::release`]).
    unused: Arc<Mutex<Vec<i64>>>,
}

impl Window {
    /// The window of the account whose state is `state_file`, allowing `per_minute`
    /// requests (0: no limit), for a run that ends at `deadline` and reads `clock`.
    pub fn new(
        state_file: &Path,
        per_minute: usize,
        deadline: Instant,
        clock: crate::clock::Clock,
    ) -> Window {
        Window {
            file: crate::state::window_file(state_file),
            lock: fsutil::lock_path(state_file),
            per_minute,
            deadline,
            clock,
            unused: Arc::default(),
        }
    }

    /// Whether the window limits anything (`requests_per_minute` is not 0).
    pub fn limits(&self) -> bool {
        self.per_minute > 0
    }

    /// Reserves up to `wanted` places now and returns how many it got: none when another
    /// process holds the state's lock until the deadline (which the log says).
    pub async fn reserve(&self, wanted: usize) -> usize {
        match self.try_reserve(wanted).await {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!("{e}");
                0
            }
        }
    }

    /// Reserves up to `wanted` places for requests that go out now: [`Window::reserve`] and
    /// [`Window::take`] in one.
    pub async fn reserve_now(&self, wanted: usize) -> usize {
        match self.reserving(wanted, false).await {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!("{e}");
                0
            }
        }
    }

    /// [`Window::reserve`], with the reason when the lock could not be had in time.
    pub async fn try_reserve(&self, wanted: usize) -> Result<usize, String> {
        self.reserving(wanted, true).await
    }

    /// Reserves up to `wanted` places; `later`: they are kept as unused until taken.
    async fn reserving(&self, wanted: usize, later: bool) -> Result<usize, String> {
        if self.per_minute == 0 || wanted == 0 {
            return Ok(wanted);
        }
        let lock = self.lock().await.map_err(|e| {
            format!("Volvo's request window cannot be used, so nothing more is asked: {e}")
        })?;
        let now = self.clock.now_ms();
        let boot = self.clock.since_boot();
        let noted = lock
            .as_ref()
            .and_then(|l| l.noted())
            .and_then(|n| Note::parse(&n));
        // The window as it stood, in the clock it was written by, then moved into today's.
        let step = self.step(noted.as_ref(), now, boot.as_ref());
        let mut sent = self.load(now - step, noted.as_ref().map(|n| n.wall_ms));
        for t in &mut sent {
            *t += step;
        }
        // A time still in the future (a set clock set back) would block the window: dropped.
        sent.retain(|t| *t > now - MINUTE_MS && *t <= now);
        let granted = wanted.min(self.per_minute.saturating_sub(sent.len()));
        sent.extend(std::iter::repeat_n(now, granted));
        if later {
            let mut unused = self.unused.lock().expect("window lock");
            unused.extend(std::iter::repeat_n(now, granted));
        }
        self.save(sent);
        if granted > 0 {
            if let Some(lock) = &lock {
                lock.note(&Note::text(now, boot.as_ref()));
            }
        }
        Ok(granted)
    }

    /// How far the system's wall clock stepped since the last reservation was noted, as the
    /// boot clock tells it (0 when it cannot tell). The window's times move by it: a clock
    /// set forward by a day must not make the window forget the requests of a real minute
    /// ago (Volvo's minute is real time), nor a clock set back drop them as future ones.
    fn step(&self, noted: Option<&Note>, now: i64, boot: Option<&crate::clock::BootTime>) -> i64 {
        let (Some(noted), Some(boot)) = (noted, boot) else {
            return 0;
        };
        let Some(then) = &noted.boot else {
            return 0;
        };
        let step = crate::clock::step_since(noted.wall_ms, then, now, boot);
        if step != 0 {
            tracing::warn!(
                file = %self.file.display(),
                step_s = step / 1000,
                "the wall clock was set since this account's last request; the request window follows it"
            );
        }
        step
    }

    /// `n` of the reserved places are used now, the latest reserved first. A place reserved
    /// more than a second ago is stamped anew: Volvo counts a request for a minute from when it
    /// is sent, and so must the window.
    pub async fn take(&self, n: usize) {
        let now = self.clock.now_ms();
        let stale: Vec<i64> = {
            let mut unused = self.unused.lock().expect("window lock");
            let keep = unused.len().saturating_sub(n);
            let taken = unused.split_off(keep);
            taken.into_iter().filter(|t| now - t > 1_000).collect()
        };
        if stale.is_empty() {
            return;
        }
        self.rewrite(&stale, Some(now), "the places it used late may free early")
            .await;
    }

    /// How many of this run's reserved places are still usable: those reserved longer ago
    /// than [`PLACE_MS`] are dropped (the window forgets them soon; what they were kept for
    /// then needs a new place).
    pub fn usable(&self) -> usize {
        let now = self.clock.now_ms();
        let mut unused = self.unused.lock().expect("window lock");
        unused.retain(|t| now - t <= PLACE_MS);
        unused.len()
    }

    /// Gives back the places this run reserved and did not use, so that other runs of the
    /// account have them.
    pub async fn release(&self) {
        let unused = std::mem::take(&mut *self.unused.lock().expect("window lock"));
        if unused.is_empty() {
            return;
        }
        self.rewrite(&unused, None, "its unused places stay taken for a minute")
            .await;
    }

    /// Replaces each of these times of this run's in the window file by `with` (`None`:
    /// removes it). Only under the lock and with the file as it was written: a window taken
    /// as full because its file was lost is left as it is.
    async fn rewrite(&self, times: &[i64], with: Option<i64>, otherwise: &str) {
        if self.per_minute == 0 {
            return;
        }
        let lock = match self.lock().await {
            Ok(Some(lock)) => lock,
            Ok(None) | Err(_) => {
                tracing::warn!(file = %self.file.display(), "the request window cannot be locked: {otherwise}");
                return;
            }
        };
        if let Some(now) = with {
            // Should the window file be lost, the lock file's note tells of these sends too.
            lock.note(&Note::text(now, self.clock.since_boot().as_ref()));
        }
        let Some(mut sent) = self.read() else {
            return;
        };
        for t in times {
            if let Some(i) = sent.iter().position(|s| s == t) {
                match with {
                    Some(now) => sent[i] = now,
                    None => {
                        sent.remove(i);
                    }
                }
            }
        }
        self.save(sent);
    }

    /// The state's lock, waited for until the deadline; `None` when it cannot be taken for
    /// another reason than a holder (the window is then used without it).
    async fn lock(&self) -> Result<Option<LockFile>, String> {
        match fsutil::lock_until(&self.lock, self.deadline).await {
            Ok(lock) => Ok(Some(lock)),
            Err(e @ fsutil::LockError::Held(_)) => Err(e.describe(&self.lock)),
            Err(e) => {
                tracing::warn!(
                    "{}; using the request window without the lock",
                    e.describe(&self.lock)
                );
                Ok(None)
            }
        }
    }

    fn save(&self, sent: Vec<i64>) {
        let bytes = serde_json::to_vec(&Sent { sent }).expect("the window serializes");
        if let Err(e) = fsutil::write_atomic(&self.file, &bytes, 0o600, false) {
            tracing::warn!(file = %self.file.display(), "cannot save the request window ({}); other runs may not see these requests", fsutil::describe(&e));
        }
    }

    /// The places taken as the window file records them; when it cannot tell, the safe
    /// assumption of the module's rule.
    fn load(&self, now: i64, noted: Option<i64>) -> Vec<i64> {
        let (missing, what) = match fsutil::read_capped(&self.file, WINDOW_MAX) {
            Ok(bytes) => match serde_json::from_slice::<Sent>(&bytes) {
                Ok(w) => return w.sent,
                Err(_) => (false, "is damaged".to_string()),
            },
            Err(ReadError::NotFound) => (true, "is missing".to_string()),
            Err(e) => (false, format!("cannot be read ({e})")),
        };
        let mut last = noted;
        if !missing {
            // Something is there: it was written at its time, or, when that is unknown, now.
            last = last.max(Some(self.modified(&self.file).unwrap_or(now)));
        }
        let Some(last) = last.map(|t| t.min(now)) else {
            return Vec::new();
        };
        if last <= now - MINUTE_MS {
            if !missing {
                tracing::warn!(file = %self.file.display(), "the request window {what}; this account last asked Volvo more than a minute ago, so a new window starts");
            }
            return Vec::new();
        }
        let until = crate::clock::datetime((last + MINUTE_MS).div_euclid(1000));
        tracing::warn!(
            file = %self.file.display(),
            "the request window {what}, but this account asked Volvo within the last minute: the minute is taken as full until {}, and what does not fit is deferred",
            until.to_rfc3339()
        );
        vec![last; self.per_minute]
    }

    /// The places the window file records, when it can be read.
    fn read(&self) -> Option<Vec<i64>> {
        let bytes = fsutil::read_capped(&self.file, WINDOW_MAX).ok()?;
        serde_json::from_slice::<Sent>(&bytes).ok().map(|w| w.sent)
    }

    /// A file's modification time in Unix milliseconds, unless the clock was set (`clock`):
    /// file times are on another clock then.
    fn modified(&self, path: &Path) -> Option<i64> {
        if self.clock.is_set() {
            return None;
        }
        let t = std::fs::metadata(path).ok()?.modified().ok()?;
        let ms = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis();
        i64::try_from(ms).ok()
    }
}

/// What a reservation notes in the state's lock file: its time, and for the system's clock
/// where the boot clock stood (`<unix ms> <boot ms> <boot id>`), so that a later run can tell
/// how far the wall clock stepped since.
#[derive(Debug, PartialEq)]
struct Note {
    wall_ms: i64,
    boot: Option<crate::clock::BootTime>,
}

impl Note {
    fn text(wall_ms: i64, boot: Option<&crate::clock::BootTime>) -> String {
        match boot {
            Some(b) => format!("{wall_ms} {} {}", b.ms, b.boot),
            None => wall_ms.to_string(),
        }
    }

    fn parse(text: &str) -> Option<Note> {
        let mut parts = text.split_whitespace();
        let wall_ms = parts.next()?.parse().ok()?;
        let boot = match (parts.next().and_then(|m| m.parse().ok()), parts.next()) {
            (Some(ms), Some(boot)) => Some(crate::clock::BootTime {
                ms,
                boot: boot.to_string(),
            }),
            _ => None,
        };
        Some(Note { wall_ms, boot })
    }
}

/// How one batch of requests, most important first, takes its places: the first `go` go out
/// now, the next `wait` keep their places for the next batch, the rest are deferred to the
/// next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub go: usize,
    pub wait: usize,
    /// Places reserved and not used now, kept for the next batch.
    pub carried: usize,
}

/// What a batch asks of the window: places for itself and for all that may follow it (see
/// [`admit`]), within the run's `room` (its part of the key's day), beyond those carried.
pub fn to_reserve(batch: usize, follow: usize, room: usize, carried: usize) -> usize {
    (batch + follow).min(room).saturating_sub(carried)
}

/// A batch with these `priorities` (most important first) takes its places: those `carried`
/// from earlier batches and those the window `granted`. `follow` is at most how many more
/// requests that could outrank something in the batch the answers in flight or about to go
/// may bring (a car that woke wants its state), `room` what the run's part of the key's day
/// still allows, `lead` the most important request in flight.
///
/// When the places and the room cover the batch and all that may follow, it all goes and the
/// rest of the places wait for what follows. When they do not, the places are spent in the
/// ladder's order across batches, never in the order answers happen to arrive: only requests
/// more important than every one in flight go now (with none in flight, the batch's most
/// important class), and the rest of the places wait for those answers, since they may bring
/// wants that outrank what is left.
pub fn admit(
    priorities: &[Fact],
    follow: usize,
    room: usize,
    carried: usize,
    granted: usize,
    lead: Option<Fact>,
) -> Admission {
    let places = carried + granted;
    let batch = priorities.len();
    if places >= batch + follow && room >= batch + follow {
        return Admission {
            go: batch,
            wait: 0,
            carried: places - batch,
        };
    }
    let usable = places.min(room).min(batch);
    let Some(&first) = priorities.first() else {
        return Admission {
            go: 0,
            wait: 0,
            carried: places,
        };
    };
    let go = priorities[..usable]
        .iter()
        .take_while(|p| match lead {
            Some(l) => **p < l,
            None => **p == first,
        })
        .count();
    Admission {
        go,
        wait: usable - go,
        carried: places - go,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soon() -> Instant {
        Instant::now() + std::time::Duration::from_secs(1)
    }

    #[tokio::test]
    async fn two_windows_on_one_file_share_the_minute() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10, soon(), Default::default());
        let b = Window::new(&state, 10, soon(), Default::default());
        assert_eq!(a.reserve(7).await, 7);
        assert_eq!(
            b.reserve(7).await,
            3,
            "the second process gets what is left"
        );
        assert_eq!(a.reserve(1).await, 0);
        assert_eq!(
            Window::new(&state, 0, soon(), Default::default())
                .reserve(500)
                .await,
            500,
            "0 turns it off"
        );
    }

    #[tokio::test]
    async fn places_a_run_did_not_use_go_back_to_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10, soon(), Default::default());
        let b = Window::new(&state, 10, soon(), Default::default());
        assert_eq!(a.reserve(6).await, 6);
        assert_eq!(b.reserve(3).await, 3);
        a.take(2).await;
        a.release().await;
        assert_eq!(
            b.reserve(10).await,
            5,
            "the 2 a used and the 3 b holds stay taken"
        );
        b.release().await;
        assert_eq!(
            Window::new(&state, 10, soon(), Default::default())
                .reserve(10)
                .await,
            8,
            "b gives back its own 8 unused: a's 2 stay"
        );
    }

    /// Guards Volvo's minute against a wall clock set forward (or back) between two runs: the
    /// window's times were taken as a day old (or as future ones) and dropped, so the next run
    /// could send a whole minute's worth into Volvo's 429s.
    #[tokio::test]
    async fn a_wall_clock_step_moves_the_window_with_it() {
        let clock = crate::clock::Clock::system();
        let Some(boot) = clock.since_boot() else {
            return; // No boot clock on this machine: nothing can tell a step.
        };
        for step in [2 * 86_400_000, -3_600_000] {
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state.json");
            // Six requests sent 5 s ago, stamped by a wall clock `step` behind today's.
            let then = clock.now_ms() - step - 5_000;
            let sent = serde_json::to_vec(&Sent {
                sent: vec![then; 6],
            })
            .unwrap();
            std::fs::write(crate::state::window_file(&state), sent).unwrap();
            let then_boot = crate::clock::BootTime {
                ms: boot.ms - 5_000,
                boot: boot.boot.clone(),
            };
            std::fs::write(
                fsutil::lock_path(&state),
                Note::text(then, Some(&then_boot)),
            )
            .unwrap();
            let w = Window::new(&state, 10, soon(), clock);
            assert_eq!(w.reserve(10).await, 4, "step {step}: the six still count");
        }
        // Another boot's note tells nothing: the wall clock is all there is.
        let other = crate::clock::BootTime {
            ms: 0,
            boot: "another".into(),
        };
        assert_eq!(crate::clock::step_since(0, &other, 86_400_000, &boot), 0);
    }

    #[test]
    fn a_note_reads_back_and_an_old_one_has_no_boot_time() {
        let boot = crate::clock::BootTime {
            ms: 12_345,
            boot: "0b5e4d2c-8f1a-4c3e-9d7b-2a6f1e0c9b8a".into(),
        };
        let text = Note::text(T0, Some(&boot));
        assert!(
            text.len() <= 128,
            "the lock file's note is read up to 128 bytes"
        );
        assert_eq!(
            Note::parse(&text),
            Some(Note {
                wall_ms: T0,
                boot: Some(boot)
            })
        );
        assert_eq!(
            Note::parse("1796000000000"),
            Some(Note {
                wall_ms: T0,
                boot: None
            })
        );
    }

    const T0: i64 = 1_796_000_000_000;

    /// A window of 10 a minute on `state`, its clock `ms` after [`T0`].
    fn at(state: &Path, ms: i64) -> Window {
        Window::new(
            state,
            10,
            soon(),
            crate::clock::Clock::starting_at_ms(T0 + ms),
        )
    }

    /// The same run's window (its unused places), its clock moved to `ms` after [`T0`].
    fn later(w: &Window, ms: i64) -> Window {
        let mut w = w.clone();
        w.clock = crate::clock::Clock::starting_at_ms(T0 + ms);
        w
    }

    /// Volvo counts a request for a minute from when it is sent: a place reserved early and
    /// used late is stamped when it is used.
    #[tokio::test]
    async fn a_place_used_late_counts_from_when_it_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = at(&state, 0);
        assert_eq!(a.reserve(3).await, 3);
        a.take(1).await;
        let a = later(&a, 30_000);
        a.take(1).await;
        a.release().await;
        assert_eq!(
            at(&state, 61_000).reserve(10).await,
            9,
            "the place used at once has expired, the one used 30 s later has not"
        );
    }

    /// A place kept longer than it can be used is given up; a place stamped anew is what the
    /// lock file's note tells should the window file be lost.
    #[tokio::test]
    async fn a_place_kept_too_long_is_given_up_and_a_late_use_is_noted() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = at(&state, 0);
        assert_eq!(a.reserve(4).await, 4);
        let a = later(&a, 40_000);
        assert_eq!(a.usable(), 4);
        a.take(1).await;
        assert_eq!(
            later(&a, 55_000).usable(),
            0,
            "reserved 55 s ago: the window forgets it soon"
        );
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        assert_eq!(
            at(&state, 61_000).reserve(1).await,
            0,
            "the place used at 40 s is noted: the minute is full until 100 s"
        );
    }

    /// A window taken as full because its file was lost is not made less full by a release:
    /// what the lost file held is unknown.
    #[tokio::test]
    async fn a_release_leaves_a_lost_window_full() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let a = Window::new(&state, 10, soon(), Default::default());
        assert_eq!(a.reserve(4).await, 4);
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        a.release().await;
        let b = Window::new(&state, 10, soon(), Default::default());
        assert_eq!(b.reserve(1).await, 0);
    }

    #[tokio::test]
    async fn a_lost_window_is_a_full_minute_unless_nothing_was_asked_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let w = Window::new(&state, 10, soon(), Default::default());
        // A first run: nothing on disk says the minute was used.
        assert_eq!(w.reserve(2).await, 2);
        // Deleted: the lock file's note says the account asked just now.
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        assert_eq!(w.reserve(2).await, 0);
        // Damaged: the same.
        std::fs::write(dir.path().join("state.json.window"), "{\"sent\": [1,").unwrap();
        assert_eq!(w.reserve(2).await, 0);
        // Both the window and the lock file gone: nothing tells, so a first run again.
        std::fs::remove_file(dir.path().join("state.json.window")).unwrap();
        std::fs::remove_file(dir.path().join("state.json.lock")).unwrap();
        assert_eq!(w.reserve(2).await, 2);
    }

    /// A batch's priorities, what may follow, room, carried, places the window gives, lead.
    type Batch = (&'static [Fact], usize, usize, usize, usize, Option<Fact>);

    /// The admit arithmetic, case by case: (priorities, follow, room, carried, places the
    /// window gives, lead in flight) → (go, wait, carried on), and how many were asked of
    /// the window.
    #[test]
    fn a_batch_spends_its_places_in_the_ladders_order() {
        use Fact::{Slow, State, Static, Trip, Wake};
        let all = usize::MAX;
        let cases: Vec<(Batch, (usize, usize, usize), usize)> = vec![
            // Room for the batch and all that may follow: it goes, the rest waits for those.
            ((&[Wake, State, Static], 4, all, 0, all, None), (3, 0, 4), 7),
            // Carried places cover it all: the window is not asked.
            ((&[Trip, Slow], 1, all, 5, all, Some(Wake)), (2, 0, 3), 0),
            // The window gives 4 of 7: the most important class goes, the rest of the places
            // wait for its answers, the last is deferred.
            (
                (&[Wake, Wake, State, Static, Static], 2, all, 0, 4, None),
                (2, 2, 2),
                7,
            ),
            // The same while a wake fact is in flight: nothing outranks it, all places wait.
            (
                (&[Wake, State, Static], 2, all, 0, 2, Some(Wake)),
                (0, 2, 2),
                5,
            ),
            // A state fact in flight: the wake facts go before it is in.
            (
                (&[Wake, Trip, Trip], 3, all, 0, 2, Some(State)),
                (1, 1, 1),
                6,
            ),
            // The run's part of the day binds, not the window: 3 of room, the class goes.
            (
                (&[State, State, Trip, Slow], 2, 3, 0, all, None),
                (2, 1, 1),
                3,
            ),
            // Nothing in flight and one class: the places it has go, the rest is deferred.
            ((&[Trip, Trip, Trip], 0, all, 2, 0, None), (2, 0, 0), 1),
            // A full window, nothing carried: all deferred.
            ((&[Wake, Static], 3, all, 0, 0, None), (0, 0, 0), 5),
        ];
        for ((priorities, follow, room, carried, window, lead), want, asked) in cases {
            let case = (priorities, follow, room, carried, window, lead);
            let n = to_reserve(priorities.len(), follow, room, carried);
            assert_eq!(n, asked, "{case:?}");
            let a = admit(priorities, follow, room, carried, n.min(window), lead);
            assert_eq!((a.go, a.wait, a.carried), want, "{case:?}");
        }
    }
}
