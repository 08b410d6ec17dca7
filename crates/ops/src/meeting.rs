//! Parts of one piece of work, each on its own thread, that stop at the same points to share
//! values: the parts of a training batch meeting at each batch normalization to combine their
//! statistics.
//!
//! Each part holds a [`Seat`]. At a meeting every seat hands in its values and gets back all
//! seats' values, in seat order, so that every part combines them alike and in an order that
//! does not depend on the threads. A seat dropped (its part ended, returned an error or
//! panicked) breaks the meetings it will not attend: the other parts get an error instead of
//! waiting for ever.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::fork_join::LINGER;

/// A meeting could not take place: a part ended or failed before coming to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a part of the batch ended before meeting the others (it failed, or took another path)")]
pub struct MeetingBroken;

/// What every seat handed in at one meeting, in seat order.
pub type Contributions = Arc<[Vec<f64>]>;

/// One part of a training batch that runs on its own thread (see
/// [`on_own_threads`](crate::on_own_threads)) and meets the other parts where a layer needs the
/// whole batch's statistics: its seat, and its share of the batch's samples.
#[derive(Debug)]
pub struct BatchPart {
    seat: Seat,
    share: f64,
}

impl BatchPart {
    /// The parts of a batch with these shares of its samples (each part's rows over the
    /// batch's), each with its seat at their meetings.
    pub fn all(shares: &[f64]) -> Vec<BatchPart> {
        seats(shares.len())
            .into_iter()
            .zip(shares)
            .map(|(seat, &share)| BatchPart { seat, share })
            .collect()
    }

    /// The part's share of the batch's samples.
    pub fn share(&self) -> f64 {
        self.share
    }

    /// The part's seat at the meetings of the batch's parts.
    pub fn seat(&self) -> &Seat {
        &self.seat
    }
}

/// The seats of one meeting place, one per part: each part exchanges values with the others
/// through its own (see [`Seat::exchange`]).
pub(crate) fn seats(parties: usize) -> Vec<Seat> {
    let place = Arc::new(Place {
        parties,
        round: Mutex::new(Round {
            handed_in: vec![None; parties],
            arrived: 0,
            last: Arc::from(Vec::new()),
        }),
        changed: Condvar::new(),
        completed: AtomicU64::new(0),
        broken: AtomicBool::new(false),
    });
    (0..parties)
        .map(|index| Seat {
            place: Arc::clone(&place),
            index,
        })
        .collect()
}

/// One part's place at the meetings of its batch.
pub struct Seat {
    place: Arc<Place>,
    index: usize,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Seat({} of {})", self.index, self.place.parties)
    }
}

impl Seat {
    /// The seat's position among the parts, from 0.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Hands in `values` and waits until every seat has handed in its own: then returns all of
    /// them, in seat order. Fails once any seat has been dropped before this meeting completed.
    ///
    /// A waiting part spins for a short while (parts of one batch arrive within microseconds of
    /// each other, and a thread put to sleep takes long to wake), then sleeps.
    pub fn exchange(&self, values: Vec<f64>) -> Result<Contributions, MeetingBroken> {
        let place = &*self.place;
        let mut round = place.lock();
        if place.broken.load(Ordering::Acquire) {
            return Err(MeetingBroken);
        }
        round.handed_in[self.index] = Some(values);
        round.arrived += 1;
        if round.arrived == place.parties {
            let all: Contributions = round
                .handed_in
                .iter_mut()
                .map(|slot| slot.take().unwrap_or_default())
                .collect();
            round.last = Arc::clone(&all);
            round.arrived = 0;
            place.completed.fetch_add(1, Ordering::Release);
            drop(round);
            place.changed.notify_all();
            return Ok(all);
        }
        // The next round cannot complete without this seat: `last` stays this round's until
        // this seat has read it.
        let target = place.completed.load(Ordering::Acquire) + 1;
        drop(round);
        let done = || place.completed.load(Ordering::Acquire) >= target;
        let start = Instant::now();
        while !done() && !place.broken.load(Ordering::Acquire) && start.elapsed() < LINGER {
            std::hint::spin_loop();
        }
        let mut round = place.lock();
        while !done() && !place.broken.load(Ordering::Acquire) {
            round = place
                .changed
                .wait(round)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if done() {
            Ok(Arc::clone(&round.last))
        } else {
            Err(MeetingBroken)
        }
    }
}

impl Drop for Seat {
    /// A part that ends will come to no more meetings: the ones the others wait at, or come to
    /// later, cannot complete.
    fn drop(&mut self) {
        let place = &*self.place;
        let _round = place.lock();
        place.broken.store(true, Ordering::Release);
        place.changed.notify_all();
    }
}

/// What the seats of one batch share.
struct Place {
    parties: usize,
    round: Mutex<Round>,
    changed: Condvar,
    /// Meetings completed so far.
    completed: AtomicU64,
    /// Set once a seat is dropped.
    broken: AtomicBool,
}

impl Place {
    /// The round's state, locked (the state stays whole if a thread panicked holding it: every
    /// update under the lock is a plain assignment).
    fn lock(&self) -> MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The meeting under way.
struct Round {
    /// The values handed in so far, by seat.
    handed_in: Vec<Option<Vec<f64>>>,
    /// How many seats have handed in theirs.
    arrived: usize,
    /// The values of the last meeting completed.
    last: Contributions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seat_gets_every_contribution_in_seat_order_at_each_meeting() {
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = seats(3)
                .into_iter()
                .map(|seat| {
                    scope.spawn(move || {
                        let i = seat.index() as f64;
                        let first = seat.exchange(vec![i]).unwrap();
                        let second = seat.exchange(vec![10.0 * i, 1.0]).unwrap();
                        (first.to_vec(), second.to_vec())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (first, second) in results {
            assert_eq!(first, vec![vec![0.0], vec![1.0], vec![2.0]]);
            assert_eq!(
                second,
                vec![vec![0.0, 1.0], vec![10.0, 1.0], vec![20.0, 1.0]]
            );
        }
    }

    #[test]
    fn a_seat_dropped_breaks_the_meetings_the_others_wait_at_or_come_to() {
        let mut all = seats(3);
        let (late, waiting) = (all.pop().unwrap(), all.pop().unwrap());
        let gone = all.pop().unwrap();
        std::thread::scope(|scope| {
            let waiter = scope.spawn(move || waiting.exchange(vec![1.0]));
            // Whether the drop comes before or after the waiter arrives, it must not hang.
            drop(gone);
            assert_eq!(waiter.join().unwrap(), Err(MeetingBroken));
        });
        assert_eq!(late.exchange(vec![2.0]), Err(MeetingBroken));
    }

    #[test]
    fn a_single_seat_meets_itself() {
        let seat = seats(1).pop().unwrap();
        assert_eq!(seat.exchange(vec![4.0]).unwrap().to_vec(), vec![vec![4.0]]);
        assert_eq!(seat.exchange(vec![5.0]).unwrap().to_vec(), vec![vec![5.0]]);
    }
}
