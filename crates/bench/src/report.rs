//! The Markdown report, and the summary table it puts into the README.

use std::fmt::Write as _;
use std::path::Path;

use crate::usher::{KEYCLOAK, OURS};
use crate::{EngineReport, Measured, Report};

const START: &str = "<!-- benchmark-summary:start -->";
const END: &str = "<!-- benchmark-summary:end -->";

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}

/// Server CPU microseconds per request at full load: a cost that does not depend on whether
/// the server or the load generator (sharing the cores) ran out first.
fn cpu_per_request(m: &Measured) -> Option<f64> {
    (m.throughput.per_second > 0.0).then(|| m.throughput.server_cores / m.throughput.per_second * 1e6)
}

fn cpu(m: &Option<Measured>) -> Option<f64> {
    m.as_ref().and_then(cpu_per_request)
}

fn rate(m: &Option<Measured>) -> Option<f64> {
    m.as_ref().map(|m| m.throughput.per_second)
}

/// How a summary row reads one engine's figures.
type Cell = Box<dyn Fn(&EngineReport) -> String>;

/// One row per ratio, one column per engine.
fn summary(report: &Report) -> String {
    let mut rows: Vec<(String, Cell)> = Vec::new();
    let ours = report.hash_ours.as_ref().map(|h| h.per_second);
    let keycloak = report.hash_keycloak.as_ref().map(|h| h.per_second);
    rows.push((
        format!("Password sign-in (JSON API) ÷ raw Argon2id, {}", OURS.label()),
        Box::new(move |e| ratio(rate(&e.sign_in), ours)),
    ));
    rows.push((
        format!("Password sign-in (JSON API) ÷ raw Argon2id, Keycloak's {}", KEYCLOAK.label()),
        Box::new(move |e| ratio(rate(&e.sign_in_keycloak), keycloak)),
    ));
    let cores = report.machine.cores.max(1) as f64;
    rows.push((
        "Password sign-ins per second per core at Keycloak's parameters (Keycloak's guide: about 15)".into(),
        Box::new(move |e| num(rate(&e.sign_in_keycloak).map(|r| r / cores))),
    ));
    rows.push((
        "TOTP second factor ÷ bare axum handler (requests per second)".into(),
        Box::new(|e| ratio(rate(&e.second_factor), rate(&e.bare))),
    ));
    rows.push((
        "Session-checked JSON endpoint ÷ bare axum handler".into(),
        Box::new(|e| ratio(rate(&e.session_check), rate(&e.bare))),
    ));
    rows.push((
        "Server CPU per request: TOTP second factor ÷ bare axum handler".into(),
        Box::new(|e| ratio(cpu(&e.second_factor), cpu(&e.bare))),
    ));
    rows.push((
        "Server CPU per request: session-checked endpoint ÷ bare axum handler".into(),
        Box::new(|e| ratio(cpu(&e.session_check), cpu(&e.bare))),
    ));
    for size in &report.settings.sweep_sizes {
        let size = *size;
        rows.push((
            format!("Deregistration sweep ÷ one SQL UPDATE, {} accounts (time)", thousands(size)),
            Box::new(move |e| {
                let s = e.sweeps.iter().find(|s| s.accounts == size);
                ratio(s.map(|s| s.sweep_seconds), s.map(|s| s.update_seconds))
            }),
        ));
    }
    rows.push((
        "Emails per second from the outbox to a local SMTP sink (target: 500 or more)".into(),
        Box::new(|e| num(e.delivery.as_ref().map(|d| d.per_second))),
    ));
    rows.push((
        "Usher ÷ django-allauth: whole sign-ins (password + TOTP) per second".into(),
        Box::new(|e| ratio(rate(&e.full_sign_in), rate(&e.peer_full_sign_in))),
    ));
    rows.push((
        "Usher ÷ django-allauth: p99 latency of the whole sign-in at half load".into(),
        Box::new(|e| {
            ratio(
                e.full_sign_in.as_ref().map(|m| m.latency.p99_ms),
                e.peer_full_sign_in.as_ref().map(|m| m.latency.p99_ms),
            )
        }),
    ));
    rows.push((
        "Usher ÷ django-allauth: resident memory after the whole-sign-in phases".into(),
        Box::new(|e| ratio(e.usher_memory_after_flow.map(|m| m.rss_mib), e.peer_memory.map(|m| m.rss_mib))),
    ));
    rows.push((
        "OpenID Connect whole code flows per second per core (authorize, continue, token, userinfo; signed in already)"
            .into(),
        Box::new(move |e| num(rate(&e.oidc_code_flow).map(|r| r / cores))),
    ));
    rows.push((
        "Token refreshes per second per core (Keycloak's guide: about 120 per vCPU)".into(),
        Box::new(move |e| num(rate(&e.oidc_refresh).map(|r| r / cores))),
    ));
    rows.push((
        "Server CPU per request: token endpoint (refresh) ÷ bare axum handler".into(),
        Box::new(|e| ratio(cpu(&e.oidc_refresh), cpu(&e.bare))),
    ));
    let mut out = header(report, "Ratio");
    for (label, cell) in rows {
        let cells: Vec<String> = report.engines.iter().map(|(_, e)| cell(e)).collect();
        let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
    }
    out
}

