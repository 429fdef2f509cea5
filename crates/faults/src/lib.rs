//! Kill-anywhere testing with real `SIGKILL`s, placed by strace's syscall tampering
//! (`strace -e inject=rename:signal=SIGKILL:when=N`).
//!
//! A dry run under `strace -y` lists the kill points: every `rename`, `unlink` and `write`
//! the traced process makes on a file under the output folder, with its rank among that
//! process's calls of the same syscall (strace counts per syscall and per process). Then
//! [`run_killed`] replays the command, killed just before one of them. The test decides
//! what "nothing lost" means for its outputs: typically, rerun without strace and compare
//! with an uninterrupted run.
//!
//! Only the first process is traced (no `-f`): a command whose children write too is
//! tested by killing each process in its own run.

pub mod resume;
pub mod signals;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// The syscalls a kill point can be placed at.
pub const SYSCALLS: [&str; 3] = ["rename", "unlink", "write"];

/// One place to kill a run: just before the `rank`-th call (1-based) of `syscall` in the
/// traced process, which touches `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillPoint {
    /// `rename`, `unlink` or `write`.
    pub syscall: &'static str,
    /// Rank among the process's calls of that syscall (what strace's `when=` counts).
    pub rank: usize,
    /// The file it touches (the source of a rename).
    pub path: String,
}

/// The strace binary; panics with one sentence saying how to install it.
pub fn strace() -> PathBuf {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the kill-anywhere tests need strace: install it (Debian: apt-get install strace); `cargo xtask test` does when it can"
    );
    PathBuf::from("strace")
}

