//! The scenario's results: each step passes, fails, or is not landed yet (a part of
//! skerry it needs does not exist; it says which part, loudly, and counts as skipped,
//! or as failed when every step is required), with its duration; figures are printed
//! as they are measured and again in the summary.

use std::time::{Duration, Instant};

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed(String),
    NotLanded(String),
}

#[derive(Debug)]
struct Step {
    name: String,
    outcome: Outcome,
    took: Duration,
}

/// Collects step outcomes and figures.
#[derive(Debug, Default)]
pub struct Report {
    steps: Vec<Step>,
    figures: Vec<(String, String)>,
}

impl Report {
    /// Runs one step, printing its start, outcome and timing.
    pub fn step<F>(&mut self, name: &str, f: F) -> &Outcome
    where
        F: FnOnce(&mut Self) -> Outcome,
    {
        println!("\n=== step {name}");
        let start = Instant::now();
        let outcome = f(self);
        let took = start.elapsed();
        match &outcome {
            Outcome::Passed => println!("=== step {name}: PASSED in {:.2} s", took.as_secs_f64()),
            Outcome::Failed(why) => {
                println!("=== step {name}: FAILED in {:.2} s: {why}", took.as_secs_f64())
            }
            Outcome::NotLanded(part) => println!(
                "=== step {name}: NOT LANDED: {part} (skipped; SKERRY_HIL_REQUIRE_ALL=1 counts it as FAILED and fails the run)"
            ),
        }
        self.steps.push(Step {
            name: name.to_owned(),
            outcome,
            took,
        });
        &self.steps[self.steps.len() - 1].outcome
    }

    /// Records and prints a figure.
    pub fn figure(&mut self, what: &str, value: String) {
        println!("FIGURE {what}: {value}");
        self.figures.push((what.to_owned(), value));
    }

    /// Steps that failed (not counting not-landed ones).
    pub fn failed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
            .count()
    }

    /// Steps whose parts have not landed.
    pub fn not_landed(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| matches!(s.outcome, Outcome::NotLanded(_)))
            .count()
    }

    /// Prints the summary table; the last line reads `HIL: N passed, M failed, K
    /// skipped`: not-landed steps are the skipped ones, or failed ones when
    /// `require_all` (SKERRY_HIL_REQUIRE_ALL=1).
    pub fn print_summary(&self, require_all: bool) {
        println!("\n=== HIL summary");
        for s in &self.steps {
            let status = match &s.outcome {
                Outcome::Passed => "PASSED".to_owned(),
                Outcome::Failed(why) => format!("FAILED: {why}"),
                Outcome::NotLanded(part) if require_all => format!("FAILED (NOT LANDED: {part})"),
                Outcome::NotLanded(part) => format!("SKIPPED (NOT LANDED: {part})"),
            };
            println!("{:<44} {:>7.2} s  {status}", s.name, s.took.as_secs_f64());
        }
        for (what, value) in &self.figures {
            println!("FIGURE {what}: {value}");
        }
        let (failed, skipped) = summary_counts(self.failed(), self.not_landed(), require_all);
        let passed = self.steps.len() - self.failed() - self.not_landed();
        println!("HIL: {passed} passed, {failed} failed, {skipped} skipped (not landed)");
    }
}

/// (failed, skipped) for the closing line.
fn summary_counts(failed: usize, not_landed: usize, require_all: bool) -> (usize, usize) {
    if require_all {
        (failed + not_landed, 0)
    } else {
        (failed, not_landed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_landed_steps_are_skipped_unless_every_step_is_required() {
        let mut r = Report::default();
        r.step("ok", |_| Outcome::Passed);
        r.step("bad", |_| Outcome::Failed("x".into()));
        r.step("later", |_| Outcome::NotLanded("y".into()));
        assert_eq!((r.failed(), r.not_landed()), (1, 1));
        assert_eq!(summary_counts(r.failed(), r.not_landed(), false), (1, 1));
        assert_eq!(summary_counts(r.failed(), r.not_landed(), true), (2, 0));
    }
}
