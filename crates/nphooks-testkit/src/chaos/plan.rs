//! The fault plan: for every port call, a seeded draw decides ok / an error of a class
//! the real service returns / a lost answer (the call succeeded, the caller sees an
//! error) / extra latency / a stall past the caller's timeout / a crash (the Lambda
//! killed before or after the call). Latency and stalls are tokio sleeps on a paused
//! runtime, mirrored onto the soak's [`Clock`], so they cost no wall time; on a real-time
//! runtime (the moto soak, [`FaultPlan::scaled`]) they are real sleeps `scale` times
//! shorter, and the driver moves the clock.

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use nphooks_core::clock::Clock;

use super::rng::SplitMix64;

/// Which kind of port a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The idempotency table (delivery ledger, effect claims).
    Store,
    /// SQS.
    Queue,
    /// An integration's destination.
    Sink,
    /// The rate limiter's slot items (DynamoDB).
    Limiter,
    /// The app secret a function reads at cold start (Secrets Manager).
    Secret,
}

/// What one call suffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    /// An error the real service returns; the call did not happen.
    Error,
    /// The call happened, its answer was lost: the caller sees an error.
    Ambiguous,
    /// The call happens after this extra time.
    Latency(Duration),
    /// No answer before the caller's timeout; `true`: the call happened anyway.
    Stall(bool),
    /// The Lambda dies before the call.
    CrashBefore,
    /// The Lambda dies after the call succeeded.
    CrashAfter,
}

/// The error classes of the AWS services, as the adapters map them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Throttled,
    ServerError,
    Timeout,
    Reset,
    /// DynamoDB's `ValidationException` (the store only).
    Validation,
}

impl ErrorKind {
    pub fn message(self) -> &'static str {
        match self {
            ErrorKind::Throttled => "ThrottlingException: rate exceeded (injected)",
            ErrorKind::ServerError => "InternalServerError (500, injected)",
            ErrorKind::Timeout => "operation timed out (injected)",
            ErrorKind::Reset => "connection reset by peer (injected)",
            ErrorKind::Validation => "ValidationException (injected)",
        }
    }
}

/// Counted fault classes, in the summary's order; the last five count by port (the
/// limiter's and the secret read's faults are also in their class).
pub const CLASSES: [&str; 14] = [
    "error",
    "rejected",
    "lost_answer",
    "latency",
    "stall",
    "crash",
    "sink_transient",
    "sink_permanent",
    "sink_rate_limited",
    "mail_4xx",
    "mail_5xx",
    "mail_timeout",
    "rate_limiter",
    "secret_cold_start",
];

#[derive(Debug)]
struct Draws {
    rng: SplitMix64,
    counts: [u64; CLASSES.len()],
}

/// The seeded plan every fault-injecting wrapper consults.
#[derive(Debug)]
pub struct FaultPlan {
    rate: f64,
    crashes: bool,
    draws: Mutex<Draws>,
    crashed: AtomicBool,
    clock: Clock,
    /// `Some(k)`: real time, k× slower than the clock (the driver moves the clock).
    scale: Option<u32>,
    /// The clock's and tokio's time when the current invocation started.
    origin: Mutex<(SystemTime, tokio::time::Instant)>,
    /// `Some`: at most this many calls under the plan run at once ([`FaultPlan::gated`]).
    gate: Option<tokio::sync::Semaphore>,
}

/// Past every caller's timeout: the receiver's 3.5 s budget, the SDK's 5 s operation.
pub const STALL: Duration = Duration::from_secs(6);

impl FaultPlan {
    /// Faults at `rate` per call; crashes among them when `crashes`.
    pub fn new(seed: u64, rate: f64, crashes: bool, clock: Clock) -> Self {
        let origin = (clock.now(), tokio::time::Instant::now());
        FaultPlan {
            rate,
            crashes,
            draws: Mutex::new(Draws {
                rng: SplitMix64::new(seed),
                counts: [0; CLASSES.len()],
            }),
            crashed: AtomicBool::new(false),
            clock,
            scale: None,
            origin: Mutex::new(origin),
            gate: None,
        }
    }

    /// A plan on a real-time runtime whose clock runs `scale` times faster than wall
    /// time: its sleeps are `scale` times shorter, and it draws no crash (the moto
    /// driver drops handlers itself).
    pub fn scaled(seed: u64, rate: f64, scale: u32, clock: Clock) -> Self {
        FaultPlan {
            scale: Some(scale.max(1)),
            ..Self::new(seed, rate, false, clock)
        }
    }

