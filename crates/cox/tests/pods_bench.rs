//! `cox bench pods --smoke` runs to the end, every pod measured, and leaves no network
//! namespace or mount behind: the pod start-up benchmark stays usable. (Its figures are
//! printed, never asserted: these machines are shared and noisy.)

#[path = "common/images.rs"]
mod images;

#[tokio::test(flavor = "multi_thread")]
async fn the_pod_startup_benchmark_runs_and_cleans_up() {
    let config = cox_bench::pods::Config::smoke(
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_cox")),
        images::images_dir(),
    );
    let report = cox_bench::pods::run(&config).await.expect("benchmark runs");
    let pods = config.pods as u64;
    assert_eq!(report.raw.count(), pods, "every raw start measured");
    for (phase, startup) in [
        ("one after another", &report.one_by_one),
        ("burst", &report.burst),
    ] {
        assert_eq!(startup.running.count(), pods, "{phase}: every pod Running");
        assert_eq!(startup.ready.count(), pods, "{phase}: every pod Ready");
    }
    assert_eq!(report.rollout.replicas, config.replicas);

    let listed = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let mine = format!("cox-bench-pods-{}", std::process::id());
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&mine),
        "the benchmark's namespace was left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains("/cox-bench-pods"))
        .collect();
    assert!(left.is_empty(), "mounts left behind: {left:?}");
}
