//! The command line, parsed once by clap into typed arguments. No behaviour lives here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0 success              5 storage unreachable       9 hook failed
  1 unexpected failure   6 integrity problem        10 refused (target not empty
  2 usage error          7 not found                   or out of space, source
  3 invalid policy       8 partial (e.g. copy failed)  path missing)
  4 credentials (password or storage key missing/wrong)";

#[derive(Debug, Parser)]
#[command(
    name = "lifeboat",
    version,
    about = "Disaster-recovery and backup orchestration: restic-format backups of policy-defined systems",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Policy directory (tiers, sites, repositories, systems).
    #[arg(
        long,
        global = true,
        env = "LIFEBOAT_POLICY",
        default_value = "policies"
    )]
    pub policy: PathBuf,
    /// Where lifeboat keeps its cache, locks and run journal
    /// [default: /var/lib/lifeboat as root, else ~/.local/state/lifeboat].
    #[arg(long, global = true, env = "LIFEBOAT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Never draw progress bars (they are drawn only when stderr is a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "LIFEBOAT_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info`, `lifeboat=debug` (also RUST_LOG).
    #[arg(long, global = true, env = "LIFEBOAT_LOG", default_value = "warn")]
    pub log: String,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate or print the policy.
    #[command(subcommand)]
    Policy(PolicyCommand),

    /// Create the repositories of a system (or one repository).
    #[command(after_help = "Examples:
  lifeboat init --system linfen-finance      # all repositories of the system
  lifeboat init --repo linfen-offsite     # one repository

Repositories after the first one of a system share its chunker parameters, so copies deduplicate.
An existing repository is left untouched.")]
    Init(InitArgs),

    /// Back up a system: hooks, snapshot to its first repository, copy to the others.
    #[command(after_help = "Examples:
  lifeboat backup --system linfen-finance
  lifeboat backup --system linfen-finance --all-repos     # back up to each repository directly
  lifeboat backup --system linfen-finance --json          # print the run record

The snapshot is tagged system=, tier=, site=, department=. Exit code 8 means the local backup
was made but a copy failed; the run record says which repository and why.")]
    Backup(BackupArgs),

    /// List snapshots of a system or a repository.
    #[command(after_help = "Examples:
  lifeboat snapshots --system linfen-finance
  lifeboat snapshots --repo linfen-offsite --json")]
    Snapshots(SnapshotsArgs),

    /// Restore a snapshot (or a path inside it) to a directory.
    #[command(after_help = "Examples:
  lifeboat restore --system linfen-finance --target /srv/restore
  lifeboat restore --system linfen-finance --repo linfen-offsite --snapshot 1a2b3c4d \\
                   --path /srv/finance/reports --target /tmp/reports --verify
  lifeboat restore --system linfen-finance --target /srv/restore --dry-run

The whole snapshot restores with its absolute paths below the target (target/srv/finance/...);
with --path, the contents of that path go directly into the target.")]
    Restore(RestoreArgs),

    /// Check the integrity of repositories.
    #[command(after_help = "Examples:
  lifeboat check --repo linfen-local                         # structure
  lifeboat check --repo linfen-offsite --read-data        # read every pack
  lifeboat check --system linfen-finance --read-data-subset daily/week

Subsets: n/m (packs with id % m == n), daily/week (rotates through all packs in a week), all;
10% or 500MiB pick a random subset of *up to* that size (100% may leave a pack out: use all).")]
    Check(CheckArgs),

    /// Apply a system's retention policy (prints the plan with a reason per snapshot first).
    #[command(after_help = "Examples:
  lifeboat forget --system linfen-finance --dry-run
  lifeboat forget --system linfen-finance --prune
  lifeboat forget --system linfen-finance --repo linfen-local

