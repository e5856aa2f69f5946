//! netconform-delay: the testbed's slow-link fault. It binds an NFQUEUE queue in
//! the network namespace it runs in and lets every queued packet through after
//! a fixed delay, in arrival order. An iptables rule chooses which packets go
//! to the queue (`testbed/lib/faults.sh`, fault `slow-pair`).
//!
//! Why not netem: this kernel has HTB and TBF but no netem, and rate shaping
//! adds delay only under load, not to a lone SYN or DNS query.
//!
//! Bounded: it exits after `--max-seconds` whatever happens, and the rule uses
//! `--queue-bypass`, so packets flow undelayed once it is gone.

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    version,
    about = "Delays every packet of an NFQUEUE queue by a fixed time"
)]
struct Cli {
    /// The NFQUEUE queue number the iptables rule sends packets to.
    #[arg(long)]
    queue: u16,
    /// Milliseconds each packet is held.
    #[arg(long)]
    delay_ms: u64,
    /// Exit after this many seconds (the fault never outlives a forgotten heal by long).
    #[arg(long, default_value_t = 1800)]
    max_seconds: u64,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let delay = Duration::from_millis(cli.delay_ms);
    let stop_at = Instant::now() + Duration::from_secs(cli.max_seconds);
    let mut queue = nfq::Queue::open()
        .context("opening an nfnetlink queue socket (needs root in the node's namespace)")?;
    queue
        .bind(cli.queue)
        .with_context(|| format!("binding NFQUEUE {}", cli.queue))?;
    // Only the verdict matters: copy no more of each packet than its headers.
    queue.set_copy_range(cli.queue, 64)?;
    queue.set_fail_open(cli.queue, true)?;
    queue.set_nonblocking(true);
    eprintln!(
        "netconform-delay: holding packets of queue {} for {} ms",
        cli.queue, cli.delay_ms
    );
    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    while Instant::now() < stop_at {
        loop {
            match queue.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    held.push_back((Instant::now() + delay, msg));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("reading the queue"),
            }
        }
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, msg) = held.pop_front().expect("front exists");
            queue.verdict(msg).context("releasing a packet")?;
        }
        // Sub-millisecond polling keeps the added delay within ~0.2 ms of the target.
        std::thread::sleep(Duration::from_micros(200));
    }
    // Whatever is still held goes out before the queue closes.
    for (_, msg) in held {
        let _ = queue.verdict(msg);
    }
    Ok(())
}
