//! Hard eviction thresholds, as far as the node's status needs them: they decide the
//! MemoryPressure, DiskPressure and PIDPressure conditions, and `memory.available` and
//! `nodefs.available` are held back from allocatable. Upstream's eviction manager keeps a
//! condition up for `pressure_transition_period` after its threshold was last met, so a node
//! near a threshold does not flap; so does [`PressureTracker`].

use std::time::{Duration, Instant};

use crate::machine::{Machine, Usage};

/// A threshold's value: an absolute amount, or a share of the capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Quantity(u64),
    /// A fraction in `0.0..=1.0`, a `float32` upstream (which shows in the rounding).
    Percentage(f32),
}

impl Threshold {
    /// The amount against a capacity, as upstream's `GetThresholdQuantity`.
    pub fn amount(self, capacity: u64) -> u64 {
        match self {
            Self::Quantity(amount) => amount,
            Self::Percentage(share) => (capacity as f64 * f64::from(share)) as u64,
        }
    }
}

/// `--eviction-hard`'s signals that bear on the node's status. Signals upstream watches on the
/// runtime's image file system (`imagefs.*`) join when the runtime reports one over CRI.
#[derive(Debug, Clone, PartialEq)]
pub struct EvictionThresholds {
    pub memory_available: Option<Threshold>,
    pub nodefs_available: Option<Threshold>,
    pub nodefs_inodes_free: Option<Threshold>,
    /// Upstream sets no default for `pid.available`, so PIDPressure stays False unless one is
    /// configured.
    pub pid_available: Option<Threshold>,
    /// `--eviction-pressure-transition-period`.
    pub pressure_transition_period: Duration,
}

impl Default for EvictionThresholds {
    /// Upstream's Linux defaults: `memory.available<100Mi`, `nodefs.available<10%`,
    /// `nodefs.inodesFree<5%`, a five-minute transition period.
    fn default() -> Self {
        Self {
            memory_available: Some(Threshold::Quantity(100 << 20)),
            nodefs_available: Some(Threshold::Percentage(0.1)),
            nodefs_inodes_free: Some(Threshold::Percentage(0.05)),
            pid_available: None,
            pressure_transition_period: Duration::from_secs(5 * 60),
        }
    }
}

impl EvictionThresholds {
    /// What allocatable holds back (upstream's `hardEvictionReservation`): (memory bytes,
    /// ephemeral-storage bytes), given the capacities.
    pub fn reservation(&self, memory_capacity: u64, storage_capacity: u64) -> (u64, u64) {
        (
            self.memory_available
                .map_or(0, |t| t.amount(memory_capacity)),
            self.nodefs_available
                .map_or(0, |t| t.amount(storage_capacity)),
        )
    }

    /// Which pressures the figures show right now.
    fn met(&self, machine: &Machine, usage: &Usage) -> Pressure {
        let below = |threshold: Option<Threshold>, available: u64, capacity: u64| {
            threshold.is_some_and(|t| available < t.amount(capacity))
        };
        Pressure {
            memory: below(
                self.memory_available,
                usage.memory_available,
                machine.memory_bytes,
            ),
            disk: below(self.nodefs_available, usage.fs.available, usage.fs.capacity)
                || below(
                    self.nodefs_inodes_free,
                    usage.fs.inodes_free,
                    usage.fs.inodes,
                ),
            pid: below(self.pid_available, usage.pids_available, usage.pid_max),
        }
    }
}

/// The node's pressures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

/// When each pressure was last seen, to hold it for the transition period.
#[derive(Debug, Clone, Default)]
pub struct PressureTracker {
    memory: Option<Instant>,
    disk: Option<Instant>,
    pid: Option<Instant>,
}

