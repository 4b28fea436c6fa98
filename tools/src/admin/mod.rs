//! The admin endpoint: a small HTTP server on `admin_address:admin_port` (7199, JMX's port in
//! Cassandra) that `sibyltool` talks to, and that serves Prometheus metrics on `/metrics`.
//!
//! Every route answers plain text already in nodetool's shape ([`nodetool`]), so `sibyltool` is
//! a thin client and scripts can also `curl` the endpoint. Requests are tiny: the request head
//! is bounded at [`MAX_REQUEST_BYTES`] and bodies are not read. Work that touches disk runs on
//! the blocking pool.
//!
//! | route | nodetool |
//! |---|---|
//! | `GET /status[?keyspace=ks]` | `status` |
//! | `GET /ring` | `ring` |
//! | `GET /info` | `info` |
//! | `GET /describecluster` | `describecluster` |
//! | `GET /gossipinfo` | `gossipinfo` |
//! | `GET /getendpoints?keyspace=&table=&key=` | `getendpoints` |
//! | `GET /tablestats[?keyspace=ks[&table=t]]` | `tablestats` |
//! | `POST /flush[?keyspace=ks[&table=t]]` | `flush` |
//! | `POST /drain` | `drain` |
//! | `POST /compact[?keyspace=ks[&table=t]]` | `compact` (major compaction) |
//! | `GET /compactionstats` | `compactionstats` |
//! | `POST /stop` | `stop COMPACTION` |
//! | `GET /compactionthroughput`, `POST /compactionthroughput?value=MiB` | `getcompactionthroughput`, `setcompactionthroughput` |
//! | `GET /tablehistograms?keyspace=ks&table=t` | `tablehistograms` |
//! | `POST /cleanup[?keyspace=ks[&table=t]]` | `cleanup` |
//! | `GET /repair/keyspaces` | (the keyspaces `repair` covers when none is named) |
//! | `POST /repair?keyspace=ks[&tables=a,b][&pr=1][&st=&et=]` | `repair` (starts a session; answers its id) |
//! | `GET /repair/status?id=&from=N` | (`repair` polls: state, progress, progress lines from N) |
//! | `GET /repair_admin/list` | `repair_admin list` |
//! | `POST /repair_admin/cancel?id=` | `repair_admin cancel` |
//! | `POST /messaging/block?peer=ip:port`, `/messaging/unblock` | (tests: cut a link) |
//! | `GET /metrics` | Prometheus text format |

pub mod nodetool;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use sibyl_cluster::hints::HintsService;
use sibyl_cluster::repair::{RepairRequest, RepairScope, RepairService, RepairSession};
use sibyl_cluster::{ClusterService, Endpoint};
use sibyl_cql::Executor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use self::nodetool::NodeRow;

/// Largest request head accepted.
pub const MAX_REQUEST_BYTES: usize = 8 << 10;
/// Admin connections served at once.
pub const MAX_CONNECTIONS: usize = 64;

/// What the admin endpoint reads from the node.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The executor (schema, engine, coordinator).
    pub executor: Arc<Executor>,
    /// The cluster service.
    pub cluster: ClusterService,
    /// When the node started.
    pub started: Instant,
    /// Anti-entropy repair sessions.
    pub repair: Arc<RepairService>,
    /// `ring_delay_ms` and `consistent_rangemovement`, for decommission.
    pub moves: sibyl_cluster::operations::MoveSettings,
    /// Stops the node (after a decommission).
    pub stop: watch::Sender<bool>,
}

/// Serves the admin endpoint until `shutdown` turns true.
pub async fn serve(listener: TcpListener, state: AdminState, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else { continue };
                let state = state.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = handle(stream, state).await {
                        tracing::debug!(error = %e, "admin request failed");
                    }
                });
            }
        }
    }
}

async fn handle(mut stream: TcpStream, state: AdminState) -> Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST_BYTES {
            return respond(&mut stream, 413, "request too large\n").await;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, target) =
        (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
    let params = parse_query(query);
    let path = path.to_string();
    let result = tokio::task::spawn_blocking(move || route(&state, &method, &path, &params)).await?;
    match result {
        Ok(body) => respond(&mut stream, 200, &body).await,
        Err(RouteError::NotFound) => respond(&mut stream, 404, "unknown command\n").await,
        Err(RouteError::Bad(m)) => respond(&mut stream, 400, &format!("{m}\n")).await,
    }
}

async fn respond(stream: &mut TcpStream, code: u16, body: &str) -> Result<()> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await.context("closing the admin connection")
}

/// Decodes `a=b&c=d` with percent escapes.
fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

enum RouteError {
    NotFound,
    Bad(String),
}

impl<E: std::fmt::Display> From<E> for RouteError {
    fn from(e: E) -> Self {
        RouteError::Bad(e.to_string())
    }
}

