//! Whether a host can act on its own, asked of the operating system: the probe that lets a wait
//! for quiet end early (SPEC.md §11.5, "Pacing").
//!
//! A host process tree is *parked until T* when every thread of every process in it sleeps in a
//! system call that nothing inside the tree can end before T. A read of a pipe or socket,
//! `accept`, `wait4` on a child, a signal wait, or `epoll_wait`, `poll`, `select` or a futex wait
//! with no timeout waits for something from outside: for ever, as far as the tree goes. An
//! `epoll_wait` or `poll` with a timeout of N ms ends at N ms after the thread last ran, and the
//! probe bounds that from below by its own looks: a thread whose CPU time differs from what an
//! earlier look read has run since that look began. A thread running, runnable, in uninterruptible
//! sleep, stopped, a zombie, asleep on a timer (`nanosleep`), in a wait whose timeout is behind a
//! pointer, or in any other call, is not parked; nor is one with a timeout that was never seen to
//! begin.
//!
//! Two looks that both find the tree parked and in which no thread has run (the CPU time of each,
//! to the nanosecond, unchanged) show a tree that did nothing between them and that nothing but a
//! message from the runner, or a signal, wakes before T; and a look counts only while no other
//! thread of the runner's own process is running or runnable (one may be about to send the host
//! something). If T is past the moment the quiet would
//! end, the stage concludes what waiting out the quiet would have concluded, sooner
//! ([`crate::stage::Stage::settle_until`]).
//!
//! What the kernel does not show: a blocking socket read with a receive timeout (`SO_RCVTIMEO`)
//! looks like a read with none. A host that acts when such a read times out, within the quiet, is
//! misread as done; `coherence conform --quiet-only` turns the probe off.
//!
//! Linux on x86-64 only (system call numbers are per architecture); elsewhere, or where `/proc`
//! does not give a thread's children, system call and CPU time, [`Probe::new`] gives none and the
//! stage waits out every quiet.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// A host process tree, probed through `/proc`, with what earlier looks saw of each thread.
#[derive(Debug)]
pub struct Probe {
    root: u32,
    threads: HashMap<u32, Seen>,
}

/// What the looks saw of one thread.
#[derive(Clone, Copy, Debug)]
struct Seen {
    /// Its CPU time (ns) at the last look.
    cpu: u64,
    /// When the last look that read it began.
    at: Instant,
    /// When the look began that last read an older CPU time: the thread has run since.
    ran_after: Option<Instant>,
}

/// A parked tree: every thread, by id, with the CPU time it had used (ns), in order, and the
/// earliest moment any of them can wake on its own (`None`: never).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parked {
    threads: Vec<(u32, u64)>,
    /// The earliest moment a thread's timeout can end.
    pub until: Option<Instant>,
}

impl Parked {
    /// Whether nothing ran between this look and `other`.
    pub fn same(&self, other: &Parked) -> bool {
        self.threads == other.threads
    }
}

/// How a thread waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    /// Until something outside wakes it.
    Outside,
    /// At most this long after it last ran.
    Timeout(Duration),
}

/// The most processes and threads a probe looks at: past it the tree is taken as busy.
const THREADS_MAX: usize = 4096;

