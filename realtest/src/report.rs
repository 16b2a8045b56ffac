//! End-of-run console summary: skips grouped by reason, leaks found after the run.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::outcome::{Outcome, TestRecord};

/// "skipped, by reason:" followed by one line per distinct reason with its count.
pub fn skip_summary(records: &[TestRecord]) -> Option<String> {
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records {
        if let Outcome::Skipped { reason, .. } = &record.outcome {
            *reasons.entry(reason.as_str()).or_default() += 1;
        }
    }
    if reasons.is_empty() {
        return None;
    }
    let mut text = String::from("skipped, by reason:\n");
    for (reason, count) in reasons {
        let _ = writeln!(text, "  {count:>4}  {reason}");
    }
    Some(text)
}