fn route(
    state: &AdminState,
    method: &str,
    path: &str,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let exec = &state.executor;
    match (method, path) {
        ("GET", "/status") => {
            let keyspace = params.get("keyspace").map(String::as_str);
            Ok(nodetool::status(&node_rows(state, keyspace)?, keyspace))
        }
        ("GET", "/ring") => Ok(nodetool::ring(&node_rows(state, None)?)),
        ("GET", "/describecluster") => {
            let rows = node_rows(state, None)?;
            let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let local = exec.local();
            versions
                .entry(exec.schema().version().to_string())
                .or_default()
                .push(local.listen_address.to_string());
            for p in state.cluster.peers() {
                let v = if p.up {
                    p.schema_version.map_or("UNKNOWN".into(), |v| v.to_string())
                } else {
                    "UNREACHABLE".into()
                };
                versions.entry(v).or_default().push(p.endpoint.0.ip().to_string());
            }
            Ok(nodetool::describecluster(&local.cluster_name, &versions, &rows))
        }
        ("GET", "/info") => Ok(info(state)),
        ("GET", "/gossipinfo") => Ok(gossipinfo(state)),
        ("GET", "/getendpoints") => getendpoints(state, params),
        ("GET", "/tablestats") => tablestats(state, params),
        ("POST", "/flush") => {
            for id in table_ids(state, params)? {
                exec.engine().flush(id)?;
            }
            Ok(String::new())
        }
        ("POST", "/compact") => {
            for id in table_ids(state, params)? {
                exec.engine().compact(id)?;
            }
            Ok(String::new())
        }
        ("GET", "/compactionstats") => Ok(compactionstats(state)),
        ("POST", "/stop") => {
            let n = exec.engine().stop_compactions(None);
            tracing::info!(compactions = n, "stop COMPACTION requested; their inputs stay live");
            Ok(String::new())
        }
        ("GET", "/compactionthroughput") => {
            let mib = exec.engine().compaction_throughput() / (1 << 20);
            Ok(format!("Current compaction throughput: {mib} MB/s\n"))
        }
        ("POST", "/compactionthroughput") => {
            let mib: u64 = params
                .get("value")
                .ok_or_else(|| RouteError::Bad("value=<MiB per second> is required (0 = unlimited)".into()))?
                .parse()?;
            exec.engine().set_compaction_throughput(mib.saturating_mul(1 << 20));
            Ok(String::new())
        }
        ("GET", "/tablehistograms") => tablehistograms(state, params),
        ("POST", "/drain") => {
            tracing::info!("DRAINING: stopping gossip and messaging, flushing every table");
            state.cluster.shutdown();
            exec.engine().drain()?;
            tracing::info!("DRAINED: restart the node to serve again");
            Ok(String::new())
        }
        ("POST", "/messaging/block") | ("POST", "/messaging/unblock") => {
            let peer: SocketAddr = params
                .get("peer")
                .ok_or_else(|| RouteError::Bad("peer=ip:port is required".into()))?
                .parse()?;
            if path.ends_with("unblock") {
                state.cluster.messaging().unblock_peer(Endpoint(peer));
            } else {
                state.cluster.messaging().block_peer(Endpoint(peer));
            }
            Ok(String::new())
        }
        ("GET", "/listpendinghints") => Ok(listpendinghints(state)),
        ("POST", "/truncatehints") => truncatehints(state, params),
        ("GET", "/statushandoff") => {
            let hints = hints(state)?;
            let mut out =
                format!("Hinted handoff is {}\n", if hints.is_enabled() { "running" } else { "not running" });
            for dc in &hints.config().disabled_datacenters {
                let _ = writeln!(out, "Data center {dc} is disabled");
            }
            if hints.is_paused() {
                out.push_str("Hint delivery is paused\n");
            }
            Ok(out)
        }
        ("POST", "/enablehandoff") | ("POST", "/disablehandoff") => {
            hints(state)?.set_enabled(path == "/enablehandoff");
            Ok(String::new())
        }
        ("POST", "/pausehandoff") | ("POST", "/resumehandoff") => {
            hints(state)?.set_paused(path == "/pausehandoff");
            Ok(String::new())
        }
        ("POST", "/cleanup") => cleanup(state, params),
        ("GET", "/repair/keyspaces") => Ok(repair_keyspaces(state)),
        ("POST", "/repair") => start_repair(state, params),
        ("GET", "/repair/status") => repair_status(state, params),
        ("GET", "/repair_admin/list") => Ok(repair_list(&state.repair.sessions())),
        ("POST", "/repair_admin/cancel") => {
            let id: uuid::Uuid = params
                .get("id")
                .ok_or_else(|| RouteError::Bad("id=<session id> is required".into()))?
                .parse()?;
            state.repair.cancel(id).map_err(RouteError::Bad)?;
            Ok(format!("Cancelling repair session {id}\n"))
        }
        ("POST", "/decommission") => decommission(state),
        ("POST", "/removenode") => {
            let host: uuid::Uuid = params
                .get("host_id")
                .ok_or_else(|| RouteError::Bad("host_id=<host id> is required (see status)".into()))?
                .parse()
                .map_err(|e| RouteError::Bad(format!("host_id: {e}")))?;
            let keyspaces = crate::node::keyspace_tables(exec);
            state.cluster.removenode(host, &keyspaces, &state.moves).map_err(RouteError::Bad)?;
            Ok(format!("Removed node {host}\n"))
        }
        ("GET", "/removenode/status") => Ok(match state.cluster.removal() {
            None => "RemovalStatus: No removals in process.\n".to_string(),
            Some(r) => format!(
                "RemovalStatus: {} of {} ({}): {}, {} of {} streams done\n",
                r.host_id, r.endpoint, "removenode", r.state, r.streams_done, r.streams_total
            ),
        }),
        ("GET", "/netstats") => Ok(netstats(state)),
        ("GET", "/streamthroughput") => {
            let bytes = state.cluster.streams().throughput() as f64;
            Ok(if params.get("mib").is_some_and(|m| m == "true") {
                format!("Current stream throughput: {:.1} MiB/s\n", bytes / f64::from(1u32 << 20))
            } else {
                format!("Current stream throughput: {:.0} Mb/s\n", bytes * 8.0 / 1e6)
            })
        }
        ("POST", "/streamthroughput") => {
            let bytes: u64 = params
                .get("bytes")
                .ok_or_else(|| {
                    RouteError::Bad("bytes=<bytes per second> is required (0 = unlimited)".into())
                })?
                .parse()?;
            state.cluster.streams().set_throughput(bytes);
            Ok(String::new())
        }
        ("GET", "/metrics") => Ok(metrics(state)),
        _ => Err(RouteError::NotFound),
    }
}

