//! `cox bench runtime --smoke` runs to the end on every target: the runtime benchmark stays
//! usable. (Its figures are printed, never asserted: these machines are shared and noisy.)

mod node;

#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_benchmark_runs() {
    let images = node::images_dir();
    let config = cox_bench::runtime::Config::smoke(std::path::PathBuf::from(node::COX), images);
    let figures = cox_bench::runtime::run(&config)
        .await
        .expect("benchmark runs");
    let targets: Vec<&str> = figures.iter().map(|f| f.target).collect();
    assert_eq!(
        targets,
        ["raw", "cox", "containerd"],
        "every target measured"
    );
    for target in &figures {
        assert_eq!(
            target.start.count(),
            3,
            "{}: every pod started",
            target.target
        );
        assert_eq!(
            target.teardown.count(),
            3,
            "{}: every pod removed",
            target.target
        );
    }
}