impl Probe {
    /// A probe of the tree rooted at process `root`, if this system can give one.
    pub fn new(root: u32) -> Option<Probe> {
        if !cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return None;
        }
        let task = format!("/proc/{root}/task/{root}");
        let readable = ["children", "syscall", "schedstat"].iter().all(|f| Path::new(&task).join(f).exists());
        readable.then(|| Probe { root, threads: HashMap::new() })
    }

    /// Looks at the tree: its threads and their CPU times if every one is parked now; `None` if
    /// any is not, or if a process ended while it was read.
    pub fn look(&mut self) -> Option<Parked> {
        let at = Instant::now();
        let mut threads = Vec::new();
        let mut parked = true;
        let mut until: Option<Instant> = None;
        let mut processes = vec![self.root];
        while let Some(pid) = processes.pop() {
            for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
                let tid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
                let dir = format!("/proc/{pid}/task/{tid}");
                let stat = read(&dir, "stat")?;
                let syscall = read(&dir, "syscall")?;
                let cpu: u64 = read(&dir, "schedstat")?.split_whitespace().next()?.parse().ok()?;
                // Every thread's CPU time is kept, parked or not, to know which have run since.
                let seen = self.threads.entry(tid).or_insert(Seen { cpu, at, ran_after: None });
                if seen.cpu != cpu {
                    seen.ran_after = Some(seen.at);
                }
                (seen.cpu, seen.at) = (cpu, at);
                match (state_of(&stat)?, waits(&syscall)) {
                    ("S", Some(Wait::Outside)) => {}
                    ("S", Some(Wait::Timeout(timeout))) => match seen.ran_after {
                        Some(ran) => until = Some(until.map_or(ran + timeout, |u| u.min(ran + timeout))),
                        None => parked = false,
                    },
                    _ => parked = false,
                }
                threads.push((tid, cpu));
                for child in read(&dir, "children")?.split_whitespace() {
                    processes.push(child.parse().ok()?);
                }
                if threads.len() + processes.len() > THREADS_MAX {
                    return None;
                }
            }
        }
        let alive: std::collections::HashSet<u32> = threads.iter().map(|&(tid, _)| tid).collect();
        self.threads.retain(|tid, _| alive.contains(tid));
        threads.sort_unstable();
        (parked && runner_waits()).then_some(Parked { threads, until })
    }
}

/// Whether no other thread of this process is running or runnable: one that is may be about to
/// send the host something (a reply, a notification, a close), so the host's sleep proves nothing
/// yet. Under load a runnable thread can wait for a core longer than the probe's first look.
fn runner_waits() -> bool {
    let Ok(me) = std::fs::read_link("/proc/thread-self") else { return false };
    let Ok(threads) = std::fs::read_dir("/proc/self/task") else { return false };
    threads.flatten().all(|entry| {
        let dir = entry.path();
        if dir.file_name() == me.file_name() {
            return true;
        }
        // A thread that ended while it was read waits on nothing.
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else { return true };
        state_of(&stat) != Some("R")
    })
}

/// A thread's state in its `/proc/…/stat` line: after the command name, which may hold spaces and
/// parentheses.
fn state_of(stat: &str) -> Option<&str> {
    stat.get(stat.rfind(')')? + 1..)?.split_whitespace().next()
}

fn read(dir: &str, file: &str) -> Option<String> {
    std::fs::read_to_string(format!("{dir}/{file}")).ok()
}