Immutable repositories are skipped: their retention is the object lock's.")]
    Forget(ForgetArgs),

    /// Copy a system's snapshots between its repositories (only what the target lacks).
    #[command(after_help = "Examples:
  lifeboat copy --system linfen-finance                        # first repository -> all others
  lifeboat copy --system linfen-finance --from linfen-local --to linfen-offsite")]
    Copy(CopyArgs),

    /// Run the agent of a branch server, or ask a running one what it does.
    #[command(after_help = "Examples:
  lifeboat agent --config /etc/lifeboat/agent.toml            # run (unit: deploy/)
  lifeboat agent status --config /etc/lifeboat/agent.toml     # what ran, what is next, what is late
  lifeboat agent status --config agent.toml --json

The agent runs the cron schedules of the systems assigned to its host (from the coordinator, or
from policy-dir when no [coordinator] is configured), writes every run record to a durable spool
and delivers it to the coordinator at least once. SIGTERM lets running jobs finish within
shutdown-grace. Exit code 3: agent.toml or the policy is invalid (nothing to run).")]
    Agent(AgentArgs),

    /// Run the coordinator: agents enrol, send heartbeats and run records, fetch assignments.
    #[command(after_help = "Examples:
  lifeboat coordinator --config /etc/lifeboat/coordinator.toml
  lifeboat coordinator enrol-token --host linfen-fs01 --site linfen
  lifeboat coordinator user add --name alice --role admin < alice.password

coordinator.toml:
  listen = \"127.0.0.1:8443\"
  database = \"sqlite:///var/lib/lifeboat/coordinator.db\"   # or postgres://...
  policy-dir = \"/etc/lifeboat/policies\"

It serves the agent API (/api/v1/agents/...), /healthz and /readyz over plain HTTP on loopback
(put a TLS-terminating proxy in front; allow-http = true for another address). Exit code 3:
invalid configuration or policy; 5: the database is unreachable.")]
    Coordinator(CoordinatorArgs),

    /// Load-test a running coordinator with simulated agents, or write their policy.
    #[command(after_help = "Examples:
  lifeboat fleet-sim policy --agents 1000 --systems-per-agent 5 --out /tmp/sim/policies
  lifeboat fleet-sim --coordinator http://127.0.0.1:8443 --config /tmp/sim/coordinator.toml \\
                     --agents 1000 --systems-per-agent 5 --duration 60s --coordinator-pid 4242
  lifeboat fleet-sim --coordinator http://127.0.0.1:8443 --config coordinator.toml \\
                     --agents 50 --systems-per-agent 5 --duration 10s --json

Run the coordinator with policy-dir pointing at the generated policy (hosts sim-00001...). The
simulator issues one enrolment token per host through the coordinator's database (--config is
the coordinator's own coordinator.toml), enrols every agent over HTTP, then sends heartbeats and
one run record per system per --run-every. It reports records/s, heartbeat and submit latency
(p50/p99/max), errors, the coordinator's RSS and CPU (--coordinator-pid) and its last
assessment sweep (from /metrics).")]
    FleetSim(FleetSimArgs),

    /// Disaster-recovery drills: preview a plan, start, follow, approve, abort; sealed records.
    #[command(after_help = DRILL_HELP)]
    Drill(DrillArgs),

    /// Run the example bank on this machine: coordinator and one agent per host, in one process.
    #[command(after_help = UP_HELP)]
    Up(UpArgs),

    /// The example bank end to end: data, backups, off-site copies, a site-loss drill, reports.
    #[command(after_help = DEMO_HELP)]
    Demo(DemoArgs),

    /// The quarterly recovery-objectives report (standards §4.2) from the coordinator's database.
    #[command(after_help = REPORT_HELP)]
    Report(ReportArgs),
}

const REPORT_HELP: &str = "\
Examples:
  lifeboat report                                        # last complete quarter, HTML on stdout
  lifeboat report --quarter 2026Q4 --lang zh-CN --out q4.html
  lifeboat report --quarter 2026Q4 --format pdf --out q4.pdf   # needs chromium, fonts-noto-cjk
  lifeboat report --quarter 2026Q4 --format csv --out q4.csv   # one row per system × scenario
  lifeboat report --quarter 2026Q4 --format json | jq .summary

