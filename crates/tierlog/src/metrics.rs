//! Metrics in Prometheus text exposition format, rendered on request from live state.

use std::fmt::Write;

use ledger::ManagedLedgerFactory;

/// One per-managed-ledger metric family: name, type, help, and how to read it from the stats.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&ledger::LedgerStats) -> i64,
}

const FAMILIES: [Family; 4] = [
    Family {
        name: "tierlog_ml_entries_added_total",
        kind: "counter",
        help: "Entries appended since the broker started.",
        value: |s| s.entries_added as i64,
    },
    Family {
        name: "tierlog_ml_entries",
        kind: "gauge",
        help: "Entries stored in the managed ledger.",
        value: |s| s.number_of_entries,
    },
    Family {
        name: "tierlog_ml_storage_bytes",
        kind: "gauge",
        help: "Payload bytes stored in the managed ledger.",
        value: |s| s.total_size,
    },
    Family {
        name: "tierlog_ml_ledgers",
        kind: "gauge",
        help: "Ledgers in the managed ledger's list.",
        value: |s| s.ledgers.len() as i64,
    },
];

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes the `# HELP` and `# TYPE` lines of a metric family.
fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders every metric of the broker.
pub async fn render(
    factory: &ManagedLedgerFactory,
    object_stores: &offload::counting::RequestCounters,
) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "tierlog_build_info",
        "gauge",
        "Build of the running broker.",
    );
    let _ = writeln!(
        out,
        "tierlog_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let mut ledgers = factory.open_ledgers().await;
    ledgers.sort_by(|a, b| a.name().cmp(b.name()));
    header(
        &mut out,
        "tierlog_managed_ledgers",
        "gauge",
        "Managed ledgers open in this broker.",
    );
    let _ = writeln!(out, "tierlog_managed_ledgers {}", ledgers.len());
    let mut rows = Vec::new();
    for ml in &ledgers {
        rows.push((escape(ml.name()), ml.stats().await));
    }
    for f in &FAMILIES {
        header(&mut out, f.name, f.kind, f.help);
        for (ml, stats) in &rows {
            let _ = writeln!(
                out,
                "{}{{managed_ledger=\"{ml}\"}} {}",
                f.name,
                (f.value)(stats)
            );
        }
    }
    // Pulsar's name and labels for failed reads of offloaded ledgers.
    header(
        &mut out,
        "brk_ledgeroffloader_read_offload_error",
        "counter",
        "Reads of offloaded ledgers the tier failed (served from the hot copy or retried).",
    );
    for (ml, stats) in ledgers.iter().zip(rows.iter().map(|(_, s)| s)) {
        if let Some(topic) = protocol::TopicName::from_managed_ledger_name(ml.name()) {
            let _ = writeln!(
                out,
                "brk_ledgeroffloader_read_offload_error{{namespace=\"{}\",topic=\"{}\"}} {}",
                escape(&topic.namespace().to_string()),
                escape(&topic.to_string()),
                stats.tier_read_errors
            );
        }
    }
    {
        use std::sync::atomic::Ordering::Relaxed;
        let c = object_stores;
        header(
            &mut out,
            "tierlog_offload_requests_total",
            "counter",
            "Object store requests by operation (every location).",
        );
        for (op, v) in [
            ("get", &c.gets),
            ("put", &c.puts),
            ("upload_part", &c.parts),
            ("delete", &c.deletes),
        ] {
            let _ = writeln!(
                out,
                "tierlog_offload_requests_total{{op=\"{op}\"}} {}",
                v.load(Relaxed)
            );
        }
        header(
            &mut out,
            "tierlog_offload_bytes_total",
            "counter",
            "Bytes moved to and from the object store.",
        );
        let _ = writeln!(
            out,
            "tierlog_offload_bytes_total{{direction=\"read\"}} {}",
            c.get_bytes.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "tierlog_offload_bytes_total{{direction=\"write\"}} {}",
            c.part_bytes.load(Relaxed)
        );
    }
    out
}