/// `nodetool decommission`: streams this node's ranges to their next replicas, leaves the ring
/// and stops the node.
fn decommission(state: &AdminState) -> std::result::Result<String, RouteError> {
    let exec = &state.executor;
    let keyspaces = crate::node::keyspace_tables(exec);
    let started = Instant::now();
    state.cluster.decommission(&keyspaces, &state.moves).map_err(RouteError::Bad)?;
    exec.set_bootstrap_state("DECOMMISSIONED")?;
    tracing::info!(seconds = started.elapsed().as_secs_f64(), "decommissioned; stopping the node");
    let _ = state.stop.send(true);
    Ok(format!("Decommissioned in {:.1} s; the node is stopping\n", started.elapsed().as_secs_f64()))
}

/// `nodetool netstats`: the node's mode and its streams.
fn netstats(state: &AdminState) -> String {
    use sibyl_cluster::streaming::{Direction, StreamState};
    let mut out = format!("Mode: {}\n", state.cluster.mode().name());
    let sessions = state.cluster.streams().sessions();
    let running: Vec<_> = sessions.iter().filter(|s| s.state == StreamState::Running).collect();
    if running.is_empty() {
        out.push_str("Not sending any streams.\n");
    }
    for s in &sessions {
        let state_text = match &s.state {
            StreamState::Running => "running".to_string(),
            StreamState::Completed => "completed".to_string(),
            StreamState::Failed(e) => format!("failed: {e}"),
        };
        let seconds = if s.finished_ms > 0 { (s.finished_ms - s.started_ms) as f64 / 1000.0 } else { 0.0 };
        let rate = if seconds > 0.0 { s.bytes as f64 / seconds / f64::from(1u32 << 20) } else { 0.0 };
        let _ = writeln!(out, "{} {}", s.operation.description(), s.id);
        let what = match s.direction {
            Direction::Sending => format!("Sending {} of {} ranges,", s.ranges_done, s.ranges_total),
            Direction::Receiving => "Receiving".to_string(),
        };
        let _ = writeln!(
            out,
            "    /{} {what} {} partitions, {} bytes ({rate:.1} MiB/s), {state_text}",
            s.peer.0.ip(),
            s.partitions,
            s.bytes
        );
    }
    out
}

/// `nodetool cleanup`: drops from this node's SSTables the partitions of ranges it no longer
/// replicates, keyspace by keyspace (the node's own keyspaces are skipped).
fn cleanup(state: &AdminState, params: &BTreeMap<String, String>) -> std::result::Result<String, RouteError> {
    let exec = &state.executor;
    let schema = exec.schema();
    let view = exec.coordinator().view();
    let local = exec.coordinator().local();
    let mut out = String::new();
    let mut found = false;
    for (name, ks) in schema.keyspaces() {
        if params.get("keyspace").is_some_and(|k| k != name) {
            continue;
        }
        let strategy = exec.keyspace_strategy(&schema, name)?;
        if matches!(strategy, sibyl_cluster::ReplicationStrategy::Local) {
            continue;
        }
        let keep: Vec<(i64, i64)> = sibyl_cluster::repair::plan_ranges(
            &view.ring,
            &strategy,
            local,
            sibyl_cluster::repair::RepairScope::All,
        )
        .map_err(RouteError::Bad)?
        .into_iter()
        .map(|r| (r.start, r.end))
        .collect();
        for (tname, t) in &ks.tables {
            if params.get("table").is_some_and(|x| x != tname) {
                continue;
            }
            found = true;
            let s = exec.engine().cleanup(t.id, &keep)?;
            let _ = writeln!(
                out,
                "Cleaned up {name}.{tname}: {} SSTables rewritten, {} dropped, {} kept; {} -> {}",
                s.rewritten,
                s.dropped,
                s.kept,
                nodetool::human_bytes(s.bytes_before as f64),
                nodetool::human_bytes(s.bytes_after as f64)
            );
        }
    }
    if !found && params.contains_key("keyspace") {
        return Err(RouteError::Bad(
            "no such keyspace or table (or the keyspace is local to each node)".into(),
        ));
    }
    Ok(out)
}

/// Keyspaces a repair without a keyspace covers: every keyspace replicated to more than one node.
fn repair_keyspaces(state: &AdminState) -> String {
    let exec = &state.executor;
    let schema = exec.schema();
    let mut out = String::new();
    for (name, ks) in schema.keyspaces() {
        let replicated = exec
            .keyspace_strategy(&schema, name)
            .is_ok_and(|s| s.replication_factor_total() > 1 && !ks.tables.is_empty());
        if replicated {
            let _ = writeln!(out, "{name}");
        }
    }
    out
}