Quarters are calendar quarters in the head-office site's time zone. A quarter not yet over is
measured up to now and marked provisional. Reads the database and policy named by
coordinator.toml; audited as cli:<login>.

Exit codes:
  0 written                  3 invalid coordinator.toml or policy
  1 unexpected failure       5 database unreachable
  2 usage error (a bad --quarter, or one that has not started)";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The quarter, e.g. 2026Q4 [default: the last complete quarter].
    #[arg(long)]
    pub quarter: Option<crate::report::quarterly::Quarter>,
    /// The language of the HTML, PDF and CSV text.
    #[arg(long, value_enum, default_value_t = crate::i18n::Lang::En)]
    pub lang: crate::i18n::Lang,
    #[arg(long, value_enum, default_value_t = crate::report::quarterly::Format::Html)]
    pub format: crate::report::quarterly::Format,
    /// Write to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The coordinator's configuration file (its database and policy-dir).
    #[arg(
        long,
        env = "LIFEBOAT_COORDINATOR_CONFIG",
        default_value = "/etc/lifeboat/coordinator.toml"
    )]
    pub config: PathBuf,
}

const UP_HELP: &str = "\
Examples:
  lifeboat up                                   # ./lifeboat-data, http://127.0.0.1:8080/ui/
  lifeboat up --dir /tmp/bank --listen 127.0.0.1:9090

Runs the coordinator (SQLite in DIR/coordinator/) and one agent per host of the example bank
(head office, Linfen and Yuncheng branches, the Datong DR centre's standby host), all in this
process, on the example policy built into the binary, rewritten for this machine into
DIR/policies/ (written once; edit it freely): repositories are directories under DIR/storage/,
secrets are generated files under DIR/secrets/ (mode 0600), sources are under DIR/sources/, and
database dumps and drill scripts are stand-in scripts under DIR/bin/. The admin password is
generated at the first start, printed once and kept in DIR/admin.password (mode 0600). The same
DIR later is the same fleet, data and history. Ctrl-C stops everything.

Exit codes: 0 stopped by Ctrl-C/SIGTERM; 1 a component failed; 3 the policy in DIR/policies is
invalid; 5 the database cannot be opened; 10 another up/demo runs on DIR.";

const DEMO_HELP: &str = "\
Examples:
  lifeboat demo                                 # ./lifeboat-data, then exits
  lifeboat demo --dir /tmp/bank --keep-running  # then serves the dashboard until Ctrl-C

Does what `lifeboat up` does, then: writes department data for every system (ledgers with
Chinese account names, loan files, scans, office documents; deterministic, a few MiB each), runs
a backup and an off-site copy of every system twice (the second incremental and deduplicated),
starts the fleet, and runs the Linfen site-loss drill (policies/drills/linfen-site-loss.toml):
Linfen's systems are restored at the Datong standby host from off-site copies only, verified,
checked, and switched over. Its approval gate is approved by the demo as the admin user through
the drills API (a real drill waits for the business owners). Writes the drill report (HTML) and
record (JSON) to DIR/reports/ and prints a summary. Progress goes to stderr.

Exit codes: 0 done (the drill ran; its verdict is in the summary); 1 a backup, copy or the drill
could not run; 3 the policy in DIR/policies is invalid; 10 another up/demo runs on DIR.";

/// `lifeboat up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// The work directory: policy, secrets, storage, sources, database, agents' state.
    #[arg(long, default_value = "lifeboat-data")]
    pub dir: PathBuf,
    /// Where the coordinator (API and dashboard) listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

/// `lifeboat demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub up: UpArgs,
    /// Keep the fleet running afterwards, serving the dashboard, until Ctrl-C.
    #[arg(long)]
    pub keep_running: bool,
}

const DRILL_HELP: &str = "\
Examples:
  lifeboat drill plan linfen-site-loss --config /etc/lifeboat/coordinator.toml
  lifeboat drill run linfen-site-loss --wait
  lifeboat drill list --status running
  lifeboat drill show 1a2b3c4d
  lifeboat drill approve 1a2b3c4d declare-disaster --comment \"branch manager agreed\"
  lifeboat drill record 1a2b3c4d --out drill-record.json
  lifeboat drill verify-chain
  lifeboat drill calendar --json

