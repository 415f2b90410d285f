//! Cold-start harness: starts each release bootstrap the way Lambda does, against a local
//! Runtime API and a local AWS endpoint, and prints a markdown table of init time, first and
//! warm invocation latency and peak memory, each also as a ratio to a hello-world baseline.
//!
//! Usage: `cold-start --help`. The binaries are looked up next to this one by default, so
//! build them in the same `cargo build --release` (`scripts/bench-cold-start` does both).
//! Every figure is the median over the runs; each run is a new process, and the functions
//! take turns so that noise spreads evenly.

mod aws;
mod functions;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};

use clap::Parser;
use std::time::{Duration, Instant};

use aws::AwsStub;
use functions::{Function, REGION};
use runtime_api::{RuntimeApi, Startup};

/// Bytes in a MiB.
const MIB: f64 = 1024.0 * 1024.0;

/// How long a bootstrap may take to ask for its first event before the run fails.
const INIT_LIMIT: Duration = Duration::from_secs(10);

/// Starts each release bootstrap as Lambda would and reports its cold and warm figures.
#[derive(Debug, Parser)]
#[command(about)]
struct Options {
    /// Processes started per function.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,

    /// Warm invocations per process after the first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    warm: u16,

    /// Where the release binaries are (default: next to this binary).
    #[arg(long)]
    bin_dir: Option<PathBuf>,

    /// Add or override a variable in every function's environment (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    extra_env: Vec<(String, String)>,

    /// Pass the functions' logs through to stderr.
    #[arg(long)]
    show_logs: bool,
}

/// What one run of one function measured.
struct Run {
    init: Duration,
    first: Duration,
    warm_median_us: f64,
    peak_rss_kib: u64,
}

/// Every run of one function, and the AWS calls they made.
#[derive(Default)]
struct Summary {
    binary_bytes: u64,
    runs: Vec<Run>,
    calls: BTreeMap<String, u64>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut options = Options::parse();
    if options.bin_dir.is_none() {
        options.bin_dir = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(Path::to_owned));
    }

    let load_before = load_average();
    match measure(&options).await {
        Ok(summaries) => {
            let load = format!("{load_before} before, {} after", load_average());
            print!("{}", report(&options, &summaries, &load));
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("cold-start: {message}");
            ExitCode::FAILURE
        }
    }
}

fn parse_env(pair: &str) -> Result<(String, String), String> {
    let (name, value) = pair
        .split_once('=')
        .ok_or(format!("expected NAME=VALUE, got {pair}"))?;
    Ok((name.to_owned(), value.to_owned()))
}

impl Options {
    fn bin_dir(&self) -> &Path {
        self.bin_dir.as_deref().unwrap_or(Path::new("."))
    }
}

async fn measure(options: &Options) -> Result<BTreeMap<&'static str, Summary>, String> {
    for function in Function::ALL {
        let binary = options.bin_dir().join(function.binary());
        if !binary.is_file() {
            return Err(format!(
                "{} not found; build it with cargo build --release",
                binary.display()
            ));
        }
    }
    let aws = AwsStub::start()
        .await
        .map_err(|error| format!("cannot start the AWS stub: {error}"))?;

    let mut summaries: BTreeMap<&'static str, Summary> = BTreeMap::new();
    for run in 0..usize::from(options.runs) {
        for function in Function::ALL {
            let figures = run_once(function, run, options, &aws)
                .await
                .map_err(|message| format!("{} run {run}: {message}", function.binary()))?;
            let summary = summaries.entry(function.binary()).or_default();
            summary.binary_bytes = binary_size(&options.bin_dir().join(function.binary()));
            summary.runs.push(figures);
            for (operation, calls) in aws.take_calls() {
                if operation.starts_with("unexpected") {
                    return Err(format!("{}: {operation}", function.binary()));
                }
                *summary.calls.entry(operation).or_default() += calls;
            }
        }
        eprintln!("run {}/{} done", run + 1, options.runs);
    }
    Ok(summaries)
}

