//! `cox bench services --smoke` runs to the end and leaves no network namespace behind:
//! the Services benchmark stays usable. (Its figures are printed, never asserted.)

#[tokio::test(flavor = "multi_thread")]
async fn the_services_benchmark_runs_and_cleans_up() {
    let config = cox_bench::services::Config::smoke();
    cox_bench::services::run(&config)
        .await
        .expect("benchmark runs");
    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let mine = format!("-{}", std::process::id());
    let left: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| {
            l.starts_with("cox-bench-")
                && l.split_whitespace()
                    .next()
                    .is_some_and(|n| n.ends_with(&mine))
        })
        .map(str::to_owned)
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}