Works on the coordinator's database and policy (--config is the coordinator's own
coordinator.toml), as an admin: actions are audited as cli:$USER. The running coordinator
orchestrates the drills (the replica holding the drill lease); these commands ask for drills,
read them and append approvals and aborts, which it applies at its next tick.

Exit codes:
  0 success (run --wait: the drill passed)   6 integrity (verify-chain found a break, a bundle
  1 unexpected failure (run --wait: the        differs from its sealed hash)
    drill failed, was not ready or aborted)  7 not found (plan, drill, gate step, sealed record)
  2 usage error                              8 run --wait: passed with conditions; calendar:
  3 invalid coordinator.toml or policy         something is overdue
  5 database unreachable                    10 refused (a drill of that plan is active already,
                                               the gate is not waiting, the drill has ended)";

#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The coordinator's configuration file (its database and policy-dir).
    #[arg(
        long,
        env = "LIFEBOAT_COORDINATOR_CONFIG",
        default_value = "/etc/lifeboat/coordinator.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: DrillCommand,
}

#[derive(Debug, Subcommand)]
pub enum DrillCommand {
    /// Preview a drill plan: per system, in restore order, the snapshot it would restore and
    /// why newer ones are passed over. Writes nothing.
    #[command(after_help = "Examples:
  lifeboat drill plan linfen-site-loss
  lifeboat drill plan branch-ransomware --at 2025-06-01T02:00:00Z
  lifeboat drill plan linfen-site-loss --json | jq '.systems[] | {system, chosen: .selection.chosen}'

Exit code 0 whenever the preview could be made, even when a system has no restore point (the
drill would then end not-ready: the preview says why); 7 when the plan is not in the policy.")]
    Plan {
        /// The plan's id (`[drills.<id>]` under the policy's drills/).
        name: String,
        /// Preview as if the drill started at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<jiff::Timestamp>,
    },

    /// Ask for a drill of a plan; the coordinator starts it (now, or at --at).
    #[command(after_help = "Examples:
  lifeboat drill run linfen-site-loss                       # prints the drill's id
  lifeboat drill run yuncheng-full-switchover --at 2025-06-07T01:00:00Z
  lifeboat drill run linfen-site-loss --wait                # follow it to its verdict
  lifeboat drill run linfen-site-loss --disaster-at 2025-06-07T02:00:00+08:00
                           # what if Linfen had been lost at 02:00: restore what was there then

Refused (exit 10) while a drill of the same plan is scheduled or running. With --wait, prints
phase changes and new log lines every second until the record is sealed, then exits 0 when the
verdict is pass, 8 when it is pass-with-conditions, 1 when it failed, was not ready or was
aborted.")]
    Run {
        /// The plan's id.
        name: String,
        /// Start at this instant (RFC 3339) instead of now.
        #[arg(long)]
        at: Option<jiff::Timestamp>,
        /// Declare the disaster at this earlier instant (RFC 3339, at or before the start):
        /// restore points are chosen as they were then and the achieved RPO is measured from it;
        /// the RTO is still measured from the drill's start.
        #[arg(long)]
        disaster_at: Option<jiff::Timestamp>,
        /// Follow the drill until it has ended; the exit code is its verdict.
        #[arg(long)]
        wait: bool,
    },

    /// List drills, newest first.
    #[command(after_help = "Examples:
  lifeboat drill list
  lifeboat drill list --plan linfen-site-loss --status finished --json")]
    List {
        /// Only drills of this plan.
        #[arg(long)]
        plan: Option<String>,
        /// Only drills in this status.
        #[arg(long, value_enum)]
        status: Option<DrillStatusArg>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },

    /// Show a drill's live state: phase, timeline marks, steps, systems, readiness, recent log,
    /// and its verdict and hashes once sealed.
    #[command(after_help = "Examples:
  lifeboat drill show 1a2b3c4d                 # a unique prefix of the id is enough
  lifeboat drill show 1a2b3c4d-... --json | jq .state.steps")]
    Show {
        /// The drill id (or a unique prefix of at least 4 characters).
        id: String,
    },

