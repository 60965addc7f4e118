//! `dependsOn`: each entry's shape, then the rules over the whole task: the named
//! container exists and is not the container itself, `HEALTHY` needs a health check,
//! `COMPLETE`/`SUCCESS` cannot target an essential container (as in ECS), no cycles.

use std::collections::BTreeSet;

use super::ecs::RawDependency;
use super::error::Problems;
use super::model::{ContainerDefinition, Dependency, DependencyCondition, HealthCommand};

pub(crate) fn parse(raw: &[RawDependency], at: &str, p: &mut Problems) -> Vec<Dependency> {
    let mut out = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let at = format!("{at}[{i}]");
        let condition = match d.condition.as_deref() {
            Some("START") => Some(DependencyCondition::Start),
            Some("COMPLETE") => Some(DependencyCondition::Complete),
            Some("SUCCESS") => Some(DependencyCondition::Success),
            Some("HEALTHY") => Some(DependencyCondition::Healthy),
            Some(other) => {
                p.push(
                    format!("{at}.condition"),
                    format!("must be START, COMPLETE, SUCCESS or HEALTHY, got {other:?}"),
                );
                None
            }
            None => {
                p.push(format!("{at}.condition"), "is required");
                None
            }
        };
        let container = d.container_name.clone().unwrap_or_default();
        if container.is_empty() {
            p.push(format!("{at}.containerName"), "is required");
        }
        // Entries with a bad condition are still kept so the graph checks index right.
        out.push(Dependency {
            container,
            condition: condition.unwrap_or(DependencyCondition::Start),
        });
    }
    out
}

/// Checks every `dependsOn` against the other containers of the task.
pub(crate) fn check_graph(containers: &[ContainerDefinition], p: &mut Problems) {
    let index_of = |name: &str| containers.iter().position(|c| c.name == name);
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); containers.len()];
    for (i, c) in containers.iter().enumerate() {
        for (j, d) in c.depends_on.iter().enumerate() {
            let at = format!("containerDefinitions[{i}].dependsOn[{j}]");
            if d.container.is_empty() {
                continue;
            }
            if d.container == c.name {
                p.push(
                    format!("{at}.containerName"),
                    format!("container {:?} cannot depend on itself", c.name),
                );
                continue;
            }
            let Some(target) = index_of(&d.container) else {
                p.push(
                    format!("{at}.containerName"),
                    format!("unknown container {:?}", d.container),
                );
                continue;
            };
            edges[i].push(target);
            let dep = &containers[target];
            match d.condition {
                DependencyCondition::Healthy
                    if dep
                        .health_check
                        .as_ref()
                        .is_none_or(|h| h.command == HealthCommand::None) =>
                {
                    p.push(
                        format!("{at}.condition"),
                        format!(
                            "HEALTHY needs a healthCheck on container {:?}, which has none",
                            d.container
                        ),
                    );
                }
                DependencyCondition::Complete | DependencyCondition::Success if dep.essential => {
                    p.push(
                        format!("{at}.condition"),
                        format!(
                            "{} cannot wait for essential container {:?}: the task stops when it exits",
                            if d.condition == DependencyCondition::Complete { "COMPLETE" } else { "SUCCESS" },
                            d.container
                        ),
                    );
                }
                _ => {}
            }
        }
    }
    for cycle in cycles(&edges) {
        let mut names: Vec<&str> = cycle.iter().map(|&i| containers[i].name.as_str()).collect();
        names.push(names[0]);
        p.push(
            format!("containerDefinitions[{}].dependsOn", cycle[0]),
            format!("dependency cycle: {}", names.join(" -> ")),
        );
    }
}

/// One cycle per strongly connected knot, each rotated to start at its lowest index.
fn cycles(edges: &[Vec<usize>]) -> BTreeSet<Vec<usize>> {
    struct Walk<'a> {
        edges: &'a [Vec<usize>],
        state: Vec<u8>, // 0 unseen, 1 on the stack, 2 done
        stack: Vec<usize>,
        found: BTreeSet<Vec<usize>>,
    }
    impl Walk<'_> {
        fn visit(&mut self, v: usize) {
            self.state[v] = 1;
            self.stack.push(v);
            for &w in &self.edges[v] {
                match self.state[w] {
                    0 => self.visit(w),
                    1 => {
                        let start = self.stack.iter().position(|&x| x == w).unwrap_or(0);
                        let mut cycle = self.stack[start..].to_vec();
                        let lowest = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|(_, &x)| x)
                            .map_or(0, |(k, _)| k);
                        cycle.rotate_left(lowest);
                        self.found.insert(cycle);
                    }
                    _ => {}
                }
            }
            self.stack.pop();
            self.state[v] = 2;
        }
    }
    let mut walk = Walk {
        edges,
        state: vec![0; edges.len()],
        stack: Vec::new(),
        found: BTreeSet::new(),
    };
    for v in 0..edges.len() {
        if walk.state[v] == 0 {
            walk.visit(v);
        }
    }
    walk.found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic; clippy.toml has no allow-unwrap-in-tests
mod tests {
    use super::*;

    #[test]
    fn finds_cycles_once() {
        // 0 -> 1 -> 2 -> 0, 3 -> 3 excluded upstream, 4 -> 0 (not in a cycle)
        let edges = vec![vec![1], vec![2], vec![0], vec![], vec![0]];
        let found: Vec<_> = cycles(&edges).into_iter().collect();
        assert_eq!(found, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn acyclic_has_none() {
        let edges = vec![vec![1, 2], vec![2], vec![]];
        assert!(cycles(&edges).is_empty());
    }
}