/// Starts a repair session; answers its id.
fn start_repair(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let exec = &state.executor;
    let keyspace =
        params.get("keyspace").ok_or_else(|| RouteError::Bad("keyspace=<name> is required".into()))?.clone();
    let schema = exec.schema();
    let ks = schema
        .keyspace(&keyspace)
        .ok_or_else(|| RouteError::Bad(format!("Keyspace '{keyspace}' does not exist")))?;
    let strategy = exec.keyspace_strategy(&schema, &keyspace)?;
    if matches!(strategy, sibyl_cluster::ReplicationStrategy::Local) {
        return Err(RouteError::Bad(format!(
            "keyspace {keyspace} is local to each node: there is nothing to repair"
        )));
    }
    let wanted: Vec<&str> =
        params.get("tables").map(|t| t.split(',').filter(|x| !x.is_empty()).collect()).unwrap_or_default();
    let mut tables = Vec::new();
    for (name, t) in &ks.tables {
        if wanted.is_empty() || wanted.contains(&name.as_str()) {
            tables.push((name.clone(), t.id));
        }
    }
    if let Some(missing) = wanted.iter().find(|w| !ks.tables.contains_key(**w)) {
        return Err(RouteError::Bad(format!("Unknown table {missing} in keyspace {keyspace}")));
    }
    let token = |name: &str| -> std::result::Result<Option<i64>, RouteError> {
        params
            .get(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| RouteError::Bad(format!("{name}={v} is not a token (a 64-bit integer)")))
            })
            .transpose()
    };
    let scope = match (token("st")?, token("et")?, params.get("pr").is_some_and(|v| v == "1" || v == "true"))
    {
        (Some(_), Some(_), true) => {
            return Err(RouteError::Bad("-pr and -st/-et cannot be combined".into()));
        }
        (Some(st), Some(et), false) => RepairScope::Subrange(st, et),
        (None, None, true) => RepairScope::PrimaryRange,
        (None, None, false) => RepairScope::All,
        _ => return Err(RouteError::Bad("-st and -et go together".into())),
    };
    let id =
        state.repair.start(RepairRequest { keyspace, strategy, tables, scope }).map_err(RouteError::Bad)?;
    Ok(format!("{id}\n"))
}

/// A session's state and progress lines from `from` on:
/// `state <RUNNING|SUCCESS|FAILED>`, `progress <done> <total>`, `events <count>`,
/// `reason <why it failed>`, then the lines.
fn repair_status(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let id: uuid::Uuid =
        params.get("id").ok_or_else(|| RouteError::Bad("id=<session id> is required".into()))?.parse()?;
    let from: usize = params.get("from").map(|f| f.parse()).transpose()?.unwrap_or(0);
    let s = state.repair.session(id).ok_or_else(|| RouteError::Bad(format!("no repair session {id}")))?;
    let reason = match &s.state {
        sibyl_cluster::repair::RepairState::Failed(r) => r.replace('\n', " "),
        _ => String::new(),
    };
    let mut out = format!(
        "state {}\nprogress {} {}\nevents {}\nreason {reason}\n",
        s.state.name(),
        s.ranges_done,
        s.ranges_total,
        s.events.len()
    );
    for e in s.events.iter().skip(from) {
        let _ = writeln!(out, "{e}");
    }
    Ok(out)
}