    /// Approve a gate step that is waiting (as an admin).
    #[command(after_help = "Examples:
  lifeboat drill approve 1a2b3c4d declare-disaster
  lifeboat drill approve 1a2b3c4d business-sign-off --comment \"tellers verified balances\"

Exit code 10 when the step is not a gate or is not waiting now; 7 when there is no such step.")]
    Approve {
        id: String,
        /// The gate step's name, as the plan and `drill show` name it.
        step: String,
        #[arg(long, default_value = "")]
        comment: String,
    },

    /// End a drill: a scheduled one is called off; a running one is aborted at the next tick
    /// (open tasks dropped, clean-up, its record sealed as aborted).
    #[command(after_help = "Examples:
  lifeboat drill abort 1a2b3c4d --reason \"standby host needed for a real incident\"

Exit code 10 when the drill has ended already.")]
    Abort {
        id: String,
        #[arg(long, default_value = "")]
        reason: String,
    },

    /// Print (or write) a drill's sealed record: the exact JSON text its hash is over, or the
    /// drill report (standards §4.1) rendered from it as HTML or PDF, in English or Chinese.
    #[command(after_help = "Examples:
  lifeboat drill record 1a2b3c4d > record.json
  lifeboat drill record 1a2b3c4d --out /srv/audit/drill-2025-06.json
  lifeboat drill record 1a2b3c4d --format html --lang zh-CN --out drill-report.html
  lifeboat drill record 1a2b3c4d --format pdf --lang zh-CN --out drill-report.pdf

A PDF is printed with headless Chromium (LIFEBOAT_CHROMIUM, else chromium on PATH) and needs a
Chinese font for Chinese text (Debian: apt-get install chromium fonts-noto-cjk).

Exit code 7 when the drill has no sealed record yet; 1 when the PDF cannot be printed.")]
    Record {
        id: String,
        /// Write it to this file instead of standard output (required for pdf).
        #[arg(long)]
        out: Option<PathBuf>,
        /// json: the sealed record as it is hashed; html or pdf: the drill report.
        #[arg(long, value_enum, default_value_t = RecordFormat::Json)]
        format: RecordFormat,
        /// The report's language (html and pdf).
        #[arg(long, value_enum, default_value_t = crate::i18n::Lang::En)]
        lang: crate::i18n::Lang,
    },

    /// Write a drill's evidence bundle (tar + zstd) and check it against its sealed sha256.
    #[command(after_help = "Examples:
  lifeboat drill bundle 1a2b3c4d --out drill-evidence.tar.zst
  zstd -dc drill-evidence.tar.zst | tar -t

Exit code 6 when the bundle's sha256 differs from the one in the sealed record.")]
    Bundle {
        id: String,
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
    },

    /// Recompute every sealed drill record's hash and link (tamper evidence).
    #[command(after_help = "Examples:
  lifeboat drill verify-chain
  lifeboat drill verify-chain --json

Prints \"chain of N drill records intact (head <hash>)\", or names the first drill where the
chain breaks and exits 6.")]
    VerifyChain,

    /// Drills due: per plan, the regulatory calendar, and systems never drilled or overdue.
    #[command(after_help = "Examples:
  lifeboat drill calendar
  lifeboat drill calendar --json | jq '.regulatory'

Counts sealed drills whose verdict is not fail (a system counts when its own result is not
fail). Exit code 0 when nothing is overdue, 8 when a plan, a regulatory drill or a system is
overdue.")]
    Calendar,
}

/// What `lifeboat drill record` writes.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RecordFormat {
    /// The sealed record, exactly the JSON text its hash is over.
    Json,
    /// The drill report as a self-contained HTML page.
    Html,
    /// The drill report printed to PDF.
    Pdf,
}

