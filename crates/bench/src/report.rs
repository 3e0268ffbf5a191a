//! Figures, medians over runs, ratios to the floor, the table and the JSON file.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::cli::RunArgs;
use crate::scenario::Kind;

#[derive(Clone, Debug)]
pub struct Figure {
    pub key: &'static str,
    pub label: &'static str,
    pub value: f64,
    pub higher_is_better: bool,
    /// The project's target for this figure, as text.
    pub target: Option<&'static str>,
}

impl Figure {
    pub fn higher(key: &'static str, label: &'static str, value: f64) -> Figure {
        Figure {
            key,
            label,
            value,
            higher_is_better: true,
            target: None,
        }
    }

    pub fn lower(key: &'static str, label: &'static str, value: f64) -> Figure {
        Figure {
            higher_is_better: false,
            ..Figure::higher(key, label, value)
        }
    }

    pub fn target(mut self, target: &'static str) -> Figure {
        self.target = Some(target);
        self
    }
}

/// The `p`-quantile (0..1) of microsecond samples, in milliseconds.
pub fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// How many times worse than the floor (1.0 = as good; > 1 = worse).
fn ratio(fig: &Figure, ours: f64, floor: f64) -> f64 {
    if fig.higher_is_better {
        floor / ours
    } else {
        ours / floor
    }
}

fn fmt(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() >= 1000.0 {
        let s = format!("{:.0}", v);
        let bytes = s.as_bytes();
        let mut out = String::new();
        for (i, c) in bytes.iter().enumerate() {
            if i > 0 && (bytes.len() - i) % 3 == 0 && *c != b'-' {
                out.push(',');
            }
            out.push(*c as char);
        }
        out
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// Prints the table and writes the JSON file; `runs` holds each target's runs in order.
pub fn summarize(
    kind: Kind,
    args: &RunArgs,
    generators: usize,
    runs: &[(String, Vec<Vec<Figure>>)],
) -> anyhow::Result<()> {
    let Some(first) = runs.iter().find_map(|(_, r)| r.first()) else {
        return Ok(());
    };
    let medians: Vec<(String, BTreeMap<&str, f64>)> = runs
        .iter()
        .map(|(name, rs)| {
            let m = first
                .iter()
                .map(|f| {
                    let values = rs
                        .iter()
                        .filter_map(|r| r.iter().find(|g| g.key == f.key).map(|g| g.value))
                        .collect();
                    (f.key, median(values))
                })
                .collect();
            (name.clone(), m)
        })
        .collect();
    let floor = medians.iter().find(|(n, _)| n == "floor").map(|(_, m)| m);
    let ours = medians.iter().find(|(n, _)| n != "floor").map(|(_, m)| m);

    let load = &args.load;
    println!();
    println!(
        "scenario {} | sockets {} | rooms {} | {} s measured after {} s warm-up | median of {} runs | {} generator process(es) | {} cores, shared and noisy",
        kind.name(),
        kind.conns(load),
        kind.rooms(load),
        load.duration,
        load.warmup,
        args.target.runs,
        generators,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut header = format!("{:<34}", "figure");
    for (name, _) in &medians {
        header.push_str(&format!("{name:>16}"));
    }
    header.push_str(&format!("{:>14}{:>16}", "vs floor", "target"));
    println!("{header}");
    let mut ratios = BTreeMap::new();
    for f in first {
        let mut line = format!("{:<34}", f.label);
        for (_, m) in &medians {
            line.push_str(&format!("{:>16}", fmt(m[f.key])));
        }
        let r = match (ours, floor) {
            (Some(o), Some(fl)) if fl[f.key] != 0.0 && o[f.key] != 0.0 => {
                ratio(f, o[f.key], fl[f.key])
            }
            _ => f64::NAN,
        };
        if r.is_finite() {
            ratios.insert(f.key, r);
            line.push_str(&format!("{:>13.2}x", r));
        } else {
            line.push_str(&format!("{:>14}", "-"));
        }
        line.push_str(&format!("{:>16}", f.target.unwrap_or("")));
        println!("{line}");
    }
    if floor.is_some() {
        println!("(vs floor: how many times worse than the bare WebSocket floor; 1.00x = as good)");
    }

    if let Some(path) = &args.target.json {
        let targets: serde_json::Map<String, Value> = runs
            .iter()
            .zip(&medians)
            .map(|((name, rs), (_, m))| {
                let rs: Vec<Value> = rs
                    .iter()
                    .map(|r| {
                        Value::Object(
                            r.iter()
                                .map(|f| (f.key.to_owned(), json!(f.value)))
                                .collect(),
                        )
                    })
                    .collect();
                (name.clone(), json!({"runs": rs, "median": m}))
            })
            .collect();
        let doc = json!({
            "scenario": kind.name(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "machine": {
                "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "note": "load generator on the same machine; shared, noisy",
            },
            "params": {
                "sockets": kind.conns(load),
                "rooms": kind.rooms(load),
                "duration_s": load.duration,
                "warmup_s": load.warmup,
                "runs": args.target.runs,
                "generators": generators,
                "hb_secs": load.hb_secs,
                "per_conn_rate": load.per_conn_rate,
                "churn_rate": load.rate,
                "hold_ms": load.hold_ms,
                "members": load.members,
                "updates_per_s": load.updates,
                "server_env": args.target.server_env,
            },
            "figures": first.iter().map(|f| json!({
                "key": f.key, "label": f.label, "higher_is_better": f.higher_is_better, "target": f.target,
            })).collect::<Vec<_>>(),
            "targets": targets,
            "ratio_to_floor": ratios,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)? + "\n")?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_medians() {
        let s: Vec<u32> = (1..=1000).map(|v| v * 1000).collect();
        assert_eq!(percentile_ms(&s, 0.5), 500.0);
        assert_eq!(percentile_ms(&s, 0.99), 990.0);
        assert_eq!(percentile_ms(&s, 0.999), 999.0);
        assert!(percentile_ms(&[], 0.5).is_nan());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(fmt(1234567.0), "1,234,567");
    }
}