fn header(report: &Report, first: &str) -> String {
    let names: Vec<&str> = report.engines.iter().map(|(e, _)| e.label()).collect();
    let rule: Vec<&str> = names.iter().map(|_| "---:").collect();
    format!("| {first} | {} |\n|---|{}|\n", names.join(" | "), rule.join("|"))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn paths(engine: &EngineReport) -> Vec<(&'static str, &Option<Measured>)> {
    vec![
        ("Bare axum handler (GET)", &engine.bare),
        ("Session-checked JSON endpoint (GET /api/v1/session)", &engine.session_check),
        ("TOTP second factor (POST /api/v1/sign-in/second-factor)", &engine.second_factor),
        ("Password sign-in (POST /api/v1/sign-in), ours", &engine.sign_in),
        ("Password sign-in, Keycloak's parameters", &engine.sign_in_keycloak),
        ("Whole sign-in, Usher (password + TOTP)", &engine.full_sign_in),
        ("Whole sign-in, django-allauth (password + TOTP)", &engine.peer_full_sign_in),
        ("OpenID Connect code flow, signed in already (4 requests)", &engine.oidc_code_flow),
        ("OpenID Connect token refresh (POST /oidc/token)", &engine.oidc_refresh),
    ]
}

pub fn markdown(report: &Report) -> String {
    let s = &report.settings;
    let m = &report.machine;
    let mut out = String::new();
    let _ = writeln!(out, "# Usher benchmark report\n");
    let _ = writeln!(
        out,
        "Measured {} on {} cores ({}), {} GiB, Linux {}{}. Made by `./scripts/bench` (`usher-bench`, release build).\n",
        report.date,
        m.cores,
        m.cpu,
        m.memory_gib,
        m.kernel,
        if s.quick { ": **a quick smoke run, not a measurement**" } else { "" }
    );
    let _ = writeln!(
        out,
        "Throughput is a closed loop of {} s ({} workers for the password paths, {} for the rest). Latency is an \
         open loop of {} s at {:.0}% of the throughput just measured on the same path, counted from when each request \
         was due. Server, load generator and databases share the same {} cores, so the ratios are the figures that \
         matter, not absolute times.\n",
        s.seconds,
        s.sign_in_workers,
        s.request_workers,
        s.latency_seconds,
        s.latency_load * 100.0,
        m.cores
    );
    let _ = writeln!(out, "## Ratios\n\n{}", summary(report));

    let _ = writeln!(out, "## Raw Argon2id (the `argon2` crate Usher uses, {} threads)\n", s.hash_threads);
    let _ = writeln!(out, "| Parameters | hashes per second | per core |\n|---|---:|---:|");
    for h in report.hash_ours.iter().chain(report.hash_keycloak.iter()) {
        let _ = writeln!(out, "| {} | {} | {} |", h.params.label(), num(Some(h.per_second)), num(Some(h.per_core)));
    }

    let _ = writeln!(out, "\n## Throughput and latency\n");
    let _ = writeln!(
        out,
        "| Engine | Path | per second | server CPU (cores) | server CPU per request (µs) | load generator CPU (cores) | p50 ms | p99 ms | latency load (per second) | failed |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (engine, e) in &report.engines {
        for (label, measured) in paths(e) {
            let Some(m) = measured else { continue };
            let _ = writeln!(
                out,
                "| {} | {label} | {} | {:.2} | {} | {:.2} | {:.1} | {:.1} | {} | {} |",
                engine.label(),
                num(Some(m.throughput.per_second)),
                m.throughput.server_cores,
                num(cpu_per_request(m)),
                m.throughput.generator_cores,
                m.latency.p50_ms,
                m.latency.p99_ms,
                num(m.latency.target_rate),
                m.throughput.failed + m.latency.failed,
            );
        }
    }

    let _ = writeln!(out, "\n## Memory (resident set size, MiB)\n");
    let _ = writeln!(
        out,
        "| Engine | Usher idle | Usher with {} sessions used | Usher peak | Usher after password sign-ins | Usher after whole sign-ins | django-allauth (all workers) after whole sign-ins |\n|---|---:|---:|---:|---:|---:|---:|",
        thousands(s.memory_sessions)
    );
    for (engine, e) in &report.engines {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            engine.label(),
            num(e.memory_idle.map(|m| m.rss_mib)),
            num(e.memory_with_sessions.map(|m| m.rss_mib)),
            num(e.memory_with_sessions.map(|m| m.peak_mib)),
            num(e.memory_after_sign_in.map(|m| m.rss_mib)),
            num(e.usher_memory_after_flow.map(|m| m.rss_mib)),
            num(e.peer_memory.map(|m| m.rss_mib)),
        );
    }

    let _ = writeln!(out, "\n## Deregistration sweep (`usher lifecycle run`) against one SQL UPDATE\n");
    let _ = writeln!(
        out,
        "| Engine | accounts | sweep (s) | accounts per second | one UPDATE (s) | sweep ÷ UPDATE |\n|---|---:|---:|---:|---:|---:|"
    );
    for (engine, e) in &report.engines {
        for w in &e.sweeps {
            let _ = writeln!(
                out,
                "| {} | {} | {:.2} | {} | {:.3} | {} |",
                engine.label(),
                thousands(w.accounts),
                w.sweep_seconds,
                num(Some(w.accounts as f64 / w.sweep_seconds.max(1e-9))),
                w.update_seconds,
                ratio(Some(w.sweep_seconds), Some(w.update_seconds)),
            );
        }
    }
    let _ = writeln!(out, "\n## Delivery: the outbox of one `usher serve` to a local SMTP sink\n");
    let _ = writeln!(
        out,
        "| Engine | emails | seconds | emails per second | SMTP connections | sent twice after a lost answer | one Message-ID each | other duplicates |\n|---|---:|---:|---:|---:|---:|---|---:|"
    );
    for (engine, e) in &report.engines {
        let Some(d) = &e.delivery else { continue };
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {} | {} | {} | {} | {} |",
            engine.label(),
            thousands(d.messages),
            d.seconds,
            num(Some(d.per_second)),
            d.connections,
            d.retried,
            if d.message_id_stable { "yes" } else { "**no**" },
            d.unexpected_duplicates,
        );
    }
    if let Some(v) = &report.peer_versions {
        let _ = writeln!(out, "\nThe peer: {v}, gunicorn sync workers (2 × cores + 1), Argon2id m=19 MiB t=2 p=1.");
    }
    let failures: Vec<String> = report
        .engines
        .iter()
        .flat_map(|(engine, e)| {
            paths(e).into_iter().filter_map(move |(label, m)| {
                let m = m.as_ref()?;
                let first = m.throughput.first_failure.as_ref().or(m.latency.first_failure.as_ref())?;
                Some(format!("- {} / {label}: {first}", engine.label()))
            })
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\n## Unexpected answers\n\n{}", failures.join("\n"));
    }
    out
}

/// Replaces the README's summary between its markers with this run's.
pub fn update_readme(path: &Path, report: &Report) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        anyhow::bail!("{} has no {START} … {END} markers", path.display());
    };
    let date = report.date.get(..10).unwrap_or(&report.date);
    let table = format!(
        "{START}\nMeasured on {date} on {} cores ({}); the whole report is in \
         [bench/results/report.md](bench/results/report.md).\n\n{}{END}",
        report.machine.cores,
        report.machine.cpu,
        summary(report)
    );
    let updated = format!("{}{table}{}", &text[..start], &text[end + END.len()..]);
    std::fs::write(path, updated)?;
    Ok(())
}
