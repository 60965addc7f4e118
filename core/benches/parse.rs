//! Parse + validate time of a 10-container task definition of the kind ECS users
//! write (awslogs, environment, port mappings, health checks, dependsOn, volumes,
//! ulimits). Plain `std::time`; prints min / median / p90 and asserts nothing.
//!
//! Run: `cargo bench -p skerry-core --bench parse`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use skerry_core::spec::{parse_task_definition, ParseOptions};

const CONTAINERS: usize = 10;
const RUNS: usize = 500;

fn container(i: usize) -> Value {
    let mut c = json!({
        "name": format!("c{i}"),
        "image": format!("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app-{i}:1.4.{i}"),
        "essential": i == 0,
        "memory": 128,
        "cpu": 64,
        "command": ["sh", "-c", "exec /app/run --port 80"],
        "environment": (0..8).map(|k| json!({ "name": format!("VAR_{k}"), "value": format!("value-{k}") })).collect::<Vec<_>>(),
        "portMappings": [{ "containerPort": 8000 + i, "protocol": "tcp" }],
        "mountPoints": [{ "sourceVolume": "data", "containerPath": format!("/data/{i}") }],
        "ulimits": [{ "name": "nofile", "softLimit": 1024, "hardLimit": 4096 }],
        "logConfiguration": { "logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/edge", "awslogs-region": "eu-west-1", "awslogs-stream-prefix": "edge"
        } },
        "healthCheck": { "command": ["CMD-SHELL", "wget -q -O- localhost || exit 1"], "interval": 10, "timeout": 2, "retries": 3 }
    });
    if i > 0 {
        c["dependsOn"] = json!([{ "containerName": "c0", "condition": "HEALTHY" }]);
    }
    c
}

fn main() {
    let task = json!({
        "family": "edge-ten",
        "networkMode": "host",
        "requiresCompatibilities": ["EXTERNAL"],
        "volumes": [{ "name": "data" }],
        "containerDefinitions": (0..CONTAINERS).map(container).collect::<Vec<_>>(),
    })
    .to_string();
    let opts = ParseOptions::default();
    if let Err(err) = parse_task_definition(&task, &opts) {
        eprintln!("the benchmark's definition was refused:\n{err}");
        std::process::exit(1);
    }
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            let parsed = parse_task_definition(&task, &opts);
            let took = start.elapsed();
            std::hint::black_box(parsed).ok();
            took
        })
        .collect();
    times.sort();
    println!(
        "parse + validate, {CONTAINERS} containers ({} bytes), {RUNS} runs: min {:?}, median {:?}, p90 {:?}",
        task.len(),
        times[0],
        times[RUNS / 2],
        times[RUNS * 9 / 10]
    );
}