    /// The same plan, letting at most `permits` calls through at once: each further call
    /// waits its turn before it starts (and before its own timeouts start).
    pub fn gated(self, permits: usize) -> Self {
        FaultPlan {
            gate: Some(tokio::sync::Semaphore::new(permits)),
            ..self
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Draws the fault of one call to `port`.
    pub fn draw(&self, port: Port) -> Fault {
        let mut draws = super::lock(&self.draws);
        if !draws.rng.chance(self.rate) {
            return Fault::None;
        }
        let roll = draws.rng.below(100);
        let (fault, class) = match roll {
            0..35 => (Fault::Error, 0),
            35..55 => (Fault::Ambiguous, 2),
            55..75 => {
                let ms = 50 + draws.rng.below(2000);
                (Fault::Latency(Duration::from_millis(ms)), 3)
            }
            75..85 => (Fault::Stall(draws.rng.chance(0.5)), 4),
            _ if !self.crashes => (Fault::Error, 0),
            85..92 => (Fault::CrashBefore, 5),
            _ => (Fault::CrashAfter, 5),
        };
        // Sink errors are counted by the sink, by class.
        if !(port == Port::Sink && fault == Fault::Error) {
            draws.counts[class] += 1;
        }
        let by_port = match port {
            Port::Limiter => Some(CLASSES.len() - 2),
            Port::Secret => Some(CLASSES.len() - 1),
            _ => None,
        };
        if let Some(i) = by_port {
            draws.counts[i] += 1;
        }
        fault
    }

    /// An error class for `port`; the store also returns `ValidationException`.
    pub fn error_kind(&self, port: Port) -> ErrorKind {
        let mut draws = super::lock(&self.draws);
        let kinds = match port {
            Port::Store | Port::Limiter => 5,
            _ => 4,
        };
        match draws.rng.below(kinds) {
            0 => ErrorKind::Throttled,
            1 => ErrorKind::ServerError,
            2 => ErrorKind::Timeout,
            3 => ErrorKind::Reset,
            _ => {
                draws.counts[0] -= 1;
                draws.counts[1] += 1;
                ErrorKind::Validation
            }
        }
    }

    /// A number in `0..n` from the plan's stream.
    pub fn below(&self, n: u64) -> u64 {
        super::lock(&self.draws).rng.below(n)
    }

    /// Counts one fault of class `CLASSES[class]` drawn elsewhere.
    pub fn count(&self, class: &str) {
        if let Some(i) = CLASSES.iter().position(|c| *c == class) {
            super::lock(&self.draws).counts[i] += 1;
        }
    }

    /// Faults injected so far, by class.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let draws = super::lock(&self.draws);
        CLASSES.iter().copied().zip(draws.counts).collect()
    }

    /// A new invocation (a Lambda's or a request's) starts now: no crash yet.
    pub fn begin_invocation(&self) {
        self.crashed.store(false, Ordering::SeqCst);
        *super::lock(&self.origin) = (self.clock.now(), tokio::time::Instant::now());
    }

    /// Whether the current invocation has crashed.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }

    /// Moves the clock to where the invocation's tokio time has got to (paused time only).
    pub fn sync(&self) {
        if self.scale.is_some() {
            return;
        }
        let (at, started) = *super::lock(&self.origin);
        self.clock.advance_to(at + started.elapsed());
    }

    /// Waits `by` on the paused tokio clock, then moves the soak's clock with it; in
    /// real time, waits `by / scale`.
    pub async fn sleep(&self, by: Duration) {
        tokio::time::sleep(by / self.scale.unwrap_or(1)).await;
        self.sync();
    }

    /// Kills the invocation: never returns; [`unless_crashed`] drops the whole handler.
    pub async fn crash<T>(&self) -> T {
        self.crashed.store(true, Ordering::SeqCst);
        std::future::pending().await
    }
}

/// Runs `handler` as a Lambda the plan may kill: `None` when a port crashed it, the
/// handler future dropped at that await point with everything it held.
pub async fn unless_crashed<F: Future>(plan: &FaultPlan, handler: F) -> Option<F::Output> {
    let mut handler = std::pin::pin!(handler);
    std::future::poll_fn(|cx| match handler.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending if plan.crashed() => std::task::Poll::Ready(None),
        std::task::Poll::Pending => std::task::Poll::Pending,
    })
    .await
}

/// One port call under the plan: `call` is the inner adapter's call, `error` builds the
/// port's error of a class.
pub async fn around<T, E>(
    plan: &FaultPlan,
    port: Port,
    call: impl Future<Output = Result<T, E>>,
    error: impl Fn(ErrorKind) -> E,
) -> Result<T, E> {
    // (the gate is never closed; a dropped call gives its permit back)
    let _permit = match &plan.gate {
        Some(gate) => gate.acquire().await.ok(),
        None => None,
    };
    match plan.draw(port) {
        Fault::None => call.await,
        Fault::Error => Err(error(plan.error_kind(port))),
        Fault::Ambiguous => {
            let _ = call.await;
            Err(error(ErrorKind::Reset))
        }
        Fault::Latency(by) => {
            plan.sleep(by).await;
            call.await
        }
        Fault::Stall(happened) => {
            if happened {
                let _ = call.await;
            }
            plan.sleep(STALL).await;
            Err(error(ErrorKind::Timeout))
        }
        Fault::CrashBefore => plan.crash().await,
        Fault::CrashAfter => {
            let _ = call.await;
            plan.crash().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[tokio::test(start_paused = true)]
    async fn given_a_gated_plan_then_at_most_its_permits_of_calls_run_at_once() {
        // GIVEN a plan at rate 0 gated to 3 calls, and a call that counts who is inside
        let clock = Clock::manual(SystemTime::UNIX_EPOCH);
        let plan = FaultPlan::scaled(7, 0.0, 100, clock).gated(3);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let call = || async {
            let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            inside.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        };
        // WHEN twenty calls go through it at once
        let calls = (0..20).map(|_| around(&plan, Port::Store, call(), |_| ()));
        let done = futures::future::join_all(calls).await;
        // THEN every call ran, never more than three at a time
        assert!(done.iter().all(Result::is_ok));
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
