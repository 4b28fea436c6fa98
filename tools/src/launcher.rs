//! `sibyl-cluster`: a local multi-node launcher, like ccm.
//!
//! `sibyl-cluster start -n 3` creates (once) a cluster directory with one sub-directory per node
//! (`node1`..`nodeN`: its generated `sibyl.yaml`, data, commit log and `system.log`), starts
//! every node on its own loopback address (127.0.0.1, 127.0.0.2, ...: same ports, different
//! addresses, which Linux binds without setup) and waits until each accepts CQL clients.
//! `stop`, `kill` (SIGKILL) and `start` take node numbers to act on single nodes; `status`
//! shows which run; `clear` stops everything and deletes the directory.
//!
//! The node's pid is kept in `nodeN/sibyl.pid`. Node 1 is the seed of every node.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(name = "sibyl-cluster", about = "Start, stop and kill local Sibyl clusters (like ccm)")]
pub struct Args {
    /// The cluster's directory.
    #[arg(long, default_value = "sibyl-cluster")]
    pub dir: PathBuf,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Launcher commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the cluster if needed and start nodes (all, or those listed).
    Start {
        /// Nodes in a new cluster.
        #[arg(short = 'n', long, default_value_t = 3)]
        nodes: usize,
        /// First three octets of the nodes' addresses: node i listens on PREFIX.i.
        #[arg(long, default_value = "127.0.0")]
        prefix: String,
        /// The `sibyl` binary (default: next to this one).
        #[arg(long)]
        sibyl: Option<PathBuf>,
        /// Extra yaml lines for every node of a new cluster (e.g. "commitlog_sync: batch").
        #[arg(long = "yaml")]
        yaml: Vec<String>,
        /// Node numbers to start (all when none).
        only: Vec<usize>,
    },
    /// Stop nodes cleanly (SIGTERM; all when none listed).
    Stop {
        /// Node numbers.
        only: Vec<usize>,
    },
    /// Kill nodes (SIGKILL), as a crash would.
    Kill {
        /// Node numbers.
        only: Vec<usize>,
    },
    /// Add a node to the cluster and start it: it bootstraps (streams its ranges) before it
    /// accepts clients, as `ccm add` followed by `start`.
    Add {
        /// Take over the tokens and data of this dead node's address
        /// (`replace_address_first_boot`).
        #[arg(long)]
        replace: Option<String>,
        /// Return once the process runs, without waiting for the bootstrap to finish.
        #[arg(long)]
        no_wait: bool,
        /// The `sibyl` binary (default: next to this one).
        #[arg(long)]
        sibyl: Option<PathBuf>,
    },
    /// Which nodes run, with their addresses.
    Status,
    /// Stop every node and delete the cluster directory.
    Clear,
}

/// A cluster on disk.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
}

/// How long a node gets to open its engine, bootstrap if it is new, and listen.
const START_TIMEOUT: Duration = Duration::from_secs(600);

impl Cluster {
    /// The cluster in `dir` (it may not exist yet).
    #[must_use]
    pub fn new(dir: &Path) -> Cluster {
        Cluster { dir: dir.to_path_buf() }
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{i}"))
    }