/// A drill's status, as `drill list --status` takes it.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum DrillStatusArg {
    Scheduled,
    Running,
    Finished,
    Aborted,
    NotReady,
    Failed,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct FleetSimArgs {
    #[command(subcommand)]
    pub command: Option<FleetSimCommand>,
    /// The coordinator's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8443")]
    pub coordinator: url::Url,
    /// The coordinator's configuration (its database receives the enrolment tokens).
    #[arg(
        long,
        env = "LIFEBOAT_COORDINATOR_CONFIG",
        default_value = "/etc/lifeboat/coordinator.toml"
    )]
    pub config: PathBuf,
    /// Simulated agents (hosts sim-00001...).
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Systems per agent.
    #[arg(long, default_value_t = 5)]
    pub systems_per_agent: usize,
    /// How long to send heartbeats and records after enrolment.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub duration: std::time::Duration,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Heartbeat period of each agent.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub heartbeat_every: std::time::Duration,
    /// Period of each agent's run batch (one record per system).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub run_every: std::time::Duration,
    /// The coordinator's process id: report its RSS and CPU from /proc.
    #[arg(long)]
    pub coordinator_pid: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum FleetSimCommand {
    /// Write the simulated fleet's policy directory (tiers, sites, repositories, systems).
    #[command(after_help = "Examples:
  lifeboat fleet-sim policy --agents 10000 --systems-per-agent 5 --out /tmp/sim/policies
  lifeboat policy check /tmp/sim/policies")]
    Policy {
        #[arg(long)]
        agents: usize,
        #[arg(long)]
        systems_per_agent: usize,
        /// The directory to write (created; existing files of the same names are replaced).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The coordinator's configuration file.
    #[arg(
        long,
        env = "LIFEBOAT_COORDINATOR_CONFIG",
        default_value = "/etc/lifeboat/coordinator.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<CoordinatorCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CoordinatorCommand {
    /// Issue a one-time enrolment token for an agent host (printed once, stored hashed).
    #[command(after_help = "Examples:
  lifeboat coordinator enrol-token --host linfen-fs01 --site linfen
  lifeboat coordinator enrol-token --host linfen-fs01 --site linfen --valid 2h > /tmp/enrol.token

Put the token in the agent's coordinator.enrol-token source (e.g. a 0600 file); the agent trades
it for its own token at its first start. Exit code 2 when the host has no system in the policy.")]
    EnrolToken {
        /// The agent's host, as systems name it (`host = ...`).
        #[arg(long)]
        host: String,
        /// The site the host stands at.
        #[arg(long)]
        site: String,
        /// How long the token may be used.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        valid: std::time::Duration,
    },

    /// Manage the people who log in to the coordinator's API.
    #[command(subcommand)]
    User(UserCommand),

    /// Copy the coordinator's SQLite database to a file, consistently, while it runs.
    #[command(after_help = "Examples:
  lifeboat coordinator backup-db --to /var/backups/lifeboat/coordinator-$(date +%F).db
  lifeboat coordinator backup-db --config /etc/lifeboat/coordinator.toml --to copy.db --json

The copy is SQLite's VACUUM INTO: one consistent snapshot, taken while the coordinator keeps
running and writing, written as a compact standalone file of mode 0600 (it holds token and
password hashes and the audit log). It is verified before it is kept: it opens, passes
quick_check and records the same applied migrations as the database. To restore, stop the
coordinator and put the copy in place of the database file (remove its -wal and -shm files).

A PostgreSQL database is refused: back it up with pg_dump, e.g.
  pg_dump --format=custom --file=lifeboat.dump 'postgres://lifeboat@db.bank.example/lifeboat'

Exit codes: 0 copied and verified; 3 invalid coordinator.toml; 5 the database is busy or
cannot be opened; 6 the copy failed verification (nothing is left at --to); 7 no database file;
10 refused (--to exists, or the database is PostgreSQL).")]
    BackupDb {
        /// The file to write (must not exist; its directory must).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is the first line of standard input (stored as an Argon2id
    /// hash only).
    #[command(after_help = "Examples:
  lifeboat coordinator user add --name alice --role admin < /run/secrets/alice.password
  printf '%s\\n' \"$PASSWORD\" | lifeboat coordinator user add --name bob --role viewer

Works without a running coordinator, so a fresh install can create its first admin; later users
are created by an admin with POST /api/v1/users. Passwords need at least 12 characters.
Exit code 2 when the name is invalid or taken, or the password is too short.")]
    Add {
        /// The login name: 1 to 64 of a-z 0-9 . _ - (starting with a letter or digit).
        #[arg(long)]
        name: String,
        /// What the user may do: viewer < operator < admin.
        #[arg(long, value_enum)]
        role: UserRole,
    },
}

/// A person's role (see the role matrix in `src/coordinator/auth.rs`).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum UserRole {
    /// Reads the fleet.
    Viewer,
    /// Reads the fleet and acts on it (enrolment tokens).
    Operator,
    /// Also manages users, tokens and agents, and reads the audit log.
    Admin,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The agent's configuration file.
    #[arg(
        long,
        env = "LIFEBOAT_AGENT_CONFIG",
        default_value = "/etc/lifeboat/agent.toml",
        global = true
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<AgentCommand>,
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Show what ran, what is next and what is late (reads the agent's state; works whether
    /// or not the agent is running).
    #[command(after_help = "Examples:
  lifeboat agent status --config /etc/lifeboat/agent.toml
  lifeboat agent status --json | jq '.jobs[] | select(.late)'

Exit code 0 when nothing is late or failing, 8 when a job is late or its last run failed.")]
    Status,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the whole policy; report every problem with file, line and key.
    #[command(after_help = "Examples:
  lifeboat policy check
  lifeboat policy check /etc/lifeboat/policies

Exit code 3 when there is any problem.")]
    Check {
        /// Policy directory (default: --policy).
        dir: Option<PathBuf>,
    },
    /// Print the normalised policy.
    #[command(after_help = "Examples:
  lifeboat policy show
  lifeboat policy show --json | jq '.systems'")]
    Show {
        /// Policy directory (default: --policy).
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = true)]
pub struct Target {
    /// A system id from the policy.
    #[arg(long)]
    pub system: Option<String>,
    /// A repository id from the policy.
    #[arg(long = "repo")]
    pub repo: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The system to back up.
    #[arg(long)]
    pub system: String,
    /// Back up to every repository directly instead of copying from the first.
    #[arg(long)]
    pub all_repos: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[arg(long)]
    pub system: Option<String>,
    #[arg(long = "repo")]
    pub repo: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[arg(long)]
    pub system: String,
    /// Repository to restore from [default: the system's first repository].
    #[arg(long = "repo")]
    pub repo: Option<String>,
    /// `latest` or a snapshot id (a unique prefix is enough).
    #[arg(long, default_value = "latest")]
    pub snapshot: String,
    /// Absolute path inside the snapshot to restore.
    #[arg(long)]
    pub path: Option<PathBuf>,
    /// Directory to restore into (created if missing; must be empty unless --overwrite).
    #[arg(long)]
    pub target: PathBuf,
    /// After restoring, re-read every file and compare it with the snapshot's content hashes.
    #[arg(long)]
    pub verify: bool,
    /// Show what would be restored; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Restore into a non-empty directory, overwriting files that differ.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub target: Target,
    /// Read and verify every pack.
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Read and verify a subset of packs: n/m, 10%, 500MiB, daily/week.
    #[arg(long)]
    pub read_data_subset: Option<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[arg(long)]
    pub system: String,
    /// Only this repository [default: every repository of the system].
    #[arg(long = "repo")]
    pub repo: Option<String>,
    /// Print the plan; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also remove data no longer referenced (two-phase: packs are deleted by a later prune).
    #[arg(long)]
    pub prune: bool,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    #[arg(long)]
    pub system: String,
    /// Source repository [default: the system's first].
    #[arg(long)]
    pub from: Option<String>,
    /// Target repositories [default: all the system's other repositories].
    #[arg(long)]
    pub to: Vec<String>,
}