/// How a thread whose `/proc/…/syscall` reads `line` waits, if it waits for something that can
/// only come from outside or for a timeout that can be read.
fn waits(line: &str) -> Option<Wait> {
    let mut fields = line.split_whitespace();
    let number: i64 = fields.next()?.parse().ok()?;
    let args: Vec<u64> =
        fields.take(6).filter_map(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok()).collect();
    let [_, a1, a2, a3, a4, _] = args[..] else { return None };
    // An `int` timeout in milliseconds, negative for none.
    let ms = |a: u64| match a as u32 as i32 {
        t if t < 0 => Some(Wait::Outside),
        t => Some(Wait::Timeout(Duration::from_millis(t as u64))),
    };
    let outside_if = |no_timeout: bool| no_timeout.then_some(Wait::Outside);
    match number {
        // read, readv, pread64, preadv, recvfrom, recvmsg; accept, accept4; pause,
        // rt_sigsuspend; wait4, waitid.
        0 | 19 | 17 | 295 | 45 | 47 | 43 | 288 | 34 | 130 | 61 | 247 => Some(Wait::Outside),
        // poll, epoll_wait, epoll_pwait: a timeout in ms.
        7 => ms(a2),
        232 | 281 => ms(a3),
        // ppoll, select, pselect6, epoll_pwait2, recvmmsg, rt_sigtimedwait: a pointer to the
        // timeout, null for none.
        271 | 128 => outside_if(a2 == 0),
        441 => outside_if(a3 == 0),
        23 | 270 | 299 => outside_if(a4 == 0),
        // futex: FUTEX_WAIT or FUTEX_WAIT_BITSET with no timeout.
        202 => outside_if(matches!(a1 & 0x7f, 0 | 9) && a3 == 0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_waits_on_outside_or_on_a_timeout_in_ms_are_parked() {
        let outside = Some(Wait::Outside);
        // What an idle tokio host's threads read, as a dump of one showed.
        assert_eq!(waits("232 0x3 0x561783864d80 0x400 0xffffffff 0x0 0x0 0x7ffdb855d640 0x7f0577ca7f36"), outside);
        assert_eq!(waits("0 0x0 0x7f0570000cd0 0x2000 0x20022 0x0 0x1 0x7f0577b9a930 0x7f0577c972ec"), outside);
        assert_eq!(waits("202 0x7fbcb074b990 0x189 0xaeb 0x0 0x0 0xffffffff 0x7fffb19e5160 0x7fbcb07d3f16"), outside);
        assert_eq!(
            waits("61 0xffffffff 0x7ffdb1c05fcc 0x0 0x0 0x3 0x74736f682d6665 0x7ffdb1c05fb8 0x7f97772f0bd3"),
            outside
        );
        // Timeouts in ms: an epoll wait of 8,147 ms, a poll of 10 ms.
        let timeout = |ms| Some(Wait::Timeout(Duration::from_millis(ms)));
        assert_eq!(
            waits("232 0x3 0x5650615f0d80 0x400 0x1fd3 0x0 0x8c30ac0 0x7fffec7811a0 0x7fddcc3b9f36"),
            timeout(8147)
        );
        assert_eq!(waits("7 0x7ffd 0x1 0xa 0x0 0x0 0x0 0x7ffd 0x7f"), timeout(10));
        // A timeout behind a pointer, a sleep.
        assert_eq!(
            waits("202 0x55f08c8bd798 0x89 0xffffffff 0x7fbcb0748110 0x0 0x7fbcffffffff 0x7fbcb07480f8 0x7f"),
            None
        );
        assert_eq!(waits("230 0x1 0x0 0x7fbcb0348ad8 0x7fbcb0348ad8 0x0 0x18 0x7fbcb0348aa0 0x7fbcb081d545"), None);
        // Running, or asleep outside a system call, or in one not known to wait.
        assert_eq!(waits("running"), None);
        assert_eq!(waits("-1 0x7ffd 0x7f"), None);
        assert_eq!(waits("1 0x1 0x7ffd 0x10 0x0 0x0 0x0 0x7ffd 0x7f"), None);
        assert_eq!(waits(""), None);
    }

    #[test]
    fn a_sleeping_tree_is_parked_only_while_it_waits_on_nothing_but_input() {
        if Probe::new(std::process::id()).is_none() {
            eprintln!("skipped: this system gives no process probe");
            return;
        }
        let spawn = |script: &str| {
            std::process::Command::new("sh")
                .args(["-c", script])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .expect("sh")
        };
        let parked_within = |probe: &mut Probe, within: Duration| {
            let until = Instant::now() + within;
            while Instant::now() < until {
                if probe.look().is_some() {
                    return true;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            false
        };
        // `sh` waiting on `cat`, which reads a pipe: parked, and twice the same.
        let mut reading = spawn("cat; true");
        let mut probe = Probe::new(reading.id()).expect("a probe of a child");
        assert!(parked_within(&mut probe, Duration::from_secs(5)), "a tree reading stdin is parked");
        // Two looks 20 ms apart (a look fails while another test's thread of this process runs).
        let (first, second) = (0..250)
            .find_map(|_| {
                let first = probe.look();
                std::thread::sleep(Duration::from_millis(20));
                Some((first?, probe.look()?))
            })
            .expect("two parked looks within 5 s");
        assert!(second.same(&first), "nothing in it ran");
        assert_eq!(second.until, None, "it waits on input alone");
        drop(reading.stdin.take());
        let _ = reading.wait();
        // `sh` waiting on `sleep`: a timer is due, never parked.
        let mut sleeping = spawn("exec sleep 5");
        let mut probe = Probe::new(sleeping.id()).expect("a probe of a child");
        assert!(!parked_within(&mut probe, Duration::from_millis(300)), "a tree asleep on a timer");
        let _ = sleeping.kill();
        let _ = sleeping.wait();
        // A process that is gone.
        assert_eq!(probe.look(), None);
    }
}