    /// Node numbers that exist.
    pub fn nodes(&self) -> Result<Vec<usize>> {
        let mut out = Vec::new();
        if !self.dir.exists() {
            return Ok(out);
        }
        for e in std::fs::read_dir(&self.dir)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            if let Some(n) = name.strip_prefix("node").and_then(|n| n.parse().ok()) {
                out.push(n);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The address node `i` listens on.
    pub fn address(&self, i: usize) -> Result<Ipv4Addr> {
        let text = std::fs::read_to_string(self.node_dir(i).join("address"))
            .with_context(|| format!("node{i} does not exist in {}", self.dir.display()))?;
        Ok(text.trim().parse()?)
    }

    /// Creates the directories and yaml of `n` nodes on `prefix.1..n`.
    pub fn create(&self, n: usize, prefix: &str, extra_yaml: &[String]) -> Result<()> {
        if !(1..=250).contains(&n) {
            bail!("a local cluster has 1 to 250 nodes");
        }
        format!("{prefix}.1")
            .parse::<Ipv4Addr>()
            .with_context(|| format!("--prefix {prefix:?} is not three octets"))?;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::write(self.dir.join("prefix"), prefix)?;
        std::fs::write(self.dir.join("extra.yaml"), extra_yaml.join("\n"))?;
        for i in 1..=n {
            self.write_node(i, &[])?;
        }
        Ok(())
    }

    /// Creates node `i`'s directory and yaml: the cluster's extra lines, then `more`.
    fn write_node(&self, i: usize, more: &[String]) -> Result<()> {
        let prefix =
            std::fs::read_to_string(self.dir.join("prefix")).context("the cluster has no prefix file")?;
        let extra = std::fs::read_to_string(self.dir.join("extra.yaml")).unwrap_or_default();
        let ip = |i: usize| -> Result<Ipv4Addr> {
            format!("{prefix}.{i}")
                .parse()
                .with_context(|| format!("--prefix {prefix:?} is not three octets"))
        };
        let seed = ip(1)?;
        {
            let dir = self.node_dir(i);
            std::fs::create_dir_all(dir.join("data"))?;
            let dir = dir.canonicalize()?;
            let addr = ip(i)?;
            let mut yaml = format!(
                "# Generated by sibyl-cluster for node{i}.\n\
                 cluster_name: sibyl-local\n\
                 num_tokens: 16\n\
                 listen_address: {addr}\n\
                 rpc_address: {addr}\n\
                 admin_address: {addr}\n\
                 native_transport_port: 9042\n\
                 storage_port: 7000\n\
                 admin_port: 7199\n\
                 seed_provider:\n  - class_name: org.apache.cassandra.locator.SimpleSeedProvider\n    parameters:\n      - seeds: \"{seed}\"\n\
                 data_file_directories:\n  - {}\n\
                 commitlog_directory: {}\n\
                 hints_directory: {}\n\
                 batchlog_directory: {}\n",
                dir.join("data/data").display(),
                dir.join("data/commitlog").display(),
                dir.join("data/hints").display(),
                dir.join("data/batchlog").display()
            );
            for line in extra.lines().map(str::to_string).chain(more.iter().cloned()) {
                yaml.push_str(&line);
                yaml.push('\n');
            }
            std::fs::write(dir.join("sibyl.yaml"), yaml)?;
            std::fs::write(dir.join("address"), addr.to_string())?;
        }
        Ok(())
    }

    fn pid(&self, i: usize) -> Option<u32> {
        let pid: u32 =
            std::fs::read_to_string(self.node_dir(i).join("sibyl.pid")).ok()?.trim().parse().ok()?;
        // A pid file left by a killed node may name a finished process.
        Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
    }

    /// Whether node `i` runs.
    #[must_use]
    pub fn is_running(&self, i: usize) -> bool {
        self.pid(i).is_some()
    }

    /// Adds node `max + 1` (replacing the node at `replace` if given) and returns its number.
    pub fn add_node(&self, replace: Option<&str>) -> Result<usize> {
        let i = self.nodes()?.last().copied().context("no cluster here; create one with start")? + 1;
        if i > 250 {
            bail!("a local cluster has at most 250 nodes");
        }
        let more: Vec<String> =
            replace.map(|a| format!("replace_address_first_boot: {a}")).into_iter().collect();
        self.write_node(i, &more)?;
        Ok(i)
    }

    /// Starts node `i` and waits until it accepts CQL connections.
    pub fn start_node(&self, i: usize, sibyl: &Path) -> Result<()> {
        self.spawn_node(i, sibyl, true)
    }

    /// Starts node `i`; with `wait`, until it accepts CQL connections.
    pub fn spawn_node(&self, i: usize, sibyl: &Path, wait: bool) -> Result<()> {
        if self.is_running(i) {
            return Ok(());
        }
        let dir = self.node_dir(i);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("system.log"))?;
        let mut child = Process::new(sibyl)
            .arg("--config")
            .arg(dir.join("sibyl.yaml"))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot run {}", sibyl.display()))?;
        std::fs::write(dir.join("sibyl.pid"), child.id().to_string())?;
        if !wait {
            return Ok(());
        }
        let addr = SocketAddr::new(self.address(i)?.into(), 9042);
        let started = Instant::now();
        while !answers_cql(&addr) {
            if !matches!(child.try_wait(), Ok(None)) {
                bail!("node{i} exited during start; see {}", dir.join("system.log").display());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "node{i} did not listen on {addr} within {START_TIMEOUT:?}; see {}",
                    dir.join("system.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    fn signal(&self, i: usize, signal: &str, wait: bool) -> Result<()> {
        let Some(pid) = self.pid(i) else { return Ok(()) };
        let status = Process::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status()?;
        if !status.success() {
            bail!("kill -{signal} {pid} failed");
        }
        let started = Instant::now();
        while wait && self.is_running(i) && !is_zombie(pid) {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("node{i} (pid {pid}) did not stop within 60 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(self.node_dir(i).join("sibyl.pid"));
        Ok(())
    }

    /// Stops node `i` cleanly (it flushes and closes its commit log).
    pub fn stop_node(&self, i: usize) -> Result<()> {
        self.signal(i, "TERM", true)
    }

    /// Kills node `i` with SIGKILL.
    pub fn kill_node(&self, i: usize) -> Result<()> {
        self.signal(i, "KILL", true)
    }
}

/// Whether a CQL server answers OPTIONS at `addr` with SUPPORTED. The node binds its CQL port
/// early (to fail fast when it is taken) but serves only once it joined the ring, so a connect
/// alone does not say the node is up.
fn answers_cql(addr: &SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    // Version 4 request, no flags, stream 0, OPTIONS (0x05), empty body.
    if stream.write_all(&[0x04, 0, 0, 0, 0x05, 0, 0, 0, 0]).is_err() {
        return false;
    }
    let mut header = [0u8; 9];
    stream.read_exact(&mut header).is_ok() && header[0] == 0x84 && header[4] == 0x06
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// The `sibyl` binary next to the running executable.
pub fn default_sibyl() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.with_file_name("sibyl"))
}

/// Runs the launcher.
pub fn run(args: &Args, out: &mut dyn std::io::Write) -> Result<()> {
    let cluster = Cluster::new(&args.dir);
    let pick = |only: &[usize]| -> Result<Vec<usize>> {
        if only.is_empty() {
            cluster.nodes()
        } else {
            Ok(only.to_vec())
        }
    };
    match &args.command {
        Command::Start { nodes, prefix, sibyl, yaml, only } => {
            if cluster.nodes()?.is_empty() {
                cluster.create(*nodes, prefix, yaml)?;
                writeln!(out, "created a {nodes}-node cluster in {}", args.dir.display())?;
            }
            let sibyl = match sibyl {
                Some(p) => p.clone(),
                None => default_sibyl()?,
            };
            for i in pick(only)? {
                cluster.start_node(i, &sibyl)?;
                writeln!(out, "node{i} up on {}:9042", cluster.address(i)?)?;
            }
        }
        Command::Stop { only } => {
            for i in pick(only)? {
                cluster.stop_node(i)?;
                writeln!(out, "node{i} stopped")?;
            }
        }
        Command::Kill { only } => {
            for i in pick(only)? {
                cluster.kill_node(i)?;
                writeln!(out, "node{i} killed")?;
            }
        }
        Command::Add { replace, no_wait, sibyl } => {
            let sibyl = match sibyl {
                Some(p) => p.clone(),
                None => default_sibyl()?,
            };
            let i = cluster.add_node(replace.as_deref())?;
            cluster.spawn_node(i, &sibyl, !no_wait)?;
            if *no_wait {
                writeln!(out, "node{i} started on {}", cluster.address(i)?)?;
            } else {
                writeln!(out, "node{i} up on {}:9042", cluster.address(i)?)?;
            }
        }
        Command::Status => {
            for i in cluster.nodes()? {
                let state = if cluster.is_running(i) { "running" } else { "stopped" };
                writeln!(out, "node{i}  {}  {state}", cluster.address(i)?)?;
            }
        }
        Command::Clear => {
            for i in cluster.nodes()? {
                cluster.kill_node(i)?;
            }
            if args.dir.exists() {
                std::fs::remove_dir_all(&args.dir)?;
            }
            writeln!(out, "removed {}", args.dir.display())?;
        }
    }
    Ok(())
}