/// Starts the bootstrap, measures it, and kills it.
async fn run_once(
    function: Function,
    run: usize,
    options: &Options,
    aws: &AwsStub,
) -> Result<Run, String> {
    let timeout = Duration::from_secs(function.timeout_secs());
    let mut api = RuntimeApi::start(function.arn(), timeout)
        .await
        .map_err(|error| format!("cannot start the runtime api: {error}"))?;

    let mut command = Command::new(options.bin_dir().join(function.binary()));
    command
        .env_clear()
        .envs(lambda_environment(function, &api, aws))
        .envs(function.config().iter().copied())
        .envs(options.extra_env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null());
    if options.show_logs {
        command.stdout(std::io::stderr()).stderr(std::io::stderr());
    } else {
        command.stdout(Stdio::null()).stderr(Stdio::null());
    }

    let spawned = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|error| format!("cannot start: {error}"))?;
    let result = drive(function, run, options, &mut api, &mut child, spawned).await;
    // The process is killed whatever happened; a failed kill means it already exited.
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn drive(
    function: Function,
    run: usize,
    options: &Options,
    api: &mut RuntimeApi,
    child: &mut Child,
    spawned: Instant,
) -> Result<Run, String> {
    let ready = loop {
        match api.startup(Duration::from_millis(20)).await {
            Startup::Polled(at) => break at,
            Startup::Failed(body) => return Err(format!("init error: {body}")),
            Startup::Pending => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited during init: {status}"));
        }
        if spawned.elapsed() > INIT_LIMIT {
            return Err(format!("no invocation/next within {INIT_LIMIT:?}"));
        }
    };

    let limit = Duration::from_secs(function.timeout_secs());
    let mut latencies = Vec::with_capacity(usize::from(options.warm) + 1);
    for n in 0..=usize::from(options.warm) {
        let event = function.event(run, n);
        let answer = api
            .invoke(event.clone(), limit)
            .await
            .ok_or(format!("invocation {n}: no answer within {limit:?}"))?;
        match &answer.outcome {
            Ok(body) if function.succeeded(&event, body) => {}
            Ok(body) => {
                let body = String::from_utf8_lossy(body);
                return Err(format!("invocation {n}: unexpected answer {body}"));
            }
            Err(body) => {
                let body = String::from_utf8_lossy(body);
                return Err(format!("invocation {n}: error {body}"));
            }
        }
        latencies.push(answer.latency);
    }

    let peak_rss_kib = peak_rss_kib(child.id())?;
    Ok(Run {
        init: ready.saturating_duration_since(spawned),
        first: latencies[0],
        warm_median_us: median(latencies[1..].iter().copied().map(micros)),
        peak_rss_kib,
    })
}

/// What Lambda puts in every function's environment (and credentials that only the stub
/// will ever see). Nothing is inherited from the harness's own environment.
fn lambda_environment(
    function: Function,
    api: &RuntimeApi,
    aws: &AwsStub,
) -> Vec<(&'static str, String)> {
    let name = function.binary();
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.address().to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start".to_owned()),
        // As the SAM template configures both functions.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
        ("AWS_EXECUTION_ENV", "AWS_Lambda_provided.al2023".to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "cold-start".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "cold-start".to_owned()),
        ("AWS_SESSION_TOKEN", "cold-start".to_owned()),
        ("AWS_ENDPOINT_URL", aws.url()),
        // Belt and braces: nothing may leave the loopback interface.
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
}

/// The 1-minute load average, to judge how quiet the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).map_err(|error| format!("cannot read {path}: {error}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .and_then(|value| value.trim().parse().ok())
        .ok_or(format!("no VmHWM in {path}"))
}

