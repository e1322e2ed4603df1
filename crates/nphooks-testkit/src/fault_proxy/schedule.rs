//! The proxy's seeded schedule: faults at random, the same for the same seed.

use super::Fault;

/// Faults at random: each call not matched by a rule fails with probability `rate`.
#[derive(Debug)]
pub(super) struct Schedule {
    state: u64,
    rate: f64,
    faults: Vec<Fault>,
}

impl Schedule {
    pub(super) fn new(seed: u64, rate: f64, faults: &[Fault]) -> Self {
        Schedule {
            state: seed,
            rate,
            faults: faults.to_vec(),
        }
    }

    /// splitmix64: the same seed gives the same sequence.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn pick(&mut self) -> Option<Fault> {
        #[allow(clippy::cast_precision_loss)]
        let roll = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        if self.faults.is_empty() || roll >= self.rate {
            return None;
        }
        let index = usize::try_from(self.next() % self.faults.len() as u64).unwrap_or(0);
        Some(self.faults[index])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64, rate: f64) -> Vec<Option<Fault>> {
        let mut schedule = Schedule::new(seed, rate, &[Fault::Throttling, Fault::LostAnswer]);
        (0..1000).map(|_| schedule.pick()).collect()
    }

    #[test]
    fn given_one_seed_twice_then_the_same_faults_in_the_same_order() {
        assert_eq!(draws(7, 0.3), draws(7, 0.3));
        assert_ne!(draws(7, 0.3), draws(8, 0.3));
    }

    #[test]
    fn given_a_rate_then_about_that_share_of_calls_fail_with_every_fault_drawn() {
        let faults: Vec<Fault> = draws(42, 0.1).into_iter().flatten().collect();
        assert!((60..=140).contains(&faults.len()), "{}", faults.len());
        assert!(faults.contains(&Fault::Throttling) && faults.contains(&Fault::LostAnswer));
        assert!(draws(42, 0.0).iter().all(Option::is_none));
    }
}
