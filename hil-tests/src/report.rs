//! The scenario's results: each step passes, fails, or is not landed yet (a part of
//! skerry it needs does not exist; it counts as failed and says which part), with its
//! duration; figures are printed as they are measured and again in the summary.

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
                "=== step {name}: NOT LANDED: {part} (counts as FAILED; set SKERRY_HIL_REQUIRE_ALL=1 to fail the run)"
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

    /// Prints the summary table; the last line reads `N passed, M failed`.
    pub fn print_summary(&self) {
        println!("\n=== HIL summary");
        for s in &self.steps {
            let status = match &s.outcome {
                Outcome::Passed => "PASSED".to_owned(),
                Outcome::Failed(why) => format!("FAILED: {why}"),
                Outcome::NotLanded(part) => format!("FAILED (NOT LANDED: {part})"),
            };
            println!("{:<44} {:>7.2} s  {status}", s.name, s.took.as_secs_f64());
        }
        for (what, value) in &self.figures {
            println!("FIGURE {what}: {value}");
        }
        let passed = self.steps.len() - self.failed() - self.not_landed();
        println!(
            "HIL: {passed} passed, {} failed ({} of them not landed)",
            self.failed() + self.not_landed(),
            self.not_landed()
        );
    }
}
