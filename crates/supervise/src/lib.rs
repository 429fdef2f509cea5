//! Child processes that never outlive their parent.
//!
//! `kill`, systemd and cluster schedulers stop a job by sending SIGTERM to one process: the
//! parent. Left alone, its children (trainings) would go on under PID 1, still holding the
//! locks a rerun needs. So a parent that waits on children here
//! * records SIGTERM, SIGINT and SIGHUP while a [`Supervision`] is open, passes the signal on
//!   to every child, waits for them to end, and returns [`Interrupted`]; with no supervision
//!   open, these signals keep their default action (the process ends at once);
//! * starts each child with `PR_SET_PDEATHSIG = SIGTERM` ([`spawn`]), so that a parent killed
//!   outright (SIGKILL, a crash) still takes its children with it.
//!
//! A training stopped this way keeps its last committed epoch, and the same command
//! continues it.

use std::io;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use libc::c_int;

/// The signals a parent passes on to its children.
pub const SIGNALS: [c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// How often a waiting parent looks at its children and at the signals.
const POLL: Duration = Duration::from_millis(100);

struct Handlers {
    /// The last signal received (0: none).
    received: Arc<AtomicUsize>,
    /// True while no supervision is open: the handler then acts as the default one.
    unsupervised: Arc<AtomicBool>,
    /// Open supervisions (nested calls, threads).
    open: Mutex<usize>,
}

fn handlers() -> &'static Handlers {
    static HANDLERS: OnceLock<Handlers> = OnceLock::new();
    HANDLERS.get_or_init(|| {
        let h = Handlers {
            received: Arc::new(AtomicUsize::new(0)),
            unsupervised: Arc::new(AtomicBool::new(true)),
            open: Mutex::new(0),
        };
        for sig in SIGNALS {
            // Recorded first, then (outside supervision) the default action: the process
            // ends as it would have without a handler.
            signal_hook::flag::register_usize(sig, Arc::clone(&h.received), sig as usize)
                .expect("SIGTERM, SIGINT and SIGHUP take handlers");
            signal_hook::flag::register_conditional_default(sig, Arc::clone(&h.unsupervised))
                .expect("SIGTERM, SIGINT and SIGHUP take handlers");
        }
        h
    })
}

/// While alive, SIGTERM, SIGINT and SIGHUP are recorded instead of ending the process, for
/// the waiting functions of this crate to pass on.
pub struct Supervision(());

impl Supervision {
    /// Opens a supervision (they nest).
    pub fn begin() -> Self {
        let h = handlers();
        let mut open = h.open.lock().unwrap_or_else(|e| e.into_inner());
        *open += 1;
        h.unsupervised.store(false, Ordering::SeqCst);
        Supervision(())
    }

    /// The signal received since the process started, if any.
    pub fn received(&self) -> Option<c_int> {
        match handlers().received.load(Ordering::SeqCst) {
            0 => None,
            sig => Some(sig as c_int),
        }
    }
}

impl Drop for Supervision {
    fn drop(&mut self) {
        let h = handlers();
        let mut open = h.open.lock().unwrap_or_else(|e| e.into_inner());
        *open -= 1;
        if *open == 0 {
            h.unsupervised.store(true, Ordering::SeqCst);
        }
    }
}

/// The process was asked to stop while it waited on children: they were stopped too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    /// The signal (SIGTERM, SIGINT or SIGHUP).
    pub signal: c_int,
}

impl Interrupted {
    /// The shell's code for a process ended by the signal: 128 + its number.
    pub fn exit_code(self) -> u8 {
        (128 + self.signal).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by {}: the child processes were stopped and waited for (a training keeps its last finished epoch); run the same command again to continue",
            signal_name(self.signal)
        )
    }
}

impl std::error::Error for Interrupted {}

/// `SIGTERM`, `SIGINT`, `SIGHUP`, or the number.
pub fn signal_name(signal: c_int) -> String {
    match signal {
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

/// Makes `cmd`'s process receive SIGTERM when this thread's process dies, however it dies.
pub fn dies_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe, as a pre_exec hook must be.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before the prctl: the signal would never come.
            if libc::getppid() != parent {
                return Err(io::Error::other("the parent process ended"));
            }
            Ok(())
        })
    }
}

/// Starts `cmd` as a child that dies with this process ([`dies_with_parent`]).
pub fn spawn(cmd: &mut Command) -> io::Result<Child> {
    dies_with_parent(cmd).spawn()
}

/// Sends `signal` to every child still running and waits for each to end.
pub fn stop(children: &mut [&mut Child], signal: c_int) {
    for child in children.iter_mut() {
        if matches!(child.try_wait(), Ok(None)) {
            // SAFETY: kill has no memory effects; the pid is our unreaped child's.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// Waits for `child`; on a signal, passes it on, waits for the child, and returns
/// [`Interrupted`].
pub fn wait(supervision: &Supervision, child: &mut Child) -> Result<ExitStatus> {
    loop {
        if let Some(signal) = supervision.received() {
            stop(&mut [child], signal);
            return Err(Interrupted { signal }.into());
        }
        if let Some(status) = child.try_wait().context("waiting for a child process")? {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
}

/// Runs `cmd` to its end as [`Command::status`] does, under supervision: a signal to this
/// process stops the child too.
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    let supervision = Supervision::begin();
    if let Some(signal) = supervision.received() {
        return Err(Interrupted { signal }.into());
    }
    let mut child = spawn(cmd).with_context(|| format!("starting {:?}", cmd.get_program()))?;
    wait(&supervision, &mut child)
}

/// How long to wait between looks at children and signals (for loops of their own).
pub fn poll_interval() -> Duration {
    POLL
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn a_signal_while_supervising_is_passed_on_and_waited_for() {
        let supervision = Supervision::begin();
        let mut child = spawn(Command::new("sleep").arg("30")).unwrap();
        // Recorded, not acted on: the supervision is open.
        unsafe { libc::raise(libc::SIGHUP) };
        let err = wait(&supervision, &mut child).unwrap_err();
        let interrupted = *err.downcast_ref::<Interrupted>().unwrap();
        assert_eq!(interrupted.signal, libc::SIGHUP);
        assert_eq!(interrupted.exit_code(), 129);
        assert!(err.to_string().starts_with("stopped by SIGHUP"), "{err}");
        let status = child.try_wait().unwrap().expect("the child was waited for");
        assert_eq!(status.signal(), Some(libc::SIGHUP));
    }

    #[test]
    fn a_child_dies_with_its_parent() {
        // PR_SET_PDEATHSIG fires when the thread that started the child ends: a thread that
        // starts one and returns stands for a parent killed outright.
        let mut child = std::thread::spawn(|| spawn(Command::new("sleep").arg("60")).unwrap())
            .join()
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    }
}