impl PressureTracker {
    /// Records what the figures show at `now` and returns the pressures to report.
    pub fn observe(
        &mut self,
        thresholds: &EvictionThresholds,
        machine: &Machine,
        usage: &Usage,
        now: Instant,
    ) -> Pressure {
        let met = thresholds.met(machine, usage);
        let period = thresholds.pressure_transition_period;
        let held = |last: &mut Option<Instant>, met: bool| {
            if met {
                *last = Some(now);
            }
            last.is_some_and(|at| now.saturating_duration_since(at) < period)
        };
        Pressure {
            memory: held(&mut self.memory, met.memory),
            disk: held(&mut self.disk, met.disk),
            pid: held(&mut self.pid, met.pid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::FsStats;

    const GIB: u64 = 1 << 30;

    fn machine() -> Machine {
        Machine {
            memory_bytes: 16 * GIB,
            ..Machine::default()
        }
    }

    fn usage(memory_available: u64, fs_available: u64, inodes_free: u64) -> Usage {
        Usage {
            memory_available,
            fs: FsStats {
                capacity: 100 * GIB,
                available: fs_available,
                inodes: 1000,
                inodes_free,
            },
            pids_available: 30_000,
            pid_max: 32_768,
        }
    }

    #[test]
    fn reservation_is_upstreams_hard_eviction_reservation() {
        let thresholds = EvictionThresholds::default();
        let storage = 105_088_212_992;
        let (memory, ephemeral) = thresholds.reservation(16 * GIB, storage);
        assert_eq!(memory, 100 << 20);
        // 10% as a float32, as upstream computes it: not exactly a tenth.
        assert_eq!(ephemeral, 10_508_821_455);
        assert_eq!(
            EvictionThresholds {
                memory_available: None,
                nodefs_available: None,
                ..EvictionThresholds::default()
            }
            .reservation(16 * GIB, storage),
            (0, 0)
        );
    }

    #[test]
    fn each_signal_raises_its_pressure() {
        let thresholds = EvictionThresholds::default();
        let machine = machine();
        let cases = [
            (usage(8 * GIB, 50 * GIB, 500), Pressure::default()),
            (
                usage(99 << 20, 50 * GIB, 500),
                Pressure {
                    memory: true,
                    ..Pressure::default()
                },
            ),
            (usage(100 << 20, 50 * GIB, 500), Pressure::default()),
            (
                usage(8 * GIB, 9 * GIB, 500),
                Pressure {
                    disk: true,
                    ..Pressure::default()
                },
            ),
            (
                usage(8 * GIB, 50 * GIB, 49),
                Pressure {
                    disk: true,
                    ..Pressure::default()
                },
            ),
        ];
        for (usage, want) in cases {
            let got =
                PressureTracker::default().observe(&thresholds, &machine, &usage, Instant::now());
            assert_eq!(got, want, "{usage:?}");
        }
        // No pid threshold by default; a configured one raises PIDPressure.
        let mut few_pids = usage(8 * GIB, 50 * GIB, 500);
        few_pids.pids_available = 100;
        let now = Instant::now();
        assert!(
            !PressureTracker::default()
                .observe(&thresholds, &machine, &few_pids, now)
                .pid
        );
        let with_pid = EvictionThresholds {
            pid_available: Some(Threshold::Percentage(0.1)),
            ..EvictionThresholds::default()
        };
        assert!(
            PressureTracker::default()
                .observe(&with_pid, &machine, &few_pids, now)
                .pid
        );
    }

    #[test]
    fn pressure_is_held_for_the_transition_period() {
        let thresholds = EvictionThresholds::default();
        let machine = machine();
        let mut tracker = PressureTracker::default();
        let start = Instant::now();
        let low = usage(10 << 20, 50 * GIB, 500);
        let fine = usage(8 * GIB, 50 * GIB, 500);
        assert!(tracker.observe(&thresholds, &machine, &low, start).memory);
        let minute = Duration::from_secs(60);
        assert!(
            tracker
                .observe(&thresholds, &machine, &fine, start + minute)
                .memory
        );
        assert!(
            tracker
                .observe(
                    &thresholds,
                    &machine,
                    &fine,
                    start + 4 * minute + Duration::from_secs(59)
                )
                .memory
        );
        assert!(
            !tracker
                .observe(&thresholds, &machine, &fine, start + 5 * minute)
                .memory
        );
        // Seen again: held again from then.
        assert!(
            tracker
                .observe(&thresholds, &machine, &low, start + 6 * minute)
                .memory
        );
        assert!(
            tracker
                .observe(&thresholds, &machine, &fine, start + 10 * minute)
                .memory
        );
        assert!(
            !tracker
                .observe(&thresholds, &machine, &fine, start + 11 * minute)
                .memory
        );
    }
}