/// `repair_admin list`: the sessions this node ran, oldest first.
fn repair_list(sessions: &[RepairSession]) -> String {
    if sessions.is_empty() {
        return "No repair sessions have run on this node since it started\n".into();
    }
    let mut rows = vec![[
        "id".to_string(),
        "keyspace".into(),
        "tables".into(),
        "scope".into(),
        "state".into(),
        "started".into(),
        "duration".into(),
        "ranges".into(),
        "mismatched".into(),
        "repaired".into(),
        "streamed".into(),
    ]];
    for s in sessions {
        let end = if s.finished_ms > 0 { s.finished_ms } else { now_ms() };
        let duration_ms = end.saturating_sub(s.started_ms).max(0);
        rows.push([
            s.id.to_string(),
            s.keyspace.clone(),
            s.tables.join(","),
            match s.scope {
                RepairScope::All => "all".into(),
                RepairScope::PrimaryRange => "primary range".into(),
                RepairScope::Subrange(a, b) => format!("({a},{b}]"),
            },
            s.state.name().into(),
            crate::shell::format::format_timestamp(s.started_ms),
            format!("{:.1}s", duration_ms as f64 / 1000.0),
            format!("{}/{}", s.ranges_done, s.ranges_total),
            s.mismatched_ranges.to_string(),
            s.partitions_repaired.to_string(),
            nodetool::human_bytes(s.bytes_fetched.saturating_add(s.bytes_sent) as f64),
        ]);
    }
    let mut out = nodetool::table(&rows);
    for s in sessions {
        if let sibyl_cluster::repair::RepairState::Failed(reason) = &s.state {
            let _ = writeln!(out, "{}: {reason}", s.id);
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Bytes of this node's live SSTables.
#[must_use]
pub fn local_load(exec: &Executor) -> f64 {
    exec.engine()
        .tables()
        .iter()
        .filter_map(|t| exec.engine().table_stats(t.id).ok())
        .map(|s| s.live_disk_bytes as f64)
        .sum()
}

fn node_rows(state: &AdminState, keyspace: Option<&str>) -> std::result::Result<Vec<NodeRow>, RouteError> {
    let exec = &state.executor;
    let view = exec.coordinator().view();
    let owns: BTreeMap<Endpoint, f64> = match keyspace {
        Some(ks) => {
            let strategy = exec.keyspace_strategy(&exec.schema(), ks)?;
            view.ring.effective_ownership(&strategy)
        }
        None => view.ring.ownership(),
    };
    let local = exec.local();
    let me = exec.coordinator().local();
    let mut rows = vec![NodeRow {
        dc: local.data_center.clone(),
        rack: local.rack.clone(),
        address: local.listen_address.to_string(),
        up: true,
        state: match state.cluster.mode() {
            sibyl_cluster::operations::Mode::Joining | sibyl_cluster::operations::Mode::Starting => 'J',
            sibyl_cluster::operations::Mode::Leaving => 'L',
            _ => 'N',
        },
        load_bytes: local_load(exec),
        tokens: local.tokens.clone(),
        owns: owns.get(&me).copied(),
        host_id: Some(local.host_id),
    }];
    for p in state.cluster.peers() {
        // A node still learning the ring (no status, no tokens) is not in it yet, as in
        // Cassandra's status.
        if p.tokens.is_empty()
            && sibyl_cluster::service::RingStatus::parse(&p.status)
                == sibyl_cluster::service::RingStatus::Other
        {
            continue;
        }
        rows.push(NodeRow {
            dc: p.location.dc.clone(),
            rack: p.location.rack.clone(),
            address: p.endpoint.0.ip().to_string(),
            up: p.up,
            state: match sibyl_cluster::service::RingStatus::parse(&p.status) {
                sibyl_cluster::service::RingStatus::Joining
                | sibyl_cluster::service::RingStatus::Replacing(_) => 'J',
                sibyl_cluster::service::RingStatus::Leaving
                | sibyl_cluster::service::RingStatus::Removing => 'L',
                _ => 'N',
            },
            load_bytes: p.load_bytes,
            tokens: p.tokens.clone(),
            owns: owns.get(&p.endpoint).copied(),
            host_id: p.host_id,
        });
    }
    Ok(rows)
}

fn hints(state: &AdminState) -> std::result::Result<&Arc<HintsService>, RouteError> {
    state
        .executor
        .coordinator()
        .hints()
        .ok_or_else(|| RouteError::Bad("this node runs without a hints service".into()))
}

/// nodetool listpendinghints: one line per host this node holds hints for.
fn listpendinghints(state: &AdminState) -> String {
    let Some(hints) = state.executor.coordinator().hints() else {
        return "This node does not have any pending hints\n".into();
    };
    let pending = hints.store().pending();
    if pending.is_empty() {
        return "This node does not have any pending hints\n".into();
    }
    let peers = state.cluster.peers();
    let mut rows = vec![[
        "Host ID".to_string(),
        "Address".into(),
        "Rack".into(),
        "DC".into(),
        "Status".into(),
        "Total files".into(),
        "Size".into(),
        "Newest".into(),
        "Oldest".into(),
    ]];
    for p in pending {
        let peer = peers.iter().find(|x| x.host_id == Some(p.host));
        let (addr, rack, dc, status) = match peer {
            Some(x) => (
                x.endpoint.0.ip().to_string(),
                x.location.rack.clone(),
                x.location.dc.clone(),
                if x.up { "UP" } else { "DOWN" }.to_string(),
            ),
            None => ("?".into(), "?".into(), "?".into(), "UNKNOWN".into()),
        };
        rows.push([
            p.host.to_string(),
            addr,
            rack,
            dc,
            status,
            p.files.to_string(),
            nodetool::human_bytes(p.bytes as f64),
            crate::shell::format::format_timestamp(p.newest_ms),
            crate::shell::format::format_timestamp(p.oldest_ms),
        ]);
    }
    nodetool::table(&rows)
}

/// nodetool truncatehints [endpoint]: deletes the hints for one host (by address or host id) or
/// for every host.
fn truncatehints(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let hints = hints(state)?;
    let host = match params.get("endpoint") {
        None => None,
        Some(e) => {
            let by_id = e.parse::<uuid::Uuid>().ok();
            let ip = e.parse::<std::net::IpAddr>().ok();
            let found = state.cluster.peers().into_iter().find(|p| {
                by_id.is_some_and(|id| p.host_id == Some(id)) || ip.is_some_and(|ip| p.endpoint.0.ip() == ip)
            });
            match (found.and_then(|p| p.host_id), by_id) {
                (Some(h), _) | (None, Some(h)) => Some(h),
                (None, None) => return Err(RouteError::Bad(format!("no known node has address {e}"))),
            }
        }
    };
    let (files, bytes) = hints.store().truncate(host)?;
    tracing::info!(host = ?host, files, bytes, "hints truncated by sibyltool");
    Ok(String::new())
}

fn info(state: &AdminState) -> String {
    let exec = &state.executor;
    let local = exec.local();
    let cache = exec.engine().chunk_cache_stats();
    let keys = exec.engine().key_cache_stats();
    let mut out = String::new();
    let _ = writeln!(out, "ID                     : {}", local.host_id);
    let _ = writeln!(out, "Gossip active          : true");
    let _ = writeln!(out, "Native Transport active: true");
    let _ = writeln!(out, "Load                   : {}", nodetool::human_bytes(local_load(exec)));
    let _ = writeln!(out, "Uptime (seconds)       : {}", state.started.elapsed().as_secs());
    let _ = writeln!(out, "Data Center            : {}", local.data_center);
    let _ = writeln!(out, "Rack                   : {}", local.rack);
    let _ = writeln!(
        out,
        "Chunk Cache            : size {}, capacity {}, {} hits, {} requests, {:.3} recent hit rate",
        nodetool::human_bytes(cache.size_bytes as f64),
        nodetool::human_bytes(cache.capacity_bytes as f64),
        cache.hits,
        cache.hits + cache.misses,
        cache.hit_rate()
    );
    let _ = writeln!(
        out,
        "Key Cache              : entries {}, size {}, capacity {}, {} hits, {} requests, {:.3} recent hit rate",
        keys.entries,
        nodetool::human_bytes(keys.size_bytes as f64),
        nodetool::human_bytes(keys.capacity_bytes as f64),
        keys.hits,
        keys.hits + keys.misses,
        keys.hit_rate()
    );
    if let Some(hints) = exec.coordinator().hints() {
        let h = hints.store().stats();
        let _ = writeln!(
            out,
            "Hints                  : {} on disk, {} written, {} delivered, {} failed, {} expired, {} not stored (window {}, size cap {})",
            nodetool::human_bytes(h.bytes_on_disk as f64),
            h.written,
            h.delivered,
            h.failed,
            h.expired,
            h.dropped_window + h.dropped_size,
            h.dropped_window,
            h.dropped_size
        );
    }
    let _ = writeln!(
        out,
        "Token                  : (invoke with -T/--tokens to see all {} tokens)",
        local.tokens.len()
    );
    out
}

fn gossipinfo(state: &AdminState) -> String {
    let mut out = String::new();
    for info in state.cluster.gossip_info() {
        let _ = writeln!(out, "/{}", info.endpoint.0.ip());
        let _ = writeln!(out, "  generation:{}", info.generation);
        let _ = writeln!(out, "  heartbeat:{}", info.heartbeat);
        for (name, value, version) in info.states {
            let value = if name == "TOKENS" { "<hidden>".to_string() } else { value };
            let _ = writeln!(out, "  {name}:{version}:{value}");
        }
    }
    out
}

fn getendpoints(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let need = |k: &str| params.get(k).cloned().ok_or_else(|| RouteError::Bad(format!("{k} is required")));
    let (ks, table, key) = (need("keyspace")?, need("table")?, need("key")?);
    let schema = state.executor.schema();
    let t = schema
        .table(&ks, &table)
        .ok_or_else(|| RouteError::Bad(format!("Table '{ks}.{table}' does not exist")))?;
    let pk: Vec<_> = t.partition_key().collect();
    let parts: Vec<&str> = if pk.len() == 1 { vec![key.as_str()] } else { key.split(':').collect() };
    if parts.len() != pk.len() {
        return Err(RouteError::Bad(format!("the key needs {} components separated by ':'", pk.len())));
    }
    let mut values = Vec::new();
    for (c, text) in pk.iter().zip(parts) {
        let v = key_value(&c.ty, text)?;
        values.push(bytes::Bytes::from(sibyl_cql::types::encode(&v)));
    }
    let key = sibyl_cql::rows::partition_key(t, &values)?;
    let strategy = state.executor.strategy_for(t.id)?;
    let replicas =
        state.executor.coordinator().natural_replicas(&strategy, sibyl_engine::Token::of_key(&key));
    Ok(replicas.iter().map(|e| format!("{}\n", e.0.ip())).collect())
}

/// A partition key component typed on the command line, as nodetool's `fromString` reads it.
fn key_value(
    ty: &sibyl_cql::types::CqlType,
    text: &str,
) -> std::result::Result<sibyl_cql::types::Value, RouteError> {
    use sibyl_cql::types::{CqlType as T, Value as V};
    let bad = |e: &dyn std::fmt::Display| RouteError::Bad(format!("{text:?} is not a valid {ty}: {e}"));
    Ok(match ty {
        T::Int => V::Int(text.parse().map_err(|e| bad(&e))?),
        T::Bigint => V::Bigint(text.parse().map_err(|e| bad(&e))?),
        T::Smallint => V::Smallint(text.parse().map_err(|e| bad(&e))?),
        T::Tinyint => V::Tinyint(text.parse().map_err(|e| bad(&e))?),
        T::Boolean => V::Boolean(text.parse().map_err(|e| bad(&e))?),
        T::Double => V::Double(text.parse().map_err(|e| bad(&e))?),
        T::Float => V::Float(text.parse().map_err(|e| bad(&e))?),
        T::Uuid => V::Uuid(text.parse().map_err(|e| bad(&e))?),
        T::Timeuuid => V::Timeuuid(text.parse().map_err(|e| bad(&e))?),
        T::Blob => {
            let hex = text.strip_prefix("0x").unwrap_or(text);
            let bytes: std::result::Result<Vec<u8>, _> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
                .collect();
            V::Blob(bytes.map_err(|e| bad(&e))?.into())
        }
        other => sibyl_cql::types::from_string_literal(other, text).map_err(|e| bad(&e))?,
    })
}

fn table_ids(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<Vec<sibyl_engine::TableId>, RouteError> {
    let schema = state.executor.schema();
    let mut out = Vec::new();
    for (name, ks) in schema.keyspaces() {
        if params.get("keyspace").is_some_and(|k| k != name) {
            continue;
        }
        for (tname, t) in &ks.tables {
            if params.get("table").is_some_and(|x| x != tname) {
                continue;
            }
            out.push(t.id);
        }
    }
    if out.is_empty() && params.contains_key("keyspace") {
        return Err(RouteError::Bad("no such keyspace or table".into()));
    }
    Ok(out)
}

fn tablestats(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let schema = state.executor.schema();
    let engine = state.executor.engine();
    let mut out = String::new();
    let _ = writeln!(out, "Total number of tables: {}", engine.tables().len());
    let _ = writeln!(out, "----------------");
    for (name, ks) in schema.keyspaces() {
        if params.get("keyspace").is_some_and(|k| k != name) {
            continue;
        }
        let stats: Vec<_> = ks
            .tables
            .iter()
            .filter(|(t, _)| params.get("table").is_none_or(|x| x == *t))
            .filter_map(|(t, m)| engine.table_stats(m.id).ok().map(|s| (t, s)))
            .collect();
        let reads: u64 = stats.iter().map(|(_, s)| s.reads).sum();
        let writes: u64 = stats.iter().map(|(_, s)| s.writes).sum();
        let _ = writeln!(out, "Keyspace : {name}");
        let _ = writeln!(out, "\tRead Count: {reads}");
        let _ = writeln!(out, "\tWrite Count: {writes}");
        for (t, s) in stats {
            let _ = writeln!(out, "\t\tTable: {t}");
            let _ = writeln!(out, "\t\tSSTable count: {}", s.sstable_count);
            let _ = writeln!(out, "\t\tSpace used (live): {}", s.live_disk_bytes);
            let _ = writeln!(out, "\t\tSpace used (total): {}", s.live_disk_bytes);
            let _ = writeln!(out, "\t\tMemtable cell count: {}", s.memtable_entries);
            let _ = writeln!(out, "\t\tMemtable data size: {}", s.memtable_bytes);
            let _ = writeln!(out, "\t\tMemtable switch count: {}", s.flushes);
            let _ = writeln!(out, "\t\tLocal read count: {}", s.reads);
            let _ = writeln!(out, "\t\tLocal write count: {}", s.writes);
            let _ = writeln!(out, "\t\tNumber of partitions (estimate): {}", s.sstable_partitions);
            if s.sstables_per_level.len() > 1 {
                let levels: Vec<String> = s.sstables_per_level.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "\t\tSSTables in each level: [{}]", levels.join(", "));
            }
            let _ = writeln!(out, "\t\tCompacted partition minimum bytes: {}", s.partition_size.min());
            let _ = writeln!(out, "\t\tCompacted partition maximum bytes: {}", s.partition_size.max());
            let _ = writeln!(out, "\t\tCompacted partition mean bytes: {}", s.partition_size.mean());
            let _ = writeln!(
                out,
                "\t\tAverage tombstones per slice (last five minutes): {}",
                s.tombstones_per_read.mean()
            );
            let _ = writeln!(
                out,
                "\t\tMaximum tombstones per slice (last five minutes): {}",
                s.tombstones_per_read.max()
            );
            let _ = writeln!(out, "\t\tDroppable tombstone estimate: {}", s.droppable_tombstones);
            let _ = writeln!(out, "\t\tPending compactions: {}", s.pending_compactions);
            let _ = writeln!(out, "\t\tCompactions completed: {}", s.compactions);
            let _ = writeln!(out, "\t\tBytes compacted: {}", s.bytes_compacted);
            let _ = writeln!(out, "\t\tWrites slowed by compaction backlog: {}", s.write_slowdowns);
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "----------------");
    }
    Ok(out)
}

fn compactionstats(state: &AdminState) -> String {
    let engine = state.executor.engine();
    let pending: usize = engine
        .tables()
        .iter()
        .filter_map(|t| engine.table_stats(t.id).ok())
        .map(|s| s.pending_compactions)
        .sum();
    let active: Vec<nodetool::CompactionRow> = engine
        .active_compactions()
        .into_iter()
        .map(|c| nodetool::CompactionRow {
            id: c.id,
            kind: c.kind.to_string(),
            keyspace: c.keyspace,
            table: c.table,
            completed: c.completed_bytes,
            total: c.total_bytes,
        })
        .collect();
    nodetool::compactionstats(pending, &active, engine.compaction_throughput())
}

fn tablehistograms(
    state: &AdminState,
    params: &BTreeMap<String, String>,
) -> std::result::Result<String, RouteError> {
    let (Some(ks), Some(t)) = (params.get("keyspace"), params.get("table")) else {
        return Err(RouteError::Bad("tablehistograms needs keyspace and table".into()));
    };
    let ids = table_ids(state, params)?;
    let Some(id) = ids.first() else { return Err(RouteError::Bad(format!("unknown table {ks}.{t}"))) };
    let s = state.executor.engine().table_stats(*id)?;
    Ok(nodetool::tablehistograms(ks, t, &s))
}

fn metrics(state: &AdminState) -> String {
    let exec = &state.executor;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
    };
    let c = exec.coordinator().stats();
    for (name, help, v) in [
        ("sibyl_coordinator_writes_total", "Writes coordinated by this node.", c.writes),
        ("sibyl_coordinator_reads_total", "Single-partition reads coordinated by this node.", c.reads),
        ("sibyl_coordinator_range_reads_total", "Range scans coordinated by this node.", c.scans),
        ("sibyl_coordinator_unavailables_total", "Requests refused as Unavailable.", c.unavailables),
        ("sibyl_coordinator_timeouts_total", "Requests that timed out waiting for replicas.", c.timeouts),
        ("sibyl_coordinator_digest_mismatches_total", "Reads whose replicas disagreed.", c.digest_mismatches),
        ("sibyl_coordinator_read_repairs_total", "Read repair mutations sent.", c.read_repairs),
        (
            "sibyl_coordinator_speculative_retries_total",
            "Reads that also asked another replica because the contacted ones were slow.",
            c.speculative_retries,
        ),
    ] {
        metric(name, "counter", help, vec![(String::new(), v as f64)]);
    }
    if let Some(hints) = exec.coordinator().hints() {
        let h = hints.store().stats();
        for (name, kind, help, v) in [
            (
                "sibyl_hints_written_total",
                "counter",
                "Hints stored for replicas that missed writes.",
                h.written,
            ),
            ("sibyl_hints_delivered_total", "counter", "Hints delivered and acknowledged.", h.delivered),
            (
                "sibyl_hints_failed_total",
                "counter",
                "Hint deliveries that failed or timed out (retried).",
                h.failed,
            ),
            (
                "sibyl_hints_expired_total",
                "counter",
                "Hints dropped at delivery: older than their table's gc_grace.",
                h.expired,
            ),
            (
                "sibyl_hints_dropped_window_total",
                "counter",
                "Hints not stored: the replica was down longer than max_hint_window.",
                h.dropped_window,
            ),
            (
                "sibyl_hints_dropped_size_total",
                "counter",
                "Hints not stored: the host's hints reached max_hints_size_per_host.",
                h.dropped_size,
            ),
            ("sibyl_hints_corrupt_files_total", "counter", "Damaged hints files discarded.", h.corrupt_files),
            ("sibyl_hints_bytes", "gauge", "Bytes of hints on disk.", h.bytes_on_disk),
        ] {
            metric(name, kind, help, vec![(String::new(), v as f64)]);
        }
    }
    if let Some(log) = exec.coordinator().batchlog() {
        let c = log.counters();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed) as f64;
        for (name, help, v) in [
            (
                "sibyl_batchlog_stored_total",
                "Logged batches other coordinators stored here.",
                load(&c.stored),
            ),
            (
                "sibyl_batchlog_removed_total",
                "Stored batches removed once their coordinator applied them.",
                load(&c.removed),
            ),
            (
                "sibyl_batchlog_replayed_total",
                "Stored batches this node replayed (their coordinator did not finish).",
                load(&c.replayed),
            ),
            (
                "sibyl_batchlog_replay_failures_total",
                "Batch replays that failed (retried).",
                load(&c.replay_failures),
            ),
            ("sibyl_batchlog_corrupt_total", "Damaged batch files set aside.", load(&c.corrupt)),
        ] {
            metric(name, "counter", help, vec![(String::new(), v)]);
        }
        metric(
            "sibyl_batchlog_pending",
            "gauge",
            "Logged batches stored here, waiting for removal or replay.",
            vec![(String::new(), log.pending().len() as f64)],
        );
    }
    let peers = state.cluster.peers();
    metric(
        "sibyl_peer_up",
        "gauge",
        "Whether gossip believes the peer alive (1) or down (0).",
        peers
            .iter()
            .map(|p| (format!("{{peer=\"{}\"}}", p.endpoint), if p.up { 1.0 } else { 0.0 }))
            .collect(),
    );
    let m = state.cluster.messaging().stats();
    metric(
        "sibyl_messaging_dropped_total",
        "counter",
        "Internode messages dropped (queue full, expired, filtered or too large), per verb.",
        m.verbs
            .iter()
            .map(|(v, s)| {
                (format!("{{verb=\"{}\"}}", sibyl_cluster::verbs::verb_name(*v)), s.dropped() as f64)
            })
            .collect(),
    );
    metric(
        "sibyl_messaging_pending_messages",
        "gauge",
        "Internode messages queued for a peer.",
        m.peers.iter().map(|(p, s)| (format!("{{peer=\"{p}\"}}"), s.pending_messages as f64)).collect(),
    );
    metric(
        "sibyl_messaging_timeouts_total",
        "counter",
        "Requests to a peer that timed out.",
        m.peers.iter().map(|(p, s)| (format!("{{peer=\"{p}\"}}"), s.timeouts as f64)).collect(),
    );
    let schema = exec.schema();
    let mut live = Vec::new();
    let mut reads = Vec::new();
    let mut writes = Vec::new();
    let mut sstables = Vec::new();
    for (ks, k) in schema.keyspaces() {
        for (t, meta) in &k.tables {
            if let Ok(s) = exec.engine().table_stats(meta.id) {
                let l = format!("{{keyspace=\"{ks}\",table=\"{t}\"}}");
                live.push((l.clone(), s.live_disk_bytes as f64));
                reads.push((l.clone(), s.reads as f64));
                writes.push((l.clone(), s.writes as f64));
                sstables.push((l, s.sstable_count as f64));
            }
        }
    }
    metric("sibyl_table_live_disk_bytes", "gauge", "Bytes of the table's live SSTables.", live);
    metric("sibyl_table_local_reads_total", "counter", "Partition reads served by this replica.", reads);
    metric("sibyl_table_local_writes_total", "counter", "Mutations applied by this replica.", writes);
    metric("sibyl_table_sstables", "gauge", "Live SSTables of the table.", sstables);
    let chunks = exec.engine().chunk_cache_stats();
    let keys = exec.engine().key_cache_stats();
    for (name, kind, help, value) in [
        ("sibyl_chunk_cache_hits_total", "counter", "Chunk cache hits.", chunks.hits),
        ("sibyl_chunk_cache_misses_total", "counter", "Chunk cache misses.", chunks.misses),
        (
            "sibyl_key_cache_hits_total",
            "counter",
            "Key cache hits (partition index lookups skipped).",
            keys.hits,
        ),
        ("sibyl_key_cache_misses_total", "counter", "Key cache misses.", keys.misses),
        ("sibyl_key_cache_entries", "gauge", "Key cache entries.", keys.entries),
    ] {
        metric(name, kind, help, vec![(String::new(), value as f64)]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_percent_escapes() {
        let q = parse_query("keyspace=ks&key=a%3Ab+c&empty");
        assert_eq!(q.get("key").map(String::as_str), Some("a:b c"));
        assert_eq!(q.get("empty").map(String::as_str), Some(""));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