/// `cmd` as strace would run it: program, arguments, environment and folder.
fn traced(strace_args: &[String], cmd: &Command) -> Command {
    let mut c = Command::new(strace());
    c.args(strace_args)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        c.current_dir(dir);
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// Runs `cmd` to the end under strace and lists its kill points on files under `dir`.
pub fn kill_points(cmd: &Command, dir: &Path) -> Vec<KillPoint> {
    let log = std::env::temp_dir().join(format!(
        "faults-{}-{}.trace",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    let args: Vec<String> = [
        "-qq",
        "-y",
        "-e",
        "trace=rename,unlink,write",
        "-e",
        "signal=none",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([log.display().to_string()])
    .collect();
    let status = traced(&args, cmd).status().expect("running strace");
    assert!(
        status.success(),
        "the dry run under strace failed: {status}"
    );
    let text = std::fs::read_to_string(&log).expect("strace log");
    let _ = std::fs::remove_file(&log);
    parse(&text, &dir.display().to_string())
}

/// Kill points in a strace log: calls of [`SYSCALLS`] whose first path is under `dir`.
pub fn parse(log: &str, dir: &str) -> Vec<KillPoint> {
    let mut ranks = [0usize; 3];
    let mut points = Vec::new();
    for line in log.lines() {
        let Some((i, syscall)) = SYSCALLS
            .iter()
            .enumerate()
            .find(|(_, s)| line.starts_with(&format!("{s}(")))
        else {
            continue;
        };
        ranks[i] += 1;
        // rename("/a", "/b"), unlink("/a"), write(3</a>, ...)
        let rest = &line[syscall.len() + 1..];
        let path = if *syscall == "write" {
            rest.split_once('<')
                .and_then(|(_, r)| r.split_once('>'))
                .map(|(p, _)| p)
        } else {
            rest.strip_prefix('"')
                .and_then(|r| r.split_once('"'))
                .map(|(p, _)| p)
        };
        if let Some(p) = path.filter(|p| p.starts_with(dir)) {
            points.push(KillPoint {
                syscall,
                rank: ranks[i],
                path: p.to_string(),
            });
        }
    }
    points
}

/// The kill points worth a run each: every rename and unlink, and of the writes, the first
/// and the last of each file's run of writes (a file is written in many chunks; killing
/// between two middle chunks tests nothing the first and last do not). `KILL_ANYWHERE=all`
/// in the environment keeps every write.
pub fn essential(points: Vec<KillPoint>) -> Vec<KillPoint> {
    if std::env::var("KILL_ANYWHERE").is_ok_and(|v| v == "all") {
        return points;
    }
    let same_file = |a: Option<&KillPoint>, b: &KillPoint| {
        a.is_some_and(|a| a.syscall == "write" && a.path == b.path)
    };
    (0..points.len())
        .filter(|&i| {
            let p = &points[i];
            p.syscall != "write"
                || !same_file(i.checked_sub(1).map(|j| &points[j]), p)
                || !same_file(points.get(i + 1), p)
        })
        .map(|i| points[i].clone())
        .collect()
}

/// Runs `cmd` under strace, killed with SIGKILL just before `point`; returns its status.
pub fn run_killed(cmd: &Command, point: &KillPoint) -> ExitStatus {
    let args: Vec<String> = vec![
        "-qq".into(),
        "-e".into(),
        format!("trace={}", point.syscall),
        "-e".into(),
        format!(
            "inject={}:signal=SIGKILL:when={}",
            point.syscall, point.rank
        ),
        "-o".into(),
        "/dev/null".into(),
    ];
    traced(&args, cmd).status().expect("running strace")
}

/// For each point in turn: runs `cmd(out)` into a fresh `dir/k<i>` killed at that point,
/// waits for any process it left running there, runs it again to the end, and hands the
/// rerun to `check`, having asserted that the kill landed, the rerun succeeded and no
/// temporary is left. Returns how many points of each syscall were survived, in
/// [`SYSCALLS`]' order.
pub fn kill_and_rerun(
    points: &[KillPoint],
    dir: &Path,
    cmd: impl Fn(&Path) -> Command,
    mut check: impl FnMut(&KillPoint, &Path, &std::process::Output),
) -> [usize; 3] {
    let mut survived = [0; 3];
    for (i, point) in points.iter().enumerate() {
        let out = dir.join(format!("k{i}"));
        let _ = std::fs::remove_dir_all(&out);
        assert!(
            !run_killed(&cmd(&out), point).success(),
            "{point:?}: not killed"
        );
        wait_for_others(
            &out.display().to_string(),
            std::time::Duration::from_secs(120),
        );
        let rerun = cmd(&out).output().expect("running the rerun");
        assert!(
            rerun.status.success(),
            "{point:?}: the rerun failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        check(point, &out, &rerun);
        assert_eq!(
            temporaries(&out),
            Vec::<PathBuf>::new(),
            "{point:?}: temporaries left"
        );
        let _ = std::fs::remove_dir_all(&out);
        survived[SYSCALLS
            .iter()
            .position(|s| *s == point.syscall)
            .unwrap_or(2)] += 1;
    }
    survived
}

/// The names in `dir`, sorted.
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Processes other than this one with `marker` (an output folder, say) in their command
/// line, as `pid: command line`.
pub fn processes_mentioning(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let pid = e.file_name().to_string_lossy().into_owned();
                    if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                    cmd.contains(marker).then_some(format!("{pid}: {cmd}"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until no process but this one has `marker` (an output folder, say) in its command
/// line: the children of a killed parent end before a rerun starts. Panics after `timeout`.
pub fn wait_for_others(marker: &str, timeout: std::time::Duration) {
    let start = std::time::Instant::now();
    loop {
        let busy = processes_mentioning(marker);
        if busy.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < timeout,
            "processes still at work on {marker}: {busy:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Files under `dir` (recursively) whose names mark them as temporaries of `artifacts`
/// (`name.<pid>-<random>.tmp`, `stem.<pid>-<random>.tmp.ext`): what a clean recovery must not
/// leave.
pub fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(temporaries(&p));
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let parts: Vec<&str> = name.split('.').collect();
        let temp = parts
            .windows(2)
            .any(|w| artifacts::is_temp_tag(w[0]) && w[1] == "tmp");
        if temp {
            found.push(p);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_points_are_ranked_per_syscall_and_filtered_by_folder() {
        let log = r#"write(1</dev/pts/0>, "x", 1) = 1
rename("/out/a.1.tmp", "/out/a") = 0
write(3</out/m.2.tmp.safetensors>, "...", 100) = 100
rename("/elsewhere/b.1.tmp", "/elsewhere/b") = 0
unlink("/out/m.resume.json") = 0
rename("/out/c.1.tmp", "/out/c") = 0
"#;
        let p = parse(log, "/out");
        let got: Vec<(&str, usize)> = p.iter().map(|k| (k.syscall, k.rank)).collect();
        assert_eq!(
            got,
            [("rename", 1), ("write", 2), ("unlink", 1), ("rename", 3)]
        );
        assert_eq!(p[1].path, "/out/m.2.tmp.safetensors");
    }

    #[test]
    fn middle_writes_of_one_file_are_left_out() {
        let w = |rank, path: &str| KillPoint {
            syscall: "write",
            rank,
            path: path.into(),
        };
        let points = vec![
            w(1, "a"),
            w(2, "a"),
            w(3, "a"),
            w(4, "a"),
            w(5, "b"),
            w(6, "a"),
        ];
        let kept: Vec<usize> = essential(points).iter().map(|p| p.rank).collect();
        assert_eq!(kept, [1, 4, 5, 6]);
    }

    #[test]
    fn temporaries_are_found_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("faults-temps-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in [
            "a.json",
            "a.json.12.tmp",
            "sub/m.34.tmp.safetensors",
            "notes.tmp",
        ] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let mut t: Vec<String> = temporaries(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        t.sort();
        assert_eq!(t, ["a.json.12.tmp", "m.34.tmp.safetensors"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