fn report(options: &Options, summaries: &BTreeMap<&'static str, Summary>, load: &str) -> String {
    let baseline = summaries
        .get(Function::Hello.binary())
        .map(Medians::of)
        .unwrap_or_default();
    let extra_env: Vec<String> = options
        .extra_env
        .iter()
        .map(|(name, value)| format!("`{name}={value}`"))
        .collect();
    let mut out = format!(
        "Median of {} runs per function, {} warm invocations per run; ratios are to the \
         hello-world baseline. Load average (1 min): {load}.{}\n\n\
         | function | bootstrap size | init | first invocation | warm invocation | peak RSS |\n\
         |---|--:|--:|--:|--:|--:|\n",
        options.runs,
        options.warm,
        if extra_env.is_empty() {
            String::new()
        } else {
            format!(" Extra environment: {}.", extra_env.join(", "))
        },
    );
    for function in Function::ALL {
        let Some(summary) = summaries.get(function.binary()) else {
            continue;
        };
        let medians = Medians::of(summary);
        let cell = |value: f64, base: f64, unit: &str, decimals: usize| {
            if function == Function::Hello {
                format!("{value:.decimals$} {unit}")
            } else {
                format!("{value:.decimals$} {unit} ({:.2}×)", value / base)
            }
        };
        let label = if function == Function::Hello {
            format!("{} (baseline)", function.binary())
        } else {
            function.binary().to_owned()
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {} | {} | {} |\n",
            cell(medians.size_mib, baseline.size_mib, "MiB", 2),
            cell(medians.init_ms, baseline.init_ms, "ms", 2),
            cell(medians.first_ms, baseline.first_ms, "ms", 2),
            cell(medians.warm_us, baseline.warm_us, "µs", 0),
            cell(medians.rss_mib, baseline.rss_mib, "MiB", 1),
        ));
    }

    out.push_str(
        "\nSpread across runs (min – max), and AWS calls per invocation:\n\n\
         | function | init (ms) | first invocation (ms) | warm median (µs) | peak RSS (MiB) | AWS calls per invocation |\n\
         |---|--:|--:|--:|--:|---|\n",
    );
    for function in Function::ALL {
        let Some(summary) = summaries.get(function.binary()) else {
            continue;
        };
        let range = |value: fn(&Run) -> f64, decimals: usize| {
            let values = summary.runs.iter().map(value);
            let min = values.clone().fold(f64::INFINITY, f64::min);
            let max = values.fold(f64::NEG_INFINITY, f64::max);
            format!("{min:.decimals$} – {max:.decimals$}")
        };
        let invocations = (summary.runs.len() * (usize::from(options.warm) + 1)) as f64;
        let calls: Vec<String> = summary
            .calls
            .iter()
            .map(|(operation, calls)| {
                let operation = operation.rsplit('.').next().unwrap_or(operation);
                format!("{operation} {:.0}", *calls as f64 / invocations)
            })
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            function.binary(),
            range(|run| millis(run.init), 2),
            range(|run| millis(run.first), 2),
            range(|run| run.warm_median_us, 0),
            range(|run| run.peak_rss_kib as f64 / 1024.0, 1),
            if calls.is_empty() {
                "none".to_owned()
            } else {
                calls.join(", ")
            },
        ));
    }
    out
}

/// The medians of one function's runs, in the table's units.
#[derive(Default)]
struct Medians {
    size_mib: f64,
    init_ms: f64,
    first_ms: f64,
    warm_us: f64,
    rss_mib: f64,
}

impl Medians {
    fn of(summary: &Summary) -> Self {
        let runs = &summary.runs;
        Self {
            size_mib: summary.binary_bytes as f64 / MIB,
            init_ms: median(runs.iter().map(|run| millis(run.init))),
            first_ms: median(runs.iter().map(|run| millis(run.first))),
            warm_us: median(runs.iter().map(|run| run.warm_median_us)),
            rss_mib: median(runs.iter().map(|run| run.peak_rss_kib as f64 / 1024.0)),
        }
    }
}

fn binary_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |metadata| metadata.len())
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_unstable_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
